//! The content-addressed task cache: keys that are REAPI `Action` digests, a local store
//! that is a CAS plus an action cache, fast change detection, and an explanation for every
//! miss.
//!
//! # The one entry point for keys
//! [`TaskCache::key`]`(task, &KeyContext)` decides a task's key: [`Keyed::Cacheable`] with the
//! key (the digest of the task's REAPI `Action`), the itemised [`KeyManifest`] and the
//! [`ActionMessages`], or [`Keyed::NotCacheable`] with the reason. The [`KeyContext`] carries
//! what the graph alone does not tell: the environment the task sees, the
//! [`Produced`] outputs of its direct dependencies, and a native task's code identity. A task
//! whose dependency has declared outputs that are not known yet (the dependency will run)
//! has no key yet: the caller reports "decided after DEP runs" and asks again once DEP has
//! a [`Produced`] (from [`TaskCache::store`] or [`Hit::produced`]).
//!
//! Then [`TaskCache::lookup`] finds a stored result, [`TaskCache::restore`] puts its outputs
//! back, [`TaskCache::store`] records a run that passed, and [`TaskCache::explain`] says why a
//! key missed. Whoever runs tasks calls [`TaskCache::invalidate_workspace`] before and after
//! each task that runs, so that keys asked later see the files as they are
//! ([`workspace`](self::workspace) walks the project once per run otherwise).
//!
//! ```no_run
//! # use std::collections::BTreeMap;
//! # use std::path::Path;
//! # use sykli_runtime::cache::{KeyContext, Keyed, Store, TaskCache};
//! # use sykli_runtime::graph::model::Task;
//! # fn main() -> Result<(), sykli_runtime::cache::CacheError> {
//! let cache = TaskCache::open(Store::open_default()?, Path::new("/repo"))?;
//! let task = Task::named("build");
//! let keyed = cache.key(&task, &KeyContext::default())?;
//! match cache.lookup(&keyed)? {
//!     Some(hit) => {
//!         let log = cache.restore(&hit, Path::new("/repo"))?; // outputs back in place
//!         // replay log.bytes as output; status `cached`; hit.produced() to dependents
//!     }
//!     None => {
//!         cache.invalidate_workspace(); // the task runs and may change files
//!         // run the task; on success:
//!         let produced = cache.store(&keyed, 0, Path::new("/repo"), &task.outputs, None)?;
//!         cache.invalidate_workspace();
//!     }
//! }
//! cache.save_index()?; // once, at the end of the run
//! # Ok(()) }
//! ```
//!
//! With the scheduler, use [`LocalCache`] (it implements the scheduler's cache seam):
//! ```no_run
//! # use std::sync::Arc;
//! # use sykli_runtime::cache::{LocalCache, Store, TaskCache};
//! # fn f(mut config: sykli_runtime::RunConfig, no_cache: bool) -> Result<(), Box<dyn std::error::Error>> {
//! if !no_cache {
//!     let cache = TaskCache::open(Store::open_default()?, &config.project_root)?;
//!     config.cache = Some(Arc::new(LocalCache::new(cache)));
//! }
//! # Ok(()) }
//! ```
//!
//! - [`key`]: what a key is made of ([`KeyManifest`]) and why a task is not cacheable.
//! - [`action`]: the task as a REAPI `Action` and `Command`.
//! - [`merkle`]: the input root, a tree of REAPI `Directory` messages.
//! - [`index`]: the stat index that makes an unchanged tree cost only `lstat`s.
//! - [`store`]: the on-disk blobs and action results, with stats, clean and LRU eviction.
//! - [`explain`]: why a task missed.

pub mod action;
pub mod digest;
pub mod explain;
mod hook;
pub mod index;
pub mod key;
pub mod merkle;
pub mod store;
mod workspace;

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

