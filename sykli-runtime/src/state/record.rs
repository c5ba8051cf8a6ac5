//! The run record and the sink that writes it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::StateError;
use super::store::write_record;
use crate::TaskStatus;
use crate::events::{Event, EventSink, RunSummary};

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
}

impl RunRecord {
    /// A task of this run by name.
    pub fn task(&self, name: &str) -> Option<&TaskRecord> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// "passed", "failed", "interrupted" or "running" (no summary: still going, or crashed).
    pub fn outcome(&self) -> &'static str {
        match &self.summary {
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
    record: Option<RunRecord>,
    index: HashMap<String, usize>,
    error: Option<StateError>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
            .record
            .clone()
    }

    fn save(&self, inner: &mut Inner) {
        if let Some(record) = &inner.record
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
        match event {
            Event::RunStarted {
                run_id,
                tasks,
                jobs,
                started_at_ms,
            } => {
                inner.index = tasks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.clone(), i))
                    .collect();
                inner.record = Some(RunRecord {
                    format: 1,
                    run_id: run_id.clone(),
                    started_at_ms: *started_at_ms,
                    finished_at_ms: None,
                    jobs: *jobs,
                    summary: None,
                    tasks: tasks.iter().cloned().map(TaskRecord::new).collect(),
                });
                self.save(&mut inner);
            }
            Event::TaskStarted { task, executor, .. } => {
                let Inner { record, index, .. } = &mut *inner;
                if let (Some(record), Some(&i)) = (record.as_mut(), index.get(task)) {
                    let t = &mut record.tasks[i];
                    t.started_at_ms.get_or_insert_with(now_ms);
                    t.executor = Some(executor.clone());
                }
            }
            Event::TaskFinished(r) => {
                let Inner { record, index, .. } = &mut *inner;
                let Some(record) = record.as_mut() else {
                    return;
                };
                let i = match index.get(&r.task) {
                    Some(&i) => i,
                    None => {
                        record.tasks.push(TaskRecord::new(r.task.clone()));
                        index.insert(r.task.clone(), record.tasks.len() - 1);
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
                if let Some(record) = inner.record.as_mut() {
                    record.summary = Some(summary.clone());
                    record.finished_at_ms = Some(now_ms());
                }
                self.save(&mut inner);
            }
            Event::TaskOutput { .. }
            | Event::TaskRetrying { .. }
            | Event::TaskCacheMiss { .. }
            | Event::TaskPlaced { .. } => {}
        }
    }
}
