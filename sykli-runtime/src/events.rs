//! Events: the one stream through which a run is observed.
//!
//! The scheduler emits [`Event`]s into an [`EventSink`]; reporters (terminal, JSON, run
//! records, later the journal and the observe stream) consume them and never call back into
//! the scheduler. Events are owned and serde-able so they can cross processes and machines.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

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
        /// Start time, milliseconds since the Unix epoch (of this segment, when resumed).
        started_at_ms: u64,
        /// Digest of the plan being run (`blake3:<hex>`), to check that a resumed run runs
        /// the same pipeline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan_digest: Option<String>,
        /// Whether this continues a run from its journal (`sykli run --resume`): tasks
        /// finished before are not reported again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
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
    /// A sample of a running task's resource use, about once a second: its process tree
    /// (or its sandbox cgroup) on this machine.
    TaskResources {
        /// Task name.
        task: String,
        /// CPU used since the previous sample, in percent of one core (200.0: two cores).
        cpu_percent: f64,
        /// Resident memory of its processes, in bytes.
        rss_bytes: u64,
    },
    /// The cache had no result for a cacheable task (or it is not cacheable), so it runs.
    TaskCacheMiss {
        /// Task name.
        task: String,
        /// Why, in one line: the input, env var or dependency output that changed, "no
        /// previous entry", or why the task is not cacheable.
        reason: String,
    },
    /// A resumed run runs a task again that had passed before it stopped, because its
    /// outputs cannot be restored (its earlier `TaskFinished` no longer stands).
    TaskRerun {
        /// Task name.
        task: String,
        /// Why, in one line.
        reason: String,
    },
    /// A remote executor knows the operation running the current attempt (REAPI: the
    /// Execute operation's name). Journalled, so a resumed run re-attaches to it with
    /// `WaitExecution` instead of executing the action again.
    TaskAttached {
        /// Task name.
        task: String,
        /// The operation's name on the remote server.
        operation: String,
        /// Whether this attempt re-attached to an operation journalled by an earlier
        /// process of the run (a resume) rather than starting it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reattached: bool,
    },
    /// A resumed run could not re-attach to a task's journalled operation (the server no
    /// longer knows it: restarted, or the operation expired), so the action is executed
    /// again.
    TaskReattachFailed {
        /// Task name.
        task: String,
        /// The journalled operation's name.
        operation: String,
        /// The server's answer.
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
    /// The run only waits on gates (or long retry backoffs) and was parked (`sykli run --park`): it is recorded in
    /// its journal and the process exits; `sykli run --resume` continues it. No
    /// `RunFinished` follows in this process.
    RunParked {
        /// The gates (and tasks backing off before a retry) it waits on.
        waiting: Vec<String>,
        /// When the earliest retry backoff it waits out is over (ms since the epoch): when
        /// to wake it. None when it only waits on gates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wake_at_ms: Option<u64>,
    },
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

    /// Handles one event with its [`Envelope`] (sequence number, time, task context), as the
    /// run's [`EventDispatcher`] sends it. Sinks that only need the event (the reporters)
    /// keep this default; the journal records the whole envelope.
    fn emit_envelope(&self, envelope: &Envelope) {
        self.emit(&envelope.event);
    }
}

/// The digest of one output of a finished task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDigest {
    /// Absolute path of the output.
    pub path: std::path::PathBuf,
    /// `blake3:<hex>` of the file's bytes, or of a directory's sorted relative paths and
    /// file bytes.
    pub digest: String,
}

/// An event as it happened in one run: which run, its place in the run's one order, when
/// and, for task events, the task, attempt and cache key. A finished task's envelope
/// carries its output digests and log location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The run.
    pub run_id: String,
    /// Gap-free sequence number within the run, from 1; a resumed run continues it.
    pub seq: u64,
    /// When it happened (on the machine where it happened), ms since the Unix epoch.
    pub at_ms: u64,
    /// The task, for task events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The task's attempt (its last one for `TaskFinished`), when it has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The task's cache key, when the plan knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Outputs of a finished task, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, OutputDigest>,
    /// The log file of a finished task, when it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<std::path::PathBuf>,
    /// The event.
    pub event: Event,
}

/// What a finished task adds to its envelope.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// Output digests by name.
    pub outputs: BTreeMap<String, OutputDigest>,
    /// Its log file, when one was written.
    pub log: Option<std::path::PathBuf>,
}