pub use action::ActionMessages;
pub use digest::{Digest, DigestFunction};
pub use explain::{Change, Delta, Explanation};
pub use hook::LocalCache;
pub use index::StatIndex;
pub use key::{
    ActionIdentity, InputDigests, KeyContext, KeyManifest, Keyed, NotCacheable, SCHEMA_VERSION,
    never_cached,
};
pub use store::{ActionResult, CacheStats, CleanReport, OutputEntry, OutputTree, Store};

use crate::graph::model::Task;

/// An error of the cache. A cache error never means a task failed: the caller runs the task
/// uncached (and reports the error).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A filesystem operation failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An `inputs` glob is invalid.
    #[error("task \"{task}\": invalid input glob \"{glob}\": {reason}")]
    InvalidInput {
        /// Task name.
        task: String,
        /// The glob as written.
        glob: String,
        /// What is wrong.
        reason: String,
    },
    /// Walking the project for input files failed.
    #[error("task \"{task}\": failed to list input files: {message}")]
    Walk {
        /// Task name.
        task: String,
        /// The walker's error.
        message: String,
    },
    /// An input file's path is not UTF-8, so it cannot be keyed portably.
    #[error("task \"{task}\": input file path {} is not UTF-8", path.display())]
    NonUtf8Path {
        /// Task name.
        task: String,
        /// The path relative to the project.
        path: PathBuf,
    },
    /// A declared output is not where the task said.
    #[error("failed to store output \"{name}\": {path} is missing")]
    MissingOutput {
        /// Output name.
        name: String,
        /// Declared path.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A declared output path is unusable.
    #[error("failed to store output \"{name}\" ({path}): {reason}")]
    InvalidOutput {
        /// Output name.
        name: String,
        /// Declared path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A blob's content did not match its digest; it was removed.
    #[error("failed to read cache blob {digest}: content is corrupt (removed)")]
    Corrupt {
        /// The blob's name.
        digest: Digest,
    },
    /// A blob an entry refers to is gone.
    #[error("failed to read cache blob {digest}: missing")]
    MissingBlob {
        /// The blob's name.
        digest: Digest,
    },
    /// Encoding a record failed.
    #[error("failed to encode {what}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// No user cache directory is known (set `SYKLI_CACHE_DIR`).
    #[error("failed to find a cache directory: set SYKLI_CACHE_DIR or XDG_CACHE_HOME")]
    NoCacheDir,
}

impl CacheError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> CacheError {
        CacheError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether this error means a stored entry is unusable (corrupt or incomplete), so the
    /// task should simply run.
    pub fn is_damaged_entry(&self) -> bool {
        matches!(
            self,
            CacheError::Corrupt { .. } | CacheError::MissingBlob { .. }
        )
    }
}

/// Checks that an output path is relative, stays inside the workdir and is not the workdir.
pub(crate) fn check_relative(name: &str, rel: &str) -> Result<PathBuf, CacheError> {
    let bad = |reason: &str| CacheError::InvalidOutput {
        name: name.to_owned(),
        path: rel.to_owned(),
        reason: reason.to_owned(),
    };
    let p = Path::new(rel);
    if p.is_absolute() {
        return Err(bad("it is absolute; outputs are relative to the workdir"));
    }
    let mut clean = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => clean.push(s),
            Component::CurDir => {}
            _ => return Err(bad("it leaves the workdir")),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(bad("it is the workdir itself"));
    }
    Ok(clean)
}

/// What a finished task produced, as its dependents are keyed on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Produced {
    /// The task's host workdir relative to the project ("" for the root): its output paths
    /// are relative to it. `None` for a workdir outside the project: dependents' input trees
    /// then hold the files under `.sykli/outside/TASK/`.
    pub workdir: Option<String>,
    /// Output name -> stored tree.
    pub outputs: BTreeMap<String, OutputTree>,
}

impl Produced {
    /// Output name -> tree digest.
    pub fn digests(&self) -> BTreeMap<String, Digest> {
        self.outputs
            .iter()
            .map(|(n, t)| (n.clone(), t.digest))
            .collect()
    }
}

