//! Runs made of REAPI actions: how `sykli worker` and `sykli serve` show what they execute
//! as runs in their [`Hub`]. A client's `RequestMetadata` names the run
//! (`tool_invocation_id`, sykli sends its run id) and the task (`target_id`, else the
//! action id); each action becomes a `TaskStarted` when it arrives and a `TaskFinished` when
//! its operation is done, numbered by the hub. A run with no action for [`IDLE`] ends (its
//! streams close; it stays listed as `ended`). Actions without metadata (other clients) are
//! grouped under their peer.
//!
//! Once [`ActionRuns::serve`] gave it the server's scheduler and live logs, a run also
//! carries its actions' live output (`TaskOutput`, masked as the logs are), resource
//! samples of its actions (`TaskResources`: those the server puts in each running
//! operation, [`crate::remote::resources`], whether it measured them here or a joined worker
//! reported them), and a cancel hook: `sykli cancel ADDR RUN` cancels every action of the run here, `sykli cancel
//! ADDR RUN TASK` the actions of that task ([`Scheduler::cancel`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::longrunning::{Operation, operation};
use prost::Message;
use tokio::sync::watch;

use super::hub::{Hub, RunHandle};
use super::resources::Sample;
use crate::TaskStatus;
use crate::events::{Event, TaskReport};
use crate::exec::OutputStream;
use crate::logs::MAX_EVENT_LINE;
use crate::remote::client::execute::REQUEST_METADATA;
use crate::remote::server::execution::Scheduler;
use crate::remote::server::live::LiveLogs;

/// How long a run of actions stays open with nothing running.
pub const IDLE: Duration = Duration::from_secs(30);

/// The reason a cancel through the hub gives the scheduler.
const CANCEL_REASON: &str = "cancelled on request (sykli cancel)";

/// The runs of a server's actions.
pub struct ActionRuns {
    hub: Hub,
    host: String,
    runs: Mutex<HashMap<String, Active>>,
    server: OnceLock<Served>,
}

/// What the server gives its runs: how to cancel and watch actions.
struct Served {
    scheduler: Arc<dyn Scheduler>,
    live: Arc<LiveLogs>,
}

