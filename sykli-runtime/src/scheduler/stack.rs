//! The executor stack: each registered executor with the run's layers around it (as buck2
//! stacks caching around its one executor trait): the run's result cache, then the
//! executor's own layer when it brings one (a remote executor's action cache and action
//! preparation, see [`ExecutorEntry::with_layer`](crate::exec::ExecutorEntry::with_layer)).
//! The scheduler calls the stack the plan chose and never asks whether a cache exists.

use std::sync::Arc;

use super::cache_hook::{CacheLookup, CacheQuery, TaskCache};
use crate::exec::{ExecIo, ExecRequest, Executed, Executor, ExecutorRegistry};

/// One executor and the layers stacked around it.
pub(super) struct Stacked {
    executor: Arc<dyn Executor>,
    cache: Option<Arc<dyn TaskCache>>,
    own: Option<Arc<dyn TaskCache>>,
}

impl Stacked {
    /// Stacks `cache` (if any) around every executor of `registry`, by registry index.
    pub fn all(registry: &ExecutorRegistry, cache: Option<Arc<dyn TaskCache>>) -> Vec<Stacked> {
        registry
            .entries()
            .iter()
            .map(|e| Stacked {
                executor: e.executor().clone(),
                cache: cache.clone(),
                own: e.layer().cloned(),
            })
            .collect()
    }

    /// The executor's name, for events.
    pub fn name(&self) -> &str {
        self.executor.name()
    }

    /// The executor's [`Executor::code_identity`], for cache keys.
    pub fn code_identity(&self) -> Option<String> {
        self.executor.code_identity()
    }

    /// Before the first attempt: the stored result, if a layer has one. Errors are reported
    /// by the caller and count as a miss.
    pub async fn lookup(&self, query: CacheQuery<'_>) -> Result<CacheLookup, String> {
        let run = match &self.cache {
            Some(c) => c.lookup(query).await,
            None => Ok(CacheLookup::Miss { reason: None }),
        };
        let Some(own) = &self.own else {
            return run;
        };
        match run {
            Ok(CacheLookup::Hit(hit)) => Ok(CacheLookup::Hit(hit)),
            // The own layer is always asked on a miss: it may prepare the attempt.
            Ok(CacheLookup::Miss { reason }) => match own.lookup(query).await? {
                CacheLookup::Hit(hit) => Ok(CacheLookup::Hit(hit)),
                CacheLookup::Miss { reason: r } => Ok(CacheLookup::Miss {
                    reason: reason.or(r),
                }),
            },
            Err(e) => match own.lookup(query).await {
                Ok(CacheLookup::Hit(hit)) => Ok(CacheLookup::Hit(hit)),
                Ok(CacheLookup::Miss { .. }) => Err(e),
                Err(e2) => Err(format!("{e}; {e2}")),
            },
        }
    }

    /// One attempt, on the executor.
    pub async fn execute(&self, req: &ExecRequest, io: ExecIo) -> Executed {
        self.executor.execute_recorded(req, io).await
    }

    /// After the task passed: the layers record its result.
    pub async fn passed(
        &self,
        query: CacheQuery<'_>,
        outputs: &std::collections::BTreeMap<String, std::path::PathBuf>,
    ) -> Result<(), String> {
        let run = match &self.cache {
            Some(c) => c.store(query, outputs).await,
            None => Ok(()),
        };
        let own = match &self.own {
            Some(o) => o.store(query, outputs).await,
            None => Ok(()),
        };
        run.and(own)
    }

    /// The run is over: the executor releases what it keeps for the run (background tasks).
    pub async fn shutdown(&self) {
        self.executor.shutdown().await;
    }

    /// Whether `passed` does anything (so the log is flushed for it only when needed).
    pub fn records(&self) -> bool {
        self.cache.is_some() || self.own.is_some()
    }
}
