//! [`LocalCache`]: the local [`TaskCache`](super::TaskCache) plugged into the scheduler's
//! cache seam ([`crate::scheduler::TaskCache`]).
//!
//! Per task: the key is computed before the first attempt (dependency outputs come from what
//! this run recorded for the task's dependencies); a hit restores the outputs and hands back
//! the log to replay (status `cached`); a task that passed is stored, and what it produced is
//! recorded for its dependents. A task that is not cacheable still gets its outputs
//! recorded, so dependents can be cached. A task that runs invalidates the run's workspace
//! snapshot before and after (it may change files other tasks read).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::{CacheError, Explanation, KeyContext, Keyed, NotCacheable, Produced, TaskCache};
use crate::error_chain;
use crate::scheduler::{CacheHit, CacheLookup, CacheQuery};

/// The local content-addressed cache, as the scheduler's cache. Put it in
/// [`RunConfig::cache`](crate::scheduler::RunConfig::cache); call [`LocalCache::finish`] after
/// the run (it persists the stat index; dropping does it too, ignoring errors).
#[derive(Debug)]
pub struct LocalCache {
    inner: Arc<TaskCache>,
    native_identity: Option<String>,
    /// Keys computed at lookup, by task, used when the task passes.
    pending: Mutex<HashMap<String, Keyed>>,
    /// What the tasks of this run that succeeded produced, by task.
    produced: Mutex<HashMap<String, Produced>>,
}

impl LocalCache {
    /// Wraps a task cache.
    pub fn new(cache: TaskCache) -> LocalCache {
        LocalCache {
            inner: Arc::new(cache),
            native_identity: None,
            pending: Mutex::new(HashMap::new()),
            produced: Mutex::new(HashMap::new()),
        }
    }

    /// Identity of the pipeline binary's code (e.g. its digest), making native tasks
    /// cacheable.
    pub fn with_native_identity(mut self, identity: impl Into<String>) -> LocalCache {
        self.native_identity = Some(identity.into());
        self
    }

    /// The wrapped cache.
    pub fn cache(&self) -> &TaskCache {
        &self.inner
    }

    /// Persists the stat index. Call once after the run.
    pub fn finish(&self) -> Result<(), CacheError> {
        self.inner.save_index()
    }

    /// The key the lookup of `task` computed, while the task awaits its result (after a
    /// miss): what a cache stacked behind this one looks up.
    pub fn pending_key(&self, task: &str) -> Option<Keyed> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(task)
            .cloned()
    }

    /// Keys `query.task` as an action to run elsewhere: its cache key when it has one;
    /// otherwise the same model with the project's files as inputs when it declares none
    /// (the run's one ignore-aware walk) and without `cache: false`. Not cacheable only
    /// when it cannot be an action at all (no command, a native task of an unknown binary).
    pub async fn action_for(&self, query: CacheQuery<'_>) -> Result<Keyed, String> {
        let task = query.task;
        if !task.inputs.is_empty()
            && task.cache != Some(false)
            && let Some(k @ Keyed::Cacheable { .. }) = self.pending_key(&task.name)
        {
            return Ok(k);
        }
        let mut task = task.clone();
        if task.inputs.is_empty() {
            task.inputs = vec!["**".to_owned()];
        }
        task.cache = None;
        task.gate = None;
        let ctx = self.context(&query);
        let inner = self.inner.clone();
        blocking(move || inner.key(&task, &ctx)).await
    }

    /// Records a result found in a cache stacked behind this one (its outputs already
    /// restored under `query.workdir`, its log in the file `log`) as if the task had passed
    /// here: stored under `keyed`, and what it produced recorded for its dependents.
    pub async fn store_found(
        &self,
        query: CacheQuery<'_>,
        keyed: Keyed,
        log: PathBuf,
    ) -> Result<(), String> {
        let name = query.task.name.clone();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
        self.inner.invalidate_workspace();
        let inner = self.inner.clone();
        let workdir = query.workdir.to_path_buf();
        let declared = query.task.outputs.clone();
        let produced =
            blocking(move || inner.store(&keyed, 0, &workdir, &declared, Some(log.as_path())))
                .await?;
        self.record(&name, produced);
        Ok(())
    }

    fn context(&self, query: &CacheQuery<'_>) -> KeyContext {
        let produced = self.produced.lock().unwrap_or_else(|p| p.into_inner());
        let dependency_outputs = query
            .task
            .direct_dependencies()
            .into_iter()
            .filter_map(|d| produced.get(d).map(|o| (d.to_owned(), o.clone())))
            .filter(|(_, o)| !o.outputs.is_empty())
            .collect();
        KeyContext {
            // Secret values in here are dropped by name when keying.
            env: query.env.clone(),
            dependency_outputs,
            native_identity: self.native_identity.clone(),
            executor_identity: query.executor_identity.map(str::to_owned),
        }
    }

    fn record(&self, task: &str, produced: Produced) {
        self.produced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task.to_owned(), produced);
    }
}