struct Active {
    handle: RunHandle,
    running: usize,
    /// Bumped on every action: an idle timer only closes the run it was started for.
    generation: u64,
    /// The actions not finished: (task, operation name), by a number of this run.
    actions: HashMap<u64, (String, String)>,
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
            server: OnceLock::new(),
        })
    }

    /// Lets runs cancel their actions through `scheduler` and stream their live output
    /// from `live` (set once, by the server that owns both).
    pub fn serve(&self, scheduler: Arc<dyn Scheduler>, live: Arc<LiveLogs>) {
        let _ = self.server.set(Served { scheduler, live });
    }

    /// Cancels the unfinished actions of `run` (all, or those of `task`); whether one was
    /// stopped.
    fn cancel(&self, run: &str, task: Option<&str>) -> bool {
        let Some(server) = self.server.get() else {
            return false;
        };
        let ops: Vec<String> = {
            let runs = self.lock();
            let Some(a) = runs.get(run) else {
                return false;
            };
            a.actions
                .values()
                .filter(|(t, _)| task.is_none_or(|want| want == t))
                .map(|(_, op)| op.clone())
                .collect()
        };
        let mut any = false;
        for op in ops {
            any |= server.scheduler.cancel(&op, CANCEL_REASON).unwrap_or(false);
        }
        any
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
        let op_name = rx.borrow().name.clone();
        let (handle, id) = {
            let mut runs = self.lock();
            let a = runs.entry(run.clone()).or_insert_with(|| {
                let handle = self.hub.register(&run);
                // Without a scheduler the run is not cancellable (the hub says so).
                if self.server.get().is_some() {
                    let me: Weak<ActionRuns> = Arc::downgrade(self);
                    let id = run.clone();
                    handle.set_cancel(Arc::new(move |task: Option<&str>| {
                        me.upgrade().is_some_and(|me| me.cancel(&id, task))
                    }));
                }
                Active {
                    handle,
                    running: 0,
                    generation: 0,
                    actions: HashMap::new(),
                }
            });
            a.running += 1;
            a.generation += 1;
            a.actions
                .insert(a.generation, (task.clone(), op_name.clone()));
            (a.handle.clone(), a.generation)
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
            // Serve gives a requeued action new logs: each is followed.
            let mut watched: Option<[String; 2]> = None;
            let mut last_sample: Option<Sample> = None;
            let mut followers = Vec::new();
            let op = loop {
                let op = rx.borrow_and_update().clone();
                if op.done {
                    break Some(op);
                }
                if let Some(streams) = executing(&op)
                    && watched.as_ref() != Some(&streams)
                {
                    watched = Some(streams.clone());
                    followers.extend(me.watch(&handle, &task, streams));
                }
                if let Some(sample) = crate::remote::resources::of_operation(&op)
                    && last_sample != Some(sample)
                {
                    last_sample = Some(sample);
                    handle.publish(Event::TaskResources {
                        task: task.clone(),
                        cpu_percent: sample.cpu_percent,
                        rss_bytes: sample.rss_bytes,
                    });
                }
                if rx.changed().await.is_err() {
                    break None;
                }
            };
            // The output goes out before the finish (the logs end with the action).
            for f in followers {
                let _ = tokio::time::timeout(FOLLOW_LIMIT, f).await;
            }
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
            me.finished(&run, id);
        });
    }

    /// Streams the live output `streams` of a running operation of `task` into the run as
    /// `TaskOutput` lines. Returns the output followers (they end with the logs).
    fn watch(
        &self,
        handle: &RunHandle,
        task: &str,
        streams: [String; 2],
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(server) = self.server.get() else {
            return Vec::new();
        };
        let mut followers = Vec::new();
        for (name, stream) in streams
            .iter()
            .zip([OutputStream::Stdout, OutputStream::Stderr])
        {
            // A log already gone (a quick action) has nothing to stream: its result has it.
            let Some(Ok(mut chunks)) = server.live.read(name, 0) else {
                continue;
            };
            let (handle, task) = (handle.clone(), task.to_owned());
            followers.push(tokio::spawn(async move {
                use futures::StreamExt;
                let mut lines = Lines::default();
                // Bounded by the log: the stream ends when the action does.
                while let Some(Ok(chunk)) = chunks.next().await {
                    lines.push(&chunk.data, |line| {
                        handle.publish(Event::TaskOutput {
                            task: task.clone(),
                            stream,
                            line,
                        });
                    });
                }
                lines.finish(|line| {
                    handle.publish(Event::TaskOutput {
                        task: task.clone(),
                        stream,
                        line,
                    });
                });
            }));
        }
        followers
    }

    /// Action `id` of `run` finished: when none is left, the run ends after [`IDLE`].
    fn finished(self: &Arc<Self>, run: &str, id: u64) {
        let generation = {
            let mut runs = self.lock();
            let Some(a) = runs.get_mut(run) else { return };
            a.actions.remove(&id);
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

/// How long a finished action's output followers may take to deliver the rest.
const FOLLOW_LIMIT: Duration = Duration::from_secs(5);

/// The live log names of an operation that is executing, when the server gives them.
fn executing(op: &Operation) -> Option<[String; 2]> {
    use reapi::execution_stage::Value;
    let meta = reapi::ExecuteOperationMetadata::decode(&op.metadata.as_ref()?.value[..]).ok()?;
    (meta.stage == Value::Executing as i32 && !meta.stdout_stream_name.is_empty())
        .then_some([meta.stdout_stream_name, meta.stderr_stream_name])
}

/// Splits a byte stream into lines of at most [`MAX_EVENT_LINE`] bytes (the rest of a
/// longer line is counted, as the task log's events do).
#[derive(Default)]
struct Lines {
    line: Vec<u8>,
    dropped: usize,
}

impl Lines {
    fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(String)) {
        while let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
            self.append(&bytes[..nl]);
            emit(self.take());
            bytes = &bytes[nl + 1..];
        }
        self.append(bytes);
    }

    fn finish(&mut self, emit: impl FnOnce(String)) {
        if !self.line.is_empty() || self.dropped > 0 {
            emit(self.take());
        }
    }

    fn append(&mut self, part: &[u8]) {
        let room = MAX_EVENT_LINE.saturating_sub(self.line.len());
        let take = room.min(part.len());
        self.line.extend_from_slice(&part[..take]);
        self.dropped += part.len() - take;
    }

    fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.line);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        let mut text = String::from_utf8_lossy(line).into_owned();
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            text.push_str(&format!(" [... {dropped} more bytes in the log]"));
        }
        text
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample the server put in an operation lands on the task of the run waiting for it.
    #[tokio::test]
    async fn samples_in_the_operation_reach_the_task_of_the_run_waiting_for_it() {
        use crate::cache::digest::DigestFunction;
        use crate::remote::server::digests::BlobDigest;
        use crate::remote::server::execution::operation;
        use reapi::execution_stage::Value as Stage;
        let hub = Hub::new();
        let runs = ActionRuns::new(hub.clone(), "serve");
        let action = BlobDigest::of(DigestFunction::Blake3, b"a");
        let executing = operation(
            "operations/x",
            Stage::Executing,
            DigestFunction::Blake3,
            &action,
            None,
        );
        let (tx, rx) = watch::channel(executing);
        runs.track("run1".into(), "build".into(), rx);
        let task = |hub: &Hub| {
            hub.run("run1")
                .unwrap()
                .tasks
                .into_iter()
                .find(|t| t.name == "build")
                .unwrap()
        };
        assert_eq!(task(&hub).rss_bytes, None);
        tx.send_modify(|op| {
            crate::remote::resources::attach(
                op,
                Sample {
                    cpu_percent: 12.5,
                    rss_bytes: 4096,
                },
            );
        });
        let until = Instant::now() + Duration::from_secs(10);
        while task(&hub).rss_bytes.is_none() {
            assert!(Instant::now() < until, "the sample never reached the task");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = task(&hub);
        assert_eq!((t.cpu_percent, t.rss_bytes), (Some(12.5), Some(4096)));
    }

    #[test]
    fn lines_split_across_chunks_and_long_ones_are_cut() {
        let mut got = Vec::new();
        let mut l = Lines::default();
        l.push(b"one\ntw", |s| got.push(s));
        l.push(b"o\r\nthr", |s| got.push(s));
        l.finish(|s| got.push(s));
        assert_eq!(got, ["one", "two", "thr"]);
        let mut got = Vec::new();
        let long = vec![b'x'; MAX_EVENT_LINE + 10];
        l.push(&long, |s| got.push(s));
        l.push(b"\n", |s| got.push(s));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].ends_with(" [... 10 more bytes in the log]"),
            "{}",
            &got[0][MAX_EVENT_LINE..]
        );
    }
}
