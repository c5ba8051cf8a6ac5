//! Task statuses, as the CLI design defines them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The final status of one task in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// The command exited 0 and every success criterion held.
    Passed,
    /// The command ran and exited non-zero (or a success criterion failed).
    Failed,
    /// The task could not run: timeout, missing secret, missing image, executor failure.
    Errored,
    /// A dependency did not succeed, so the task never started.
    Blocked,
    /// A cache hit: outputs and log restored, the command did not run.
    Cached,
    /// Its condition was false.
    Skipped,
}

impl TaskStatus {
    /// Whether dependents may run after this status.
    pub fn is_success(self) -> bool {
        matches!(self, TaskStatus::Passed | TaskStatus::Cached)
    }

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Passed => "passed",
            TaskStatus::Failed => "failed",
            TaskStatus::Errored => "errored",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Cached => "cached",
            TaskStatus::Skipped => "skipped",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
