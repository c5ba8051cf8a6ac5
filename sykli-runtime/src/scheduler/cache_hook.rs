//! The seam where a cache plugs into the scheduler (no cache lives here).
//!
//! Before a task's first attempt the scheduler asks [`TaskCache::lookup`]; a hit makes the
//! task `cached` without running it. After a task passes it calls [`TaskCache::store`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use crate::graph::Task;

/// What a cache sees of a task about to run (or that just passed).
#[derive(Debug, Clone, Copy)]
pub struct CacheQuery<'a> {
    /// The task as validated (matrix expanded, dependencies complete).
    pub task: &'a Task,
    /// The project root.
    pub project_root: &'a Path,
    /// The task's working directory on the host.
    pub workdir: &'a Path,
    /// The environment the task sees on top of the runtime's (secrets included: never
    /// store values, only names, in keys).
    pub env: &'a BTreeMap<String, String>,
    /// The task's log file in this run.
    pub log_path: &'a Path,
    /// [`Executor::code_identity`](crate::exec::Executor::code_identity) of the executor the
    /// plan placed the task on.
    pub executor_identity: Option<&'a str>,
}

/// What a cache lookup found.
#[derive(Debug, Clone)]
pub enum CacheLookup {
    /// The results were restored; the task does not run.
    Hit(CacheHit),
    /// The task runs.
    Miss {
        /// Why, in one line (e.g. "input src/lib.rs changed"), when the cache can tell.
        reason: Option<String>,
    },
}

/// A cache hit: the outputs were restored, and the task does not run.
#[derive(Debug, Clone, Default)]
pub struct CacheHit {
    /// Outputs restored, name -> absolute path (for later tasks' `task_inputs`).
    pub outputs: BTreeMap<String, PathBuf>,
    /// A note for reporters, e.g. the key that hit.
    pub message: Option<String>,
    /// The cached run's log, replayed as the task's output.
    pub log: Option<Vec<u8>>,
}

/// A result cache consulted by the scheduler.
pub trait TaskCache: Send + Sync {
    /// Restores the task's results if they are cached. Errors are reported as a warning
    /// line in the task's output and treated as a miss.
    fn lookup<'a>(&'a self, query: CacheQuery<'a>) -> BoxFuture<'a, Result<CacheLookup, String>>;

    /// Records the results of a task that passed, with its outputs (name -> absolute path).
    fn store<'a>(
        &'a self,
        query: CacheQuery<'a>,
        outputs: &'a BTreeMap<String, PathBuf>,
    ) -> BoxFuture<'a, Result<(), String>>;
}
