//! The observe hub: the runs this process serves, each with every event it emitted (up to a
//! cap) and a live feed, so any number of observers (the gRPC `Subscribe`, the web view,
//! metrics) read one run's one ordered stream.
//!
//! A run enters the hub with [`Hub::register`], which returns a [`RunHandle`]: an
//! [`EventSink`] to put in the run's sink chain next to the journal. The handle keeps each
//! [`Envelope`] as the run's dispatcher numbered it ([`EventSink::emit_envelope`]), or numbers
//! events itself ([`RunHandle::publish`]) for runs assembled from outside (a worker grouping
//! REAPI actions into runs).
//!
//! [`Hub::subscribe`] replays a run from a sequence number and continues live: replay and live
//! are one read of one buffer, so there is no gap and no duplicate between them. A run keeps at
//! most [`RUN_EVENT_CAP`] events; past that the oldest are dropped (the journal keeps them),
//! and a subscriber asking for, or still behind, a dropped event gets
//! [`HubError::Evicted`] instead of a stream with a hole. The hub keeps at most
//! [`FINISHED_RUN_CAP`] finished runs; older finished runs are forgotten.
//!
//! ```
//! use futures::StreamExt;
//! use sykli_runtime::events::{Event, EventSink};
//! use sykli_runtime::observe::hub::Hub;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let run = hub.register("r1");
//! run.publish(Event::TaskStarted { task: "t".into(), attempt: 1, executor: "process".into() });
//! let mut events = hub.subscribe("r1", None, 1).unwrap();
//! assert_eq!(events.next().await.unwrap().unwrap().seq, 1);
//! run.close();
//! assert!(events.next().await.is_none());
//! # });
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::events::{Envelope, Event, EventSink, event_task, now_ms};
use crate::scheduler::TaskCancels;

/// Most events a run keeps for replay; past it the oldest are dropped.
pub const RUN_EVENT_CAP: usize = 500_000;

/// Most finished runs the hub keeps; past it the oldest finished run is forgotten.
pub const FINISHED_RUN_CAP: usize = 64;

/// Events handed to a subscriber per lock of its run (keeps the lock short for big replays).
const BATCH: usize = 512;

/// How long a caught-up subscriber lets new events gather after being woken, so a busy run
/// wakes each observer at most 20 times a second rather than once per event (invisible in a
/// live view). bench/observe, 10 observers of a 1,000-task run on 2 cores: +22% wall time when
/// every event woke every observer, +5.7% gathering 20 ms, -0.5% gathering 50 ms.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Why the hub refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// No run with that id is served here.
    #[error("no run `{run}` is served here (known: {known})")]
    NoSuchRun {
        /// The id asked for.
        run: String,
        /// The ids served, comma-separated, or "none".
        known: String,
    },
    /// Events the subscriber needs were dropped from the run's buffer (over its cap).
    #[error(
        "run `{run}`: events before #{first_kept} are no longer kept here (a run keeps its \
         last {cap} events; `sykli logs` and the journal have them all); asked from #{asked}"
    )]
    Evicted {
        /// The run.
        run: String,
        /// The first sequence number asked for.
        asked: u64,
        /// The oldest sequence number still kept.
        first_kept: u64,
        /// The cap.
        cap: usize,
    },
    /// The run cannot be cancelled from here.
    #[error("run `{run}` cannot be cancelled from here")]
    NotCancellable {
        /// The run.
        run: String,
    },
    /// The run already ended.
    #[error("run `{run}` already finished")]
    Finished {
        /// The run.
        run: String,
    },
    /// The task is not running in that run.
    #[error("task `{task}` of run `{run}` is not running")]
    TaskNotRunning {
        /// The run.
        run: String,
        /// The task.
        task: String,
    },
}