/// A stored result found for a key.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The key.
    pub key: Digest,
    /// The stored result.
    pub result: ActionResult,
}

impl Hit {
    /// What the hit produces, for the [`KeyContext::dependency_outputs`] of dependents.
    pub fn produced(&self) -> Produced {
        Produced {
            workdir: Some(self.result.workdir.clone()),
            outputs: self.result.outputs.clone(),
        }
    }
}

/// The log of a cached run, verified, to replay as the task's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredLog {
    /// The log bytes (empty when no log was stored).
    pub bytes: Vec<u8>,
}

/// The cache as the scheduler sees it: key, look up, restore, store, explain.
///
/// One per run and project. Thread-safe: keys may be computed from several threads.
#[derive(Debug)]
pub struct TaskCache {
    store: Store,
    index: StatIndex,
    workspace: workspace::Workspace,
    /// Workspace inputs per input globs, derived once per workspace snapshot.
    memo: key::InputMemo,
    root: PathBuf,
    project_id: String,
    size_limit: Option<u64>,
    /// The running executable's digest (under the keys' function) and size, once asked.
    native_exe: std::sync::OnceLock<Result<(Digest, u64), String>>,
    /// The store's last-keys table of this project, loaded on the first hit or store.
    last_keys: std::sync::Mutex<LastKeys>,
}

/// Task -> key of its last-manifest record, as far as this run knows (see
/// [`TaskCache::record_last`]).
#[derive(Debug, Default)]
struct LastKeys {
    table: Option<std::collections::HashMap<String, Digest>>,
    dirty: bool,
}

impl TaskCache {
    /// A cache for the project at `root` (absolute), backed by `store`, with its stat index at
    /// `root/.sykli/cache-index`; keys under BLAKE3.
    pub fn open(store: Store, root: &Path) -> Result<TaskCache, CacheError> {
        let index = StatIndex::open(root.join(".sykli").join("cache-index"));
        Ok(TaskCache::with_index(store, root, index))
    }

    /// Like [`TaskCache::open`] with a given stat index; keys are digested with the index's
    /// [`DigestFunction`].
    pub fn with_index(store: Store, root: &Path, index: StatIndex) -> TaskCache {
        // The project id only names "last manifest" records; it is a digest, never the path.
        let mut h = blake3::Hasher::new_derive_key("sykli project id v1");
        h.update(root.as_os_str().as_encoded_bytes());
        TaskCache {
            store,
            index,
            workspace: workspace::Workspace::new(root),
            memo: key::InputMemo::default(),
            root: root.to_path_buf(),
            project_id: h.finalize().to_hex().to_string(),
            size_limit: None,
            native_exe: std::sync::OnceLock::new(),
            last_keys: Default::default(),
        }
    }

    /// Evict least recently used entries after each store to stay under `bytes`.
    pub fn with_size_limit(mut self, bytes: Option<u64>) -> TaskCache {
        self.size_limit = bytes;
        self
    }

    /// The store.
    pub fn store_handle(&self) -> &Store {
        &self.store
    }

    /// The stat index (for its hash counters).
    pub fn index(&self) -> &StatIndex {
        &self.index
    }

    /// The digest function of keys and input trees.
    pub fn digest_function(&self) -> DigestFunction {
        self.index.function()
    }

    /// Decides a task's key from its definition, `ctx` and its input files: the one entry
    /// point for keys (see the module docs).
    pub fn key(&self, task: &Task, ctx: &KeyContext) -> Result<Keyed, CacheError> {
        let function = self.digest_function();
        let rehash = |d: &Digest| -> Result<Digest, CacheError> {
            Ok(function.of_bytes(&self.store.read_blob(d)?))
        };
        key::compute(
            task,
            ctx,
            &key::KeyEnv {
                root: &self.root,
                index: &self.index,
                workspace: &self.workspace,
                memo: &self.memo,
                function,
                rehash: &rehash,
                native_exe: &|| self.native_exe(),
            },
        )
    }

