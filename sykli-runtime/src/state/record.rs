//! The run record and the sink that writes it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::StateError;
use super::store::write_record;
use crate::TaskStatus;
use crate::events::{Event, EventSink, RunSummary, now_ms};

/// What `.sykli/runs/<run_id>.json` holds: one run, its tasks and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Record format version (1).
    pub format: u32,
    /// The run id.
    pub run_id: String,
    /// Start time, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// End time, when the run finished.
    pub finished_at_ms: Option<u64>,
    /// Maximum number of tasks run at once.
    pub jobs: usize,
    /// Counts and timing; `None` while the run is going (or if it crashed).
    pub summary: Option<RunSummary>,
    /// Every task of the plan, in plan order.
    pub tasks: Vec<TaskRecord>,
    /// Whether the run is parked, waiting on a gate (`sykli run --resume` continues it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parked: bool,
}

impl RunRecord {
    /// A task of this run by name.
    pub fn task(&self, name: &str) -> Option<&TaskRecord> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// "passed", "failed", "interrupted", "parked" or "running" (no summary: still going, or
    /// crashed).
    pub fn outcome(&self) -> &'static str {
        match &self.summary {
            None if self.parked => "parked",
            None => "running",
            Some(s) if s.interrupted => "interrupted",
            Some(s) if s.ok() => "passed",
            Some(_) => "failed",
        }
    }
}

/// One task of a [`RunRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Task name.
    pub name: String,
    /// Final status; `None` when the run ended before the task did.
    pub status: Option<TaskStatus>,
    /// Wall-clock time over all attempts, in milliseconds.
    pub duration_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Exit code of the last attempt.
    pub exit_code: Option<i32>,
    /// Why the task did not pass (masked).
    pub message: Option<String>,
    /// When its first attempt started, milliseconds since the Unix epoch.
    pub started_at_ms: Option<u64>,
    /// The executor that ran it.
    pub executor: Option<String>,
    /// The remote operation of its last attempt, when a remote executor ran it.
    #[serde(default)]
    pub operation: Option<String>,
}

impl TaskRecord {
    fn new(name: String) -> Self {
        TaskRecord {
            name,
            status: None,
            duration_ms: 0,
            attempts: 0,
            exit_code: None,
            message: None,
            started_at_ms: None,
            executor: None,
            operation: None,
        }
    }
}

/// An [`EventSink`] that writes the run record: once when the run starts (so a crashed run
/// still shows up in history) and once when it finishes. Writes are atomic (temp file +
/// rename). A write error never disturbs the run; it is kept for [`RunRecorder::take_error`].
pub struct RunRecorder {
    state_dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    fold: RecordFold,
    error: Option<StateError>,
}

impl RunRecorder {
    /// Records runs under `state_dir` (the project's `.sykli`).
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        RunRecorder {
            state_dir: state_dir.into(),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The first write error, if any happened.
    pub fn take_error(&self) -> Option<StateError> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .error
            .take()
    }

    /// The record as it stands.
    pub fn record(&self) -> Option<RunRecord> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fold
            .record()
            .cloned()
    }

    fn save(&self, inner: &mut Inner) {
        if let Some(record) = inner.fold.record()
            && let Err(e) = write_record(&self.state_dir, record)
            && inner.error.is_none()
        {
            inner.error = Some(e);
        }
    }
}

impl EventSink for RunRecorder {
    fn emit(&self, event: &Event) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.fold.apply(event, now_ms());
        if matches!(event, Event::RunStarted { .. } | Event::RunFinished(_)) {
            self.save(&mut inner);
        }
    }
}

/// Builds a [`RunRecord`] from a run's events, in order (the journal's records, or a live
/// run's events).
#[derive(Debug, Default, Clone)]
pub struct RecordFold {
    record: Option<RunRecord>,
    index: HashMap<String, usize>,
}

impl RecordFold {
    /// The record so far (`None` before `RunStarted`).
    pub fn record(&self) -> Option<&RunRecord> {
        self.record.as_ref()
    }

    /// Takes the record.
    pub fn into_record(self) -> Option<RunRecord> {
        self.record
    }

    /// Applies one event that happened at `at_ms`. A second `RunStarted` (a resumed run)
    /// keeps every task's state.
    pub fn apply(&mut self, event: &Event, at_ms: u64) {
        match event {
            Event::RunStarted {
                run_id,
                tasks,
                jobs,
                started_at_ms,
                ..
            } => {
                if let Some(record) = self.record.as_mut() {
                    record.parked = false;
                    record.jobs = *jobs;
                    return;
                }
                self.index = tasks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.clone(), i))
                    .collect();
                self.record = Some(RunRecord {
                    format: 1,
                    run_id: run_id.clone(),
                    started_at_ms: *started_at_ms,
                    finished_at_ms: None,
                    jobs: *jobs,
                    summary: None,
                    tasks: tasks.iter().cloned().map(TaskRecord::new).collect(),
                    parked: false,
                });
            }
            Event::TaskStarted { task, executor, .. } => {
                if let (Some(record), Some(&i)) = (self.record.as_mut(), self.index.get(task)) {
                    let t = &mut record.tasks[i];
                    t.started_at_ms.get_or_insert(at_ms);
                    t.executor = Some(executor.clone());
                }
            }
            Event::TaskFinished(r) => {
                let Some(record) = self.record.as_mut() else {
                    return;
                };
                let i = match self.index.get(&r.task) {
                    Some(&i) => i,
                    None => {
                        record.tasks.push(TaskRecord::new(r.task.clone()));
                        self.index.insert(r.task.clone(), record.tasks.len() - 1);
                        record.tasks.len() - 1
                    }
                };
                let t = &mut record.tasks[i];
                t.status = Some(r.status);
                t.duration_ms = r.duration_ms;
                t.attempts = r.attempts;
                t.exit_code = r.exit_code;
                t.message = r.message.clone();
            }
            Event::RunFinished(summary) => {
                if let Some(record) = self.record.as_mut() {
                    record.summary = Some(summary.clone());
                    record.finished_at_ms = Some(at_ms);
                    record.parked = false;
                }
            }
            Event::TaskRerun { task, .. } => {
                if let (Some(record), Some(&i)) = (self.record.as_mut(), self.index.get(task)) {
                    record.tasks[i].status = None;
                }
            }
            Event::TaskAttached {
                task, operation, ..
            } => {
                if let (Some(record), Some(&i)) = (self.record.as_mut(), self.index.get(task)) {
                    record.tasks[i].operation = Some(operation.clone());
                }
            }
            Event::RunParked { .. } => {
                if let Some(record) = self.record.as_mut() {
                    record.parked = true;
                }
            }
            Event::TaskOutput { .. }
            | Event::TaskResources { .. }
            | Event::TaskRetrying { .. }
            | Event::TaskCacheMiss { .. }
            | Event::TaskReattachFailed { .. }
            | Event::TaskPlaced { .. } => {}
        }
    }
}