/// What happens to a cancel request for a run: `None` cancels the run, `Some(task)` one task.
/// Returns whether it was running (false: nothing to cancel).
pub type CancelFn = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Registered; `RunStarted` not seen yet.
    Pending,
    /// Started and not finished.
    Running,
    /// Finished with nothing failed.
    Passed,
    /// Finished with a failure or an error.
    Failed,
    /// Finished interrupted (Ctrl-C, SIGTERM, cancel).
    Interrupted,
    /// Parked on gates (`--park`): waits in its journal.
    Parked,
    /// Ended without a `RunFinished` (the process gave up on it, or a worker's run went idle).
    Ended,
}

impl RunState {
    /// Whether the run is over.
    pub fn is_done(self) -> bool {
        !matches!(self, RunState::Pending | RunState::Running)
    }
}

/// Where a task stands, as seen from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not started.
    Pending,
    /// An attempt is running.
    Running,
    /// Waiting to retry.
    Retrying,
    /// Final status reached.
    Done(crate::TaskStatus),
}

/// One task of a run, as far as its events tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task name.
    pub name: String,
    /// Where it stands.
    pub state: TaskState,
    /// The executor it runs on, once started.
    pub executor: Option<String>,
    /// The machine it runs on, when the run knows it (a worker's host).
    pub host: Option<String>,
    /// Current (or last) attempt.
    pub attempt: u32,
    /// When its current attempt started, ms since the Unix epoch.
    pub started_at_ms: Option<u64>,
    /// Its duration over all attempts, once finished.
    pub duration_ms: Option<u64>,
    /// Last sampled CPU use, percent of one core.
    pub cpu_percent: Option<f64>,
    /// Last sampled resident memory, bytes.
    pub rss_bytes: Option<u64>,
}

/// A run as the hub sees it: the row `sykli ps` prints, what the web view lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// Where it stands.
    pub state: RunState,
    /// When it started (its `RunStarted`, else registration), ms since the Unix epoch.
    pub started_at_ms: u64,
    /// When it ended, once it has.
    pub finished_at_ms: Option<u64>,
    /// Sequence number of its last event (0: none yet).
    pub last_seq: u64,
    /// Tasks by final status (`passed`, `failed`, ...), plus `running`.
    pub counts: BTreeMap<String, usize>,
    /// Its tasks, in plan order (then in order of first event).
    pub tasks: Vec<TaskInfo>,
}

impl RunInfo {
    fn new(run_id: &str) -> Self {
        RunInfo {
            run_id: run_id.to_owned(),
            state: RunState::Pending,
            started_at_ms: now_ms(),
            finished_at_ms: None,
            last_seq: 0,
            counts: BTreeMap::new(),
            tasks: Vec::new(),
        }
    }

    fn task_mut(&mut self, name: &str) -> &mut TaskInfo {
        let i = match self.tasks.iter().position(|t| t.name == name) {
            Some(i) => i,
            None => {
                self.tasks.push(TaskInfo {
                    name: name.to_owned(),
                    state: TaskState::Pending,
                    executor: None,
                    host: None,
                    attempt: 0,
                    started_at_ms: None,
                    duration_ms: None,
                    cpu_percent: None,
                    rss_bytes: None,
                });
                self.tasks.len() - 1
            }
        };
        &mut self.tasks[i]
    }