/// The one ordered channel of a run (as nextest's dispatcher owns ordering): every event,
/// from whichever task emits it, is stamped and numbered under one lock and handed to the
/// sinks (reporters, journal) in that order, so every sink sees the same sequence.
pub struct EventDispatcher {
    run_id: String,
    sink: Arc<dyn EventSink>,
    cache_keys: HashMap<String, String>,
    state: Mutex<DispatchState>,
}

struct DispatchState {
    next_seq: u64,
    attempts: HashMap<String, u32>,
}

impl EventDispatcher {
    /// A dispatcher for `run_id` sending to `sink`, numbering from `next_seq` (1 for a new
    /// run; the journal's next number for a resumed one). `cache_keys` are the plan's known
    /// keys by task.
    pub fn new(
        run_id: impl Into<String>,
        next_seq: u64,
        cache_keys: HashMap<String, String>,
        sink: Arc<dyn EventSink>,
    ) -> Self {
        EventDispatcher {
            run_id: run_id.into(),
            sink,
            cache_keys,
            state: Mutex::new(DispatchState {
                next_seq: next_seq.max(1),
                attempts: HashMap::new(),
            }),
        }
    }

    /// Sends a task's final report with its output digests and log location.
    pub fn emit_finished(&self, report: TaskReport, finished: Finished) {
        self.send(Event::TaskFinished(report), finished);
    }

    fn send(&self, event: Event, finished: Finished) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let task = event_task(&event).map(str::to_owned);
        let attempt = match &event {
            Event::TaskStarted { task, attempt, .. } => {
                st.attempts.insert(task.clone(), *attempt);
                Some(*attempt)
            }
            Event::TaskFinished(r) => (r.attempts > 0).then_some(r.attempts),
            _ => task.as_ref().and_then(|t| st.attempts.get(t).copied()),
        };
        let envelope = Envelope {
            run_id: self.run_id.clone(),
            seq: st.next_seq,
            at_ms: now_ms(),
            cache_key: task.as_ref().and_then(|t| self.cache_keys.get(t).cloned()),
            task,
            attempt,
            outputs: finished.outputs,
            log: finished.log,
            event,
        };
        st.next_seq += 1;
        // Sent under the lock: the order of sequence numbers is the order sinks see.
        self.sink.emit_envelope(&envelope);
    }
}

impl EventSink for EventDispatcher {
    fn emit(&self, event: &Event) {
        self.send(event.clone(), Finished::default());
    }
}

/// The task an event is about, if any.
pub fn event_task(event: &Event) -> Option<&str> {
    match event {
        Event::TaskPlaced { task, .. }
        | Event::TaskStarted { task, .. }
        | Event::TaskOutput { task, .. }
        | Event::TaskResources { task, .. }
        | Event::TaskCacheMiss { task, .. }
        | Event::TaskRetrying { task, .. }
        | Event::TaskRerun { task, .. }
        | Event::TaskAttached { task, .. }
        | Event::TaskReattachFailed { task, .. } => Some(task),
        Event::TaskFinished(r) => Some(&r.task),
        Event::RunStarted { .. } | Event::RunFinished(_) | Event::RunParked { .. } => None,
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Envelope>>);

    impl EventSink for Collect {
        fn emit(&self, _: &Event) {
            unreachable!("the dispatcher sends envelopes")
        }
        fn emit_envelope(&self, e: &Envelope) {
            self.0.lock().unwrap().push(e.clone());
        }
    }

    #[test]
    fn events_from_many_threads_get_one_gap_free_order_and_task_context() {
        let sink = Arc::new(Collect::default());
        let keys = HashMap::from([("t0".to_string(), "blake3:k".to_string())]);
        let d = Arc::new(EventDispatcher::new("r", 5, keys, sink.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let d = d.clone();
                std::thread::spawn(move || {
                    let task = format!("t{t}");
                    d.emit(&Event::TaskStarted {
                        task: task.clone(),
                        attempt: 2,
                        executor: "process".into(),
                    });
                    for i in 0..100 {
                        d.emit(&Event::TaskOutput {
                            task: task.clone(),
                            stream: crate::exec::OutputStream::Stdout,
                            line: i.to_string(),
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let got = sink.0.lock().unwrap();
        assert_eq!(got.len(), 404);
        for (i, e) in got.iter().enumerate() {
            assert_eq!(e.seq, 5 + i as u64, "gap-free, in the order sinks saw them");
            assert_eq!(e.run_id, "r");
            assert_eq!(e.attempt, Some(2));
            assert_eq!(e.cache_key.is_some(), e.task.as_deref() == Some("t0"));
        }
        assert!(got.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }
}
