//! Events: the one stream through which a run is observed.
//!
//! The scheduler emits [`Event`]s into an [`EventSink`]; reporters (terminal, JSON, run
//! records, later the journal and the observe stream) consume them and never call back into
//! the scheduler. Events are owned and serde-able so they can cross processes and machines.

use serde::{Deserialize, Serialize};

use crate::TaskStatus;
use crate::exec::OutputStream;

/// Something that happened in a run, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Unique id of this run (also the name of its log directory).
        run_id: String,
        /// Tasks in the plan, in definition order.
        tasks: Vec<String>,
        /// Maximum number of tasks run at once.
        jobs: usize,
        /// Start time, milliseconds since the Unix epoch.
        started_at_ms: u64,
    },
    /// Where a task was placed, when a placement setting (`target`, `remote`, `prefer`) was
    /// involved: e.g. `prefer: remote` that fell back to this machine says so here. Comes
    /// before the task's first `TaskStarted`.
    TaskPlaced {
        /// Task name.
        task: String,
        /// The executor it runs on.
        executor: String,
        /// Why, in one line.
        reason: String,
    },
    /// An attempt of a task started.
    TaskStarted {
        /// Task name.
        task: String,
        /// 1 for the first attempt.
        attempt: u32,
        /// Which executor runs it ("process", "docker", "native", ...).
        executor: String,
    },
    /// One line of a task's output, secrets already masked, without the newline.
    TaskOutput {
        /// Task name.
        task: String,
        /// Which stream.
        stream: OutputStream,
        /// The masked line.
        line: String,
    },
    /// The cache had no result for a cacheable task (or it is not cacheable), so it runs.
    TaskCacheMiss {
        /// Task name.
        task: String,
        /// Why, in one line: the input, env var or dependency output that changed, "no
        /// previous entry", or why the task is not cacheable.
        reason: String,
    },
    /// An attempt failed and the task will be tried again after a delay.
    TaskRetrying {
        /// Task name.
        task: String,
        /// The attempt that failed.
        attempt: u32,
        /// Backoff before the next attempt, in milliseconds.
        delay_ms: u64,
        /// Why the attempt failed.
        reason: String,
    },
    /// A task reached its final status (including `blocked`, `skipped` and `cached`, which
    /// have no `TaskStarted`).
    TaskFinished(TaskReport),
    /// The run ended.
    RunFinished(RunSummary),
}

/// The final report of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// Task name.
    pub task: String,
    /// Final status.
    pub status: TaskStatus,
    /// Exit code of the last attempt, when a command ran to completion.
    pub exit_code: Option<i32>,
    /// Wall-clock time over all attempts, in milliseconds.
    pub duration_ms: u64,
    /// Attempts made (0 when the task never started).
    pub attempts: u32,
    /// Why the task did not pass, in one line (masked), e.g. "timed out after 5s",
    /// "missing secret GITHUB_TOKEN", "dependency `build` failed", "condition `tag` is false".
    pub message: Option<String>,
}

/// Counts and timing of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Tasks that passed (not counting cached ones).
    pub passed: usize,
    /// Tasks served from the cache.
    pub cached: usize,
    /// Tasks whose command failed.
    pub failed: usize,
    /// Tasks that could not run.
    pub errored: usize,
    /// Tasks not started because a dependency did not succeed.
    pub blocked: usize,
    /// Tasks whose condition was false.
    pub skipped: usize,
    /// Wall-clock duration of the run, in milliseconds.
    pub duration_ms: u64,
    /// Whether the run was interrupted (Ctrl-C, SIGTERM).
    pub interrupted: bool,
}

impl RunSummary {
    /// Whether nothing failed or errored and the run was not interrupted.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.errored == 0 && !self.interrupted
    }
}

/// Receives a run's events. Implementations must be cheap: they are called on the
/// scheduler's path (buffer or hand off to a thread for slow work).
pub trait EventSink: Send + Sync {
    /// Handles one event.
    fn emit(&self, event: &Event);
}