    /// Folds one event into the run's state.
    fn apply(&mut self, e: &Envelope) {
        self.last_seq = e.seq;
        match &e.event {
            Event::RunStarted {
                tasks,
                started_at_ms,
                ..
            } => {
                self.state = RunState::Running;
                self.started_at_ms = *started_at_ms;
                for t in tasks {
                    self.task_mut(t);
                }
            }
            Event::TaskPlaced { task, executor, .. } => {
                self.task_mut(task).executor = Some(executor.clone());
            }
            Event::TaskStarted {
                task,
                attempt,
                executor,
            } => {
                if self.state == RunState::Pending {
                    self.state = RunState::Running;
                }
                let t = self.task_mut(task);
                t.state = TaskState::Running;
                t.attempt = *attempt;
                t.executor = Some(executor.clone());
                t.started_at_ms = Some(e.at_ms);
            }
            Event::TaskRetrying { task, .. } => {
                self.task_mut(task).state = TaskState::Retrying;
            }
            Event::TaskFinished(r) => {
                let t = self.task_mut(&r.task);
                t.state = TaskState::Done(r.status);
                t.duration_ms = Some(r.duration_ms);
                t.attempt = r.attempts;
            }
            Event::RunFinished(s) => {
                self.state = if s.interrupted {
                    RunState::Interrupted
                } else if s.ok() {
                    RunState::Passed
                } else {
                    RunState::Failed
                };
                self.finished_at_ms = Some(e.at_ms);
            }
            Event::RunParked { .. } => {
                self.state = RunState::Parked;
                self.finished_at_ms = Some(e.at_ms);
            }
            Event::TaskResources {
                task,
                cpu_percent,
                rss_bytes,
            } => {
                let t = self.task_mut(task);
                t.cpu_percent = Some(*cpu_percent);
                t.rss_bytes = Some(*rss_bytes);
            }
            Event::TaskOutput { .. }
            | Event::TaskCacheMiss { .. }
            | Event::TaskRerun { .. }
            | Event::TaskAttached { .. }
            | Event::TaskReattachFailed { .. } => {}
        }
        self.recount();
    }

    fn recount(&mut self) {
        let mut counts = BTreeMap::new();
        for t in &self.tasks {
            let key = match t.state {
                TaskState::Pending => "pending",
                TaskState::Running | TaskState::Retrying => "running",
                TaskState::Done(s) => s.as_str(),
            };
            *counts.entry(key.to_owned()).or_insert(0) += 1;
        }
        self.counts = counts;
    }
}

/// One run's buffer and state, under its lock.
struct RunBuf {
    events: VecDeque<Arc<Envelope>>,
    /// Sequence number [`RunHandle::publish`] gives next.
    next_seq: u64,
    /// Whether no event will follow.
    done: bool,
    info: RunInfo,
    cap: usize,
}

impl RunBuf {
    fn first_kept(&self) -> u64 {
        self.events.front().map_or(self.next_seq, |e| e.seq)
    }
}

/// A run in the hub.
struct RunEntry {
    id: String,
    buf: Mutex<RunBuf>,
    /// Bumped after every change of `buf` (its value: the last sequence number).
    feed: watch::Sender<u64>,
    cancel: Mutex<Option<CancelFn>>,
    hub: Arc<HubShared>,
}

impl RunEntry {
    fn lock(&self) -> MutexGuard<'_, RunBuf> {
        self.buf.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, envelope: Envelope) {
        let seq = envelope.seq;
        {
            let mut b = self.lock();
            if b.done {
                return;
            }
            b.info.apply(&envelope);
            if matches!(
                envelope.event,
                Event::RunFinished(_) | Event::RunParked { .. }
            ) {
                b.done = true;
            }
            b.next_seq = b.next_seq.max(seq + 1);
            b.events.push_back(Arc::new(envelope));
            while b.events.len() > b.cap {
                b.events.pop_front();
            }
        }
        self.feed.send_replace(seq);
        self.hub.bump();
    }

    fn close(&self) {
        {
            let mut b = self.lock();
            if b.done {
                return;
            }
            b.done = true;
            if !b.info.state.is_done() {
                b.info.state = RunState::Ended;
                b.info.finished_at_ms = Some(now_ms());
            }
        }
        self.feed.send_modify(|_| {});
        prune(&mut self.hub.runs());
        self.hub.bump();
    }
}

/// Forgets the oldest finished runs over [`FINISHED_RUN_CAP`].
fn prune(runs: &mut Vec<Arc<RunEntry>>) {
    let mut finished = runs.iter().filter(|e| e.lock().done).count();
    if finished <= FINISHED_RUN_CAP {
        return;
    }
    runs.retain(|e| {
        if finished > FINISHED_RUN_CAP && e.lock().done {
            finished -= 1;
            false
        } else {
            true
        }
    });
}

