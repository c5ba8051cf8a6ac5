//! The context a native task receives.
//!
//! Provisional: the runtime's native executor (`sykli_runtime::exec::native`) owns the real
//! `TaskCtx`; this module is replaced by a re-export of it once that lands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

/// What a native task knows about its attempt: its name, working directory, environment and
/// a cancellation token.
#[derive(Debug, Clone)]
pub struct TaskCtx {
    task: String,
    workdir: PathBuf,
    env: BTreeMap<String, String>,
    cancel: CancellationToken,
}

impl TaskCtx {
    /// A context for task `task` running in `workdir` with `env`.
    pub fn new(
        task: impl Into<String>,
        workdir: impl Into<PathBuf>,
        env: BTreeMap<String, String>,
        cancel: CancellationToken,
    ) -> Self {
        TaskCtx {
            task: task.into(),
            workdir: workdir.into(),
            env,
            cancel,
        }
    }

    /// The task's name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The task's working directory.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// A variable of the task's environment.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// Cancelled when the run is cancelled; long-running tasks should watch it.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }
}