    /// The running executable (the pipeline binary native tasks run in): its digest under
    /// the keys' function and its size, computed once.
    pub fn native_exe(&self) -> Result<(Digest, u64), CacheError> {
        let found = self.native_exe.get_or_init(|| {
            let exe = std::env::current_exe()
                .map_err(|e| format!("failed to find this program's executable: {e}"))?;
            let size = std::fs::metadata(&exe)
                .map_err(|e| format!("failed to read {}: {e}", exe.display()))?
                .len();
            let digest = self
                .digest_function()
                .of_file(&exe, size)
                .map_err(|e| format!("failed to read {}: {e}", exe.display()))?;
            Ok((digest, size))
        });
        found.clone().map_err(|message| CacheError::Walk {
            task: String::new(),
            message,
        })
    }

    /// Files of the project may change from now on (a task is about to run, or just ran):
    /// keys asked after this read the files again instead of the run's snapshot.
    pub fn invalidate_workspace(&self) {
        self.workspace.invalidate();
        self.memo.clear();
    }

    /// How many times the project was walked: (whole-project walks, single-task walks).
    pub fn walks(&self) -> (u64, u64) {
        self.workspace.walks()
    }

    /// The stored result for a key, if any and complete (every blob present). A hit also
    /// becomes the task's "last manifest" (written only when it changed; not even read when
    /// the project's last-keys table says it holds this key).
    pub fn lookup(&self, keyed: &Keyed) -> Result<Option<Hit>, CacheError> {
        let Keyed::Cacheable { key, manifest, .. } = keyed else {
            return Ok(None);
        };
        let Some(result) = self.store.get_action(key)? else {
            return Ok(None);
        };
        if result
            .restored_blobs()
            .any(|(d, _)| !self.store.has_blob(d))
        {
            return Ok(None);
        }
        self.record_last(key, manifest)?;
        Ok(Some(Hit { key: *key, result }))
    }