struct HubShared {
    runs: Mutex<Vec<Arc<RunEntry>>>,
    /// Subscriptions open now.
    active: std::sync::atomic::AtomicUsize,
    /// Subscriptions ever made.
    ever: std::sync::atomic::AtomicU64,
    /// Bumped whenever any run changes (new run, new event, end).
    changed: watch::Sender<u64>,
}

impl HubShared {
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn runs(&self) -> MutexGuard<'_, Vec<Arc<RunEntry>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The runs this process serves. Cheap to clone (shared).
#[derive(Clone)]
pub struct Hub {
    shared: Arc<HubShared>,
    cap: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("runs", &self.shared.runs().len())
            .finish()
    }
}

impl Hub {
    /// An empty hub keeping [`RUN_EVENT_CAP`] events per run.
    pub fn new() -> Self {
        Self::with_cap(RUN_EVENT_CAP)
    }

    /// An empty hub keeping `cap` (at least 1) events per run.
    pub fn with_cap(cap: usize) -> Self {
        Hub {
            shared: Arc::new(HubShared {
                runs: Mutex::new(Vec::new()),
                active: Default::default(),
                ever: Default::default(),
                changed: watch::channel(0).0,
            }),
            cap: cap.max(1),
        }
    }

    /// Adds run `run_id` (or returns the handle of the one already served under that id, so
    /// a resumed run continues its entry) and forgets the oldest finished runs over
    /// [`FINISHED_RUN_CAP`].
    pub fn register(&self, run_id: &str) -> RunHandle {
        let mut runs = self.shared.runs();
        if let Some(e) = runs.iter().find(|e| e.id == run_id) {
            let mut b = e.lock();
            if b.done {
                // Continued (resumed): live again.
                b.done = false;
                b.info.state = RunState::Pending;
                b.info.finished_at_ms = None;
            }
            return RunHandle::new(e.clone());
        }
        let entry = Arc::new(RunEntry {
            id: run_id.to_owned(),
            buf: Mutex::new(RunBuf {
                events: VecDeque::new(),
                next_seq: 1,
                done: false,
                info: RunInfo::new(run_id),
                cap: self.cap,
            }),
            feed: watch::channel(0).0,
            cancel: Mutex::new(None),
            hub: self.shared.clone(),
        });
        runs.push(entry.clone());
        prune(&mut runs);
        drop(runs);
        self.shared.bump();
        RunHandle::new(entry)
    }

    /// Every run served, oldest first.
    pub fn runs(&self) -> Vec<RunInfo> {
        let runs: Vec<_> = self.shared.runs().clone();
        runs.iter().map(|e| e.lock().info.clone()).collect()
    }

    /// One run's state.
    pub fn run(&self, run_id: &str) -> Result<RunInfo, HubError> {
        Ok(self.entry(run_id)?.lock().info.clone())
    }

    /// The newest run that is not done, else the newest run, else `None`.
    pub fn latest(&self) -> Option<String> {
        let runs = self.shared.runs();
        runs.iter()
            .rev()
            .find(|e| !e.lock().done)
            .or(runs.last())
            .map(|e| e.id.clone())
    }

