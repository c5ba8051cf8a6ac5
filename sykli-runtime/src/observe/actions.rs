//! Runs made of REAPI actions: how `sykli worker` and `sykli serve` show what they execute
//! as runs in their [`Hub`]. A client's `RequestMetadata` names the run
//! (`tool_invocation_id`, sykli sends its run id) and the task (`target_id`, else the
//! action id); each action becomes a `TaskStarted` when it arrives and a `TaskFinished` when
//! its operation is done, numbered by the hub. A run with no action for [`IDLE`] ends (its
//! streams close; it stays listed as `ended`). Actions without metadata (other clients) are
//! grouped under their peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::longrunning::{Operation, operation};
use prost::Message;
use tokio::sync::watch;

use super::hub::{Hub, RunHandle};
use crate::TaskStatus;
use crate::events::{Event, TaskReport};
use crate::remote::client::execute::REQUEST_METADATA;

/// How long a run of actions stays open with nothing running.
pub const IDLE: Duration = Duration::from_secs(30);

/// The runs of a server's actions.
pub struct ActionRuns {
    hub: Hub,
    host: String,
    runs: Mutex<HashMap<String, Active>>,
}

struct Active {
    handle: RunHandle,
    running: usize,
    /// Bumped on every action: an idle timer only closes the run it was started for.
    generation: u64,
}

impl std::fmt::Debug for ActionRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionRuns")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// The run and task an `Execute` belongs to, from its `RequestMetadata` (`None` without).
pub fn run_and_task(metadata: &tonic::metadata::MetadataMap) -> Option<(String, String)> {
    let m = metadata
        .get_bin(REQUEST_METADATA)
        .and_then(|v| v.to_bytes().ok())
        .and_then(|b| reapi::RequestMetadata::decode(&b[..]).ok())?;
    let run = if m.tool_invocation_id.is_empty() {
        m.correlated_invocations_id
    } else {
        m.tool_invocation_id
    };
    let task = if m.target_id.is_empty() {
        m.action_id
    } else {
        m.target_id
    };
    (!run.is_empty() && !task.is_empty()).then_some((run, task))
}

impl ActionRuns {
    /// Runs of the actions served as `host`, in `hub`.
    pub fn new(hub: Hub, host: impl Into<String>) -> Arc<Self> {
        Arc::new(ActionRuns {
            hub,
            host: host.into(),
            runs: Mutex::new(HashMap::new()),
        })
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The server's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows the operation `rx` of `task` of `run` until it is done.
    pub fn track(self: &Arc<Self>, run: String, task: String, mut rx: watch::Receiver<Operation>) {
        let handle = {
            let mut runs = self.lock();
            let a = runs.entry(run.clone()).or_insert_with(|| Active {
                handle: self.hub.register(&run),
                running: 0,
                generation: 0,
            });
            a.running += 1;
            a.generation += 1;
            a.handle.clone()
        };
        handle.publish(Event::TaskStarted {
            task: task.clone(),
            attempt: 1,
            executor: "remote".into(),
        });
        handle.set_host(&task, &self.host);
        let me = self.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let op = loop {
                let op = rx.borrow_and_update().clone();
                if op.done {
                    break Some(op);
                }
                if rx.changed().await.is_err() {
                    break None;
                }
            };
            let (status, exit_code, message) = match op.as_ref().and_then(response_of) {
                Some(r) => outcome(&r),
                None => (
                    TaskStatus::Errored,
                    None,
                    Some("the operation ended without a result".to_owned()),
                ),
            };
            handle.publish(Event::TaskFinished(TaskReport {
                task,
                status,
                exit_code,
                duration_ms: started.elapsed().as_millis() as u64,
                attempts: 1,
                message,
            }));
            drop(handle);
            me.finished(&run);
        });
    }

    /// An action of `run` finished: when none is left, the run ends after [`IDLE`].
    fn finished(self: &Arc<Self>, run: &str) {
        let generation = {
            let mut runs = self.lock();
            let Some(a) = runs.get_mut(run) else { return };
            a.running = a.running.saturating_sub(1);
            if a.running > 0 {
                return;
            }
            a.generation
        };
        let me = self.clone();
        let run = run.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(IDLE).await;
            let mut runs = me.lock();
            if runs
                .get(&run)
                .is_some_and(|a| a.running == 0 && a.generation == generation)
                && let Some(a) = runs.remove(&run)
            {
                a.handle.close();
            }
        });
    }
}

fn response_of(op: &Operation) -> Option<reapi::ExecuteResponse> {
    match &op.result {
        Some(operation::Result::Response(any)) => {
            reapi::ExecuteResponse::decode(&any.value[..]).ok()
        }
        _ => None,
    }
}

fn outcome(r: &reapi::ExecuteResponse) -> (TaskStatus, Option<i32>, Option<String>) {
    if let Some(s) = &r.status
        && s.code != 0
    {
        return (TaskStatus::Errored, None, Some(s.message.clone()));
    }
    let Some(result) = &r.result else {
        return (
            TaskStatus::Errored,
            None,
            Some("no action result".to_owned()),
        );
    };
    match (result.exit_code, r.cached_result) {
        (0, true) => (TaskStatus::Cached, Some(0), None),
        (0, false) => (TaskStatus::Passed, Some(0), None),
        (code, _) => (
            TaskStatus::Failed,
            Some(code),
            Some(format!("exited with code {code}")),
        ),
    }
}