    /// Makes `manifest` (keyed `key`) its task's last manifest. The project's last-keys
    /// table says which key each record holds: a record known to hold `key` already is not
    /// even read (a hit of an unchanged task costs no file access here).
    fn record_last(&self, key: &Digest, manifest: &KeyManifest) -> Result<(), CacheError> {
        let lock = || self.last_keys.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut last = lock();
            let table = last
                .table
                .get_or_insert_with(|| self.store.last_keys(&self.project_id));
            if table.get(&manifest.task) == Some(key) {
                return Ok(());
            }
        }
        self.store
            .set_last_manifest(&self.project_id, key, manifest)?;
        let mut last = lock();
        last.table
            .get_or_insert_with(Default::default)
            .insert(manifest.task.clone(), *key);
        last.dirty = true;
        Ok(())
    }

    /// Puts a hit's outputs back under `workdir` byte-identical, with their modes (an
    /// existing output path is replaced), and returns the log to replay. Each blob is
    /// verified; on [`CacheError::is_damaged_entry`] errors run the task instead.
    pub fn restore(&self, hit: &Hit, workdir: &Path) -> Result<RestoredLog, CacheError> {
        let log = match &hit.result.log {
            Some(l) => self.store.read_blob(&l.digest)?,
            None => Vec::new(),
        };
        let mut written = Vec::new();
        for (name, tree) in &hit.result.outputs {
            let rel = check_relative(name, &tree.path)?;
            let top = workdir.join(&rel);
            if let Some(p) = top.strip_prefix(&self.root).ok().and_then(Path::to_str) {
                written.push(p.to_owned());
            }
            match std::fs::symlink_metadata(&top) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&top)
                    .map_err(|e| CacheError::io("remove old output", &top, e))?,
                Ok(_) => std::fs::remove_file(&top)
                    .map_err(|e| CacheError::io("remove old output", &top, e))?,
                Err(_) => {}
            }
            for (path, entry) in &tree.entries {
                let rel = check_relative(name, path)?;
                let dest = workdir.join(rel);
                match entry {
                    OutputEntry::File { digest, mode, .. } => {
                        self.store.copy_blob_to(digest, &dest, *mode)?
                    }
                    OutputEntry::Symlink { target } => {
                        if let Some(dir) = dest.parent() {
                            std::fs::create_dir_all(dir)
                                .map_err(|e| CacheError::io("create directory", dir, e))?;
                        }
                        let _ = std::fs::remove_file(&dest);
                        std::os::unix::fs::symlink(target, &dest)
                            .map_err(|e| CacheError::io("create symlink", &dest, e))?;
                    }
                }
            }
        }
        // The run's snapshot sees what was written, so dependents keyed on these files
        // need no new walk.
        self.workspace.refresh(&written)?;
        Ok(RestoredLog { bytes: log })
    }

    /// Records a task that passed: stores its declared `outputs` (name -> path relative to
    /// `workdir`) as blobs and, when `keyed` is cacheable, the log at `log_path`, the action
    /// result under the key and the `Action`, `Command` and `Directory` messages (so the store
    /// serves as a REAPI CAS and action cache). Returns what dependents are keyed on.
    pub fn store(
        &self,
        keyed: &Keyed,
        exit_code: i32,
        workdir: &Path,
        outputs: &BTreeMap<String, String>,
        log_path: Option<&Path>,
    ) -> Result<Produced, CacheError> {
        let host_workdir = workdir
            .strip_prefix(&self.root)
            .ok()
            .and_then(Path::to_str)
            .map(str::to_owned);
        let lock = self.store.write_lock()?;
        let trees = store::store_outputs(&self.store, workdir, outputs)?;
        if let Keyed::Cacheable {
            key,
            manifest,
            action,
        } = keyed
        {
            let log = log_path.map(|p| self.store.put_file(p)).transpose()?;
            let mut messages = Vec::new();
            if action.function == DigestFunction::Blake3 {
                for (_, bytes) in action.blobs() {
                    let digest = self.store.put_bytes(&bytes)?;
                    messages.push(store::BlobRef {
                        digest,
                        size: bytes.len() as u64,
                    });
                }
            }
            let result = ActionResult {
                exit_code,
                outputs: trees.clone(),
                log,
                workdir: host_workdir.clone().unwrap_or_default(),
                messages,
                created_unix_ms: store::now_ms(),
            };
            self.store.put_action(key, &result)?;
            self.record_last(key, manifest)?;
        }
        drop(lock);
        if keyed.key().is_some()
            && let Some(limit) = self.size_limit
        {
            self.store.evict_to(limit)?;
        }
        Ok(Produced {
            workdir: host_workdir,
            outputs: trees,
        })
    }

    /// Why `keyed` (for the task `task`) hits or misses, against the task's last manifest.
    pub fn explain(&self, task: &str, keyed: &Keyed) -> Result<Explanation, CacheError> {
        let (key, manifest) = match keyed {
            Keyed::NotCacheable { reason } => {
                return Ok(Explanation::NotCacheable {
                    reason: reason.clone(),
                });
            }
            Keyed::Cacheable { key, manifest, .. } => (key, manifest),
        };
        if self.store.get_action(key)?.is_some() {
            return Ok(Explanation::Hit);
        }
        let Some(before) = self.store.last_manifest(&self.project_id, task)? else {
            return Ok(Explanation::NoPreviousEntry);
        };
        let changes = explain::diff(&before, manifest);
        if changes.is_empty() {
            Ok(Explanation::NotStored)
        } else {
            Ok(Explanation::Changed { changes })
        }
    }

    /// Persists the stat index and, when it changed, the project's last-keys table; call
    /// once at the end of a run.
    pub fn save_index(&self) -> Result<(), CacheError> {
        self.index.save()?;
        let mut last = self.last_keys.lock().unwrap_or_else(|p| p.into_inner());
        if last.dirty
            && let Some(table) = &last.table
        {
            self.store.set_last_keys(&self.project_id, table)?;
            last.dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, body: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    }

    /// Keys `task` in a new `TaskCache` (a new run), looks it up, stores it on a miss, saves.
    fn run(cache_dir: &Path, root: &Path, task: &Task) -> (Keyed, bool) {
        let cache = TaskCache::open(Store::open(cache_dir).expect("store"), root).expect("open");
        let keyed = cache.key(task, &KeyContext::default()).expect("key");
        let hit = cache.lookup(&keyed).expect("lookup").is_some();
        if !hit {
            cache
                .store(&keyed, 0, root, &BTreeMap::new(), None)
                .expect("store");
        }
        cache.save_index().expect("save");
        (keyed, hit)
    }

    fn explain(cache_dir: &Path, root: &Path, task: &Task) -> Explanation {
        let cache = TaskCache::open(Store::open(cache_dir).expect("store"), root).expect("open");
        let keyed = cache.key(task, &KeyContext::default()).expect("key");
        cache.explain(&task.name, &keyed).expect("explain")
    }

    #[test]
    fn hit_on_an_older_key_still_becomes_the_last_manifest_with_the_last_keys_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, cache_dir) = (dir.path().join("repo"), dir.path().join("cache"));
        let mut task = Task::named("build");
        task.command = Some("true".into());
        task.inputs = vec!["src/**".into()];
        write(&root, "src/a.txt", "a1");
        write(&root, "src/b.txt", "b1");
        let (first, hit) = run(&cache_dir, &root, &task);
        assert!(!hit);
        write(&root, "src/a.txt", "a2");
        assert!(!run(&cache_dir, &root, &task).1);
        // Back to the first content: a hit on the first key, whose manifest must become the
        // last one although the last-keys table names the second key.
        write(&root, "src/a.txt", "a1");
        let (again, hit) = run(&cache_dir, &root, &task);
        assert!(hit);
        assert_eq!(again.key(), first.key());
        // Explained against the first manifest: only b changed (a stale second manifest
        // would name a as well).
        write(&root, "src/b.txt", "b2");
        assert_eq!(
            explain(&cache_dir, &root, &task),
            Explanation::Changed {
                changes: vec![Change::InputModified {
                    path: "src/b.txt".into()
                }]
            }
        );
    }

    #[test]
    fn clean_that_removes_a_last_manifest_removes_the_last_keys_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, cache_dir) = (dir.path().join("repo"), dir.path().join("cache"));
        let mut task = Task::named("build");
        task.command = Some("true".into());
        task.inputs = vec!["src/**".into()];
        write(&root, "src/a.txt", "a1");
        run(&cache_dir, &root, &task);
        let last = cache_dir.join("v1/last");
        let names = || -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&last)
                .expect("list")
                .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
                .collect();
            v.sort();
            v
        };
        assert!(
            names().iter().any(|n| n.ends_with(".keys")),
            "{:?}",
            names()
        );
        // Age the task's record only; a clean of old entries removes it, and the table with it.
        for n in names().iter().filter(|n| !n.ends_with(".keys")) {
            let f = std::fs::File::options()
                .write(true)
                .open(last.join(n))
                .expect("open");
            f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
                .expect("age");
        }
        Store::open(&cache_dir)
            .expect("store")
            .clean(Some(std::time::Duration::from_secs(3600)))
            .expect("clean");
        assert_eq!(names(), Vec::<String>::new());
        // The next hit records its manifest again, so a change is explained.
        assert!(run(&cache_dir, &root, &task).1);
        write(&root, "src/a.txt", "a2");
        assert_eq!(
            explain(&cache_dir, &root, &task),
            Explanation::Changed {
                changes: vec![Change::InputModified {
                    path: "src/a.txt".into()
                }]
            }
        );
    }
}