impl Drop for LocalCache {
    fn drop(&mut self) {
        let _ = self.inner.save_index();
    }
}

/// Runs blocking cache work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| error_chain(&e)),
        Err(e) => Err(format!("cache worker failed: {e}")),
    }
}

impl crate::scheduler::TaskCache for LocalCache {
    fn lookup<'a>(&'a self, query: CacheQuery<'a>) -> BoxFuture<'a, Result<CacheLookup, String>> {
        Box::pin(async move {
            // The common case of tasks that are never cached: decided from the definition,
            // without the blocking pool or the store.
            if let Some(reason) = super::key::never_cached(query.task) {
                // It runs: files may change.
                self.inner.invalidate_workspace();
                return Ok(CacheLookup::Miss {
                    reason: Some(Explanation::NotCacheable { reason }.to_string()),
                });
            }
            let ctx = self.context(&query);
            let inner = self.inner.clone();
            let task = query.task.clone();
            let workdir = query.workdir.to_path_buf();
            let (keyed, found, reason) = blocking(move || {
                let keyed = inner.key(&task, &ctx)?;
                // Why it missed, from the task's last manifest; an explanation that cannot
                // be had is no reason to fail the lookup.
                let why =
                    |keyed: &Keyed| inner.explain(&task.name, keyed).ok().map(|e| e.to_string());
                let Some(hit) = inner.lookup(&keyed)? else {
                    let reason = why(&keyed);
                    return Ok((keyed, None, reason));
                };
                match inner.restore(&hit, &workdir) {
                    Ok(log) => Ok((keyed, Some((hit, log)), None)),
                    // A damaged entry (removed by now) is a miss: the task runs.
                    Err(e) if e.is_damaged_entry() => {
                        Ok((keyed, None, Some("the stored entry was damaged".to_owned())))
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
            let name = query.task.name.clone();
            match found {
                Some((hit, log)) => {
                    self.record(&name, hit.produced());
                    // Every stored output: declared ones and those a native task recorded.
                    let outputs = hit
                        .result
                        .outputs
                        .iter()
                        .map(|(n, t)| (n.clone(), query.workdir.join(&t.path)))
                        .collect::<BTreeMap<String, PathBuf>>();
                    Ok(CacheLookup::Hit(CacheHit {
                        outputs,
                        message: Some(format!("cache hit {}", &hit.key.to_hex()[..16])),
                        log: Some(log.bytes),
                    }))
                }
                None => {
                    // It runs: files may change.
                    self.inner.invalidate_workspace();
                    self.pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(name, keyed);
                    Ok(CacheLookup::Miss { reason })
                }
            }
        })
    }

    fn store<'a>(
        &'a self,
        query: CacheQuery<'a>,
        outputs: &'a BTreeMap<String, PathBuf>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let name = query.task.name.clone();
            // It ran: files may have changed.
            self.inner.invalidate_workspace();
            if outputs.is_empty() && super::key::never_cached(query.task).is_some() {
                // Nothing to store and no outputs for dependents to be keyed on.
                return Ok(());
            }
            // Without a key from the lookup (never cached, or the lookup failed) only the
            // outputs are recorded, for dependents.
            let keyed = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name)
                .unwrap_or(Keyed::NotCacheable {
                    reason: super::key::never_cached(query.task).unwrap_or(NotCacheable::NoAction),
                });
            let inner = self.inner.clone();
            let workdir = query.workdir.to_path_buf();
            // Declared outputs plus those the task recorded while running (native
            // `TaskCtx::output`), relative to the workdir.
            // A recorded path replaces the declared one of the same name.
            let mut declared = query.task.outputs.clone();
            for (n, abs) in outputs {
                if let Ok(rel) = abs.strip_prefix(query.workdir) {
                    declared.insert(n.clone(), rel.to_string_lossy().into_owned());
                }
            }
            let log = query.log_path.to_path_buf();
            let produced = blocking(move || {
                let log = log.is_file().then_some(log.as_path());
                inner.store(&keyed, 0, &workdir, &declared, log)
            })
            .await?;
            self.record(&name, produced);
            Ok(())
        })
    }
}