    /// Subscriptions open now, and ever made: `sykli run --serve` lingers a moment after
    /// its run when it had observers, so one that is reconnecting still gets the end.
    pub fn observers(&self) -> (usize, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.shared.active.load(Relaxed),
            self.shared.ever.load(Relaxed),
        )
    }

    /// A receiver that changes whenever any run changes (registered, an event, ended): the
    /// web view and metrics wait on it instead of polling.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    fn entry(&self, run_id: &str) -> Result<Arc<RunEntry>, HubError> {
        let runs = self.shared.runs();
        runs.iter()
            .find(|e| e.id == run_id)
            .cloned()
            .ok_or_else(|| HubError::NoSuchRun {
                run: run_id.to_owned(),
                known: if runs.is_empty() {
                    "none".to_owned()
                } else {
                    runs.iter()
                        .map(|e| e.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// The events of `run_id` from sequence number `from_seq` on (0 or 1: from its first
    /// kept event), then live ones as they come, ending after the run's last event. With
    /// `task`, only that task's events and the run's own (`RunStarted`, `RunFinished`,
    /// `RunParked`). Replay and live are read from one buffer under one lock: no gap, no
    /// duplicate. A subscriber that falls behind the buffer's cap gets
    /// [`HubError::Evicted`] as its last item.
    pub fn subscribe(
        &self,
        run_id: &str,
        task: Option<String>,
        from_seq: u64,
    ) -> Result<Subscription, HubError> {
        let entry = self.entry(run_id)?;
        let (first_kept, cap) = {
            let b = entry.lock();
            (b.first_kept(), b.cap)
        };
        if from_seq > 1 && from_seq < first_kept {
            return Err(HubError::Evicted {
                run: run_id.to_owned(),
                asked: from_seq,
                first_kept,
                cap,
            });
        }
        let rx = entry.feed.subscribe();
        self.shared
            .active
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.shared
            .ever
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let state = SubState {
            entry,
            rx,
            next: from_seq.max(first_kept),
            task,
            pending: VecDeque::new(),
            ended: false,
        };
        Ok(Subscription {
            inner: Box::pin(futures::stream::unfold(state, SubState::step)),
            hub: self.shared.clone(),
        })
    }

    /// Cancels run `run_id` (`task: None`) or one of its running tasks, through the hook the
    /// run set ([`RunHandle::set_cancel`]).
    pub fn cancel(&self, run_id: &str, task: Option<&str>) -> Result<(), HubError> {
        let entry = self.entry(run_id)?;
        if entry.lock().done {
            return Err(HubError::Finished {
                run: run_id.to_owned(),
            });
        }
        let hook = entry
            .cancel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| HubError::NotCancellable {
                run: run_id.to_owned(),
            })?;
        if hook(task) {
            Ok(())
        } else {
            match task {
                Some(t) => Err(HubError::TaskNotRunning {
                    run: run_id.to_owned(),
                    task: t.to_owned(),
                }),
                None => Err(HubError::Finished {
                    run: run_id.to_owned(),
                }),
            }
        }
    }
}

/// A run's entry in the hub and its [`EventSink`]. Dropping the last handle (or
/// [`RunHandle::close`]) ends the run's streams if no `RunFinished` did.
#[derive(Clone)]
pub struct RunHandle {
    entry: Arc<RunEntry>,
    _close: Arc<CloseOnDrop>,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("run", &self.entry.id)
            .finish()
    }
}

impl RunHandle {
    fn new(entry: Arc<RunEntry>) -> Self {
        RunHandle {
            _close: Arc::new(CloseOnDrop(entry.clone())),
            entry,
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.entry.id
    }

    /// Sets how a cancel request reaches the run.
    pub fn set_cancel(&self, hook: CancelFn) {
        *self.entry.cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// Cancel requests reach a scheduler run: the run through `run` (as a first Ctrl-C),
    /// a task through `tasks` (that task alone is stopped and reported `errored`).
    pub fn cancel_with(&self, run: CancellationToken, tasks: TaskCancels) {
        self.set_cancel(Arc::new(move |task: Option<&str>| match task {
            None => {
                let was = !run.is_cancelled();
                run.cancel();
                was
            }
            Some(t) => tasks.cancel(t),
        }));
    }

    /// Adds `event` numbered by the hub (runs with no dispatcher of their own: a worker's
    /// runs). Returns its sequence number.
    pub fn publish(&self, event: Event) -> u64 {
        self.publish_with(event, |_| {})
    }

    /// [`RunHandle::publish`], letting `fill` set envelope fields (attempt, host, ...).
    pub fn publish_with(&self, event: Event, fill: impl FnOnce(&mut Envelope)) -> u64 {
        let seq = {
            let mut b = self.entry.lock();
            let seq = b.next_seq;
            b.next_seq += 1;
            seq
        };
        let mut envelope = Envelope {
            run_id: self.entry.id.clone(),
            seq,
            at_ms: now_ms(),
            task: event_task(&event).map(str::to_owned),
            attempt: None,
            cache_key: None,
            outputs: BTreeMap::new(),
            log: None,
            event,
        };
        fill(&mut envelope);
        self.entry.push(envelope);
        seq
    }

    /// Records where `task` runs (a worker's host), shown by `sykli ps`.
    pub fn set_host(&self, task: &str, host: &str) {
        self.entry.lock().info.task_mut(task).host = Some(host.to_owned());
        self.entry.hub.bump();
    }

    /// Ends the run's streams: no event follows (a run that finished with `RunFinished` or
    /// `RunParked` is already closed).
    pub fn close(&self) {
        self.entry.close();
    }
}

/// Closes the run when the last [`RunHandle`] goes.
struct CloseOnDrop(Arc<RunEntry>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl EventSink for RunHandle {
    fn emit(&self, event: &Event) {
        self.publish(event.clone());
    }

    fn emit_envelope(&self, envelope: &Envelope) {
        self.entry.push(envelope.clone());
    }
}

/// A live stream of one run's envelopes ([`Hub::subscribe`]).
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Result<Arc<Envelope>, HubError>> + Send>>,
    hub: Arc<HubShared>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Stream for Subscription {
    type Item = Result<Arc<Envelope>, HubError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct SubState {
    entry: Arc<RunEntry>,
    rx: watch::Receiver<u64>,
    /// The next sequence number to read.
    next: u64,
    task: Option<String>,
    pending: VecDeque<Arc<Envelope>>,
    ended: bool,
}

impl SubState {
    fn wants(&self, e: &Envelope) -> bool {
        match (&self.task, &e.task) {
            (None, _) => true,
            (Some(want), Some(t)) => want == t,
            (Some(_), None) => true,
        }
    }

    async fn step(mut self) -> Option<(Result<Arc<Envelope>, HubError>, Self)> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some((Ok(e), self));
            }
            if self.ended {
                return None;
            }
            // Mark the feed seen before reading: an event pushed after this read changes it.
            self.rx.borrow_and_update();
            let done = {
                let b = self.entry.lock();
                let first = b.first_kept();
                if self.next < first {
                    let err = HubError::Evicted {
                        run: self.entry.id.clone(),
                        asked: self.next,
                        first_kept: first,
                        cap: b.cap,
                    };
                    drop(b);
                    self.ended = true;
                    return Some((Err(err), self));
                }
                let start = b.events.partition_point(|e| e.seq < self.next);
                for e in b.events.range(start..).take(BATCH) {
                    self.next = e.seq + 1;
                    if self.wants(e) {
                        self.pending.push_back(e.clone());
                    }
                }
                b.done && start + BATCH >= b.events.len()
            };
            if !self.pending.is_empty() {
                continue;
            }
            if done {
                return None;
            }
            if self.rx.changed().await.is_err() {
                return None;
            }
            tokio::time::sleep(GATHER).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::time::Duration;

    fn output(task: &str, line: &str) -> Event {
        Event::TaskOutput {
            task: task.into(),
            stream: crate::exec::OutputStream::Stdout,
            line: line.into(),
        }
    }

    async fn next(s: &mut Subscription) -> Option<Result<Arc<Envelope>, HubError>> {
        tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("no event within 10 s")
    }

    #[tokio::test]
    async fn replay_then_live_has_no_gap_and_no_duplicate_under_concurrent_publishing() {
        let hub = Hub::new();
        let run = hub.register("r");
        let writer = {
            let run = run.clone();
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    run.publish(output("t", &i.to_string()));
                }
                run.close();
            })
        };
        // Subscribers joining at different moments, from different points.
        let mut subs = Vec::new();
        for from in [0, 1, 50, 5_000] {
            subs.push((from, hub.subscribe("r", None, from).unwrap()));
            tokio::task::yield_now().await;
        }
        for (from, mut s) in subs {
            let mut expect = from.max(1);
            while let Some(e) = next(&mut s).await {
                let e = e.unwrap();
                assert_eq!(e.seq, expect, "subscriber from {from}");
                expect += 1;
            }
            assert_eq!(expect, 20_001, "subscriber from {from} saw every event");
        }
        writer.join().unwrap();
    }

    #[tokio::test]
    async fn task_filter_keeps_the_task_and_run_events() {
        let hub = Hub::new();
        let run = hub.register("r");
        run.publish(Event::RunStarted {
            run_id: "r".into(),
            tasks: vec!["a".into(), "b".into()],
            jobs: 2,
            started_at_ms: 1,
            plan_digest: None,
            resumed: false,
        });
        run.publish(output("a", "x"));
        run.publish(output("b", "y"));
        run.close();
        let got: Vec<_> = hub
            .subscribe("r", Some("b".into()), 0)
            .unwrap()
            .map(|e| e.unwrap().seq)
            .collect()
            .await;
        assert_eq!(got, vec![1, 3]);
        let info = hub.run("r").unwrap();
        assert_eq!(info.state, RunState::Ended);
        assert_eq!(info.tasks.len(), 2);
        assert_eq!(info.last_seq, 3);
    }

    #[tokio::test]
    async fn a_subscriber_behind_the_cap_gets_evicted_not_a_hole() {
        let hub = Hub::with_cap(10);
        let run = hub.register("r");
        for i in 0..30 {
            run.publish(output("t", &i.to_string()));
        }
        let e = hub.subscribe("r", None, 5).err().unwrap();
        assert!(matches!(e, HubError::Evicted { first_kept: 21, .. }), "{e}");
        // From 0: the oldest kept on.
        let mut s = hub.subscribe("r", None, 0).unwrap();
        assert_eq!(next(&mut s).await.unwrap().unwrap().seq, 21);
        // Falls behind while more arrive.
        for i in 0..30 {
            run.publish(output("t", &i.to_string()));
        }
        let mut saw_evicted = false;
        while let Some(e) = next(&mut s).await {
            if let Err(HubError::Evicted { .. }) = e {
                saw_evicted = true;
            }
        }
        assert!(saw_evicted);
    }

    #[test]
    fn cancel_reaches_the_hook_and_names_what_is_wrong() {
        let hub = Hub::new();
        let run = hub.register("r");
        assert_eq!(
            hub.cancel("r", None),
            Err(HubError::NotCancellable { run: "r".into() })
        );
        let token = CancellationToken::new();
        let tasks = TaskCancels::default();
        run.cancel_with(token.clone(), tasks.clone());
        let t = tasks.token("build", &token);
        assert_eq!(
            hub.cancel("r", Some("test")),
            Err(HubError::TaskNotRunning {
                run: "r".into(),
                task: "test".into()
            })
        );
        hub.cancel("r", Some("build")).unwrap();
        assert!(t.is_cancelled() && !token.is_cancelled());
        hub.cancel("r", None).unwrap();
        assert!(token.is_cancelled());
        let e = hub.cancel("nope", None).unwrap_err();
        assert_eq!(e.to_string(), "no run `nope` is served here (known: r)");
        run.close();
        assert_eq!(
            hub.cancel("r", None),
            Err(HubError::Finished { run: "r".into() })
        );
    }

    #[test]
    fn old_finished_runs_are_forgotten_past_the_cap() {
        let hub = Hub::new();
        let live = hub.register("live");
        for i in 0..FINISHED_RUN_CAP + 5 {
            hub.register(&format!("done{i}")).close();
        }
        let runs = hub.runs();
        assert_eq!(runs.len(), FINISHED_RUN_CAP + 1);
        assert_eq!(runs[0].run_id, "live");
        assert_eq!(hub.latest().as_deref(), Some("live"));
        live.close();
    }
}
