//! The pool scheduler behind `sykli serve`'s Execution service: a queue per client served
//! round-robin, leases of actions to joined workers, heartbeats, requeue with bounded
//! attempts, in-flight deduplication, cancellation of actions nobody waits for, a queue
//! timeout for actions no worker can take, cancellation on request (`CancelOperation`,
//! `sykli cancel`: the lease is withdrawn and the worker kills the action), and the durable
//! queue ([`super::journal`]).
//!
//! Everything lives in one [`State`] under a mutex; every change ends with
//! [`PoolScheduler::dispatch`], which hands queued actions to free workers. A periodic
//! [`PoolScheduler::tick`] expires leases, times out the queue and cancels orphans.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::build::bazel::remote::execution::v2::execution_stage::Value as Stage;
use bazel_remote_apis::google::longrunning::Operation;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tonic::{Code, Status};

use super::journal::{Journal, Queued};
use super::proto::{self, ServeMsg, serve_msg};
use crate::cache::digest::DigestFunction;
use crate::observe::resources::Sample;
use crate::remote::server::digests::{BlobDigest, function_of};
use crate::remote::server::execution::{
    InflightKey, RETENTION, Scheduler, Submission, cancelled_status, not_found, operation,
    with_streams,
};
use crate::remote::server::live::{LiveLogs, ProgressTx, stream_name};
use crate::remote::server::platform::{CPU, Labels, MEMORY};
use crate::remote::server::status;
use crate::remote::server::store::{DiskStore, remove_tree};

mod fanout;

/// How many queued actions of one client are looked at per round for a worker that fits.
const SCAN: usize = 32;
/// How many input roots a worker is remembered to hold.
const HELD: usize = 256;

/// How the pool behaves.
#[derive(Clone)]
pub struct PoolConfig {
    /// Workers send a heartbeat this often.
    pub heartbeat: Duration,
    /// A worker silent for this many intervals loses its leases.
    pub misses: u32,
    /// Attempts of an action whose worker is lost, before it fails.
    pub max_attempts: u32,
    /// An action no joined worker can take fails after this long queued.
    pub queue_timeout: Duration,
    /// An action nobody waits for is cancelled after this long.
    pub orphan_grace: Duration,
    /// Where events go (one line each).
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolConfig")
            .field("heartbeat", &self.heartbeat)
            .field("misses", &self.misses)
            .field("max_attempts", &self.max_attempts)
            .field("queue_timeout", &self.queue_timeout)
            .field("orphan_grace", &self.orphan_grace)
            .finish_non_exhaustive()
    }
}

impl Default for PoolConfig {
    /// 1 s heartbeats, 3 misses, 3 attempts, 5 min queue timeout, 30 s orphan grace, no log.
    fn default() -> Self {
        PoolConfig {
            heartbeat: Duration::from_secs(1),
            misses: 3,
            max_attempts: 3,
            queue_timeout: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(30),
            log: Arc::new(|_| {}),
        }
    }
}

/// The pool's load, for an autoscaler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolLoad {
    /// Actions waiting for a worker.
    pub queued: usize,
    /// Actions running on workers.
    pub running: usize,
    /// Workers in the pool (not lost).
    pub workers: usize,
    /// Job slots of workers taking work (not draining, not lost).
    pub capacity_slots: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkerState {
    Ready,
    Draining,
    /// Missed its heartbeats: its leases went elsewhere; a heartbeat brings it back.
    Lost,
}

impl WorkerState {
    fn name(self) -> &'static str {
        match self {
            WorkerState::Ready => "ready",
            WorkerState::Draining => "draining",
            WorkerState::Lost => "lost",
        }
    }
}

struct WorkerEntry {
    name: String,
    labels: Labels,
    advertised: Vec<String>,
    jobs: u32,
    cpus: f64,
    memory: u64,
    version: String,
    tx: mpsc::UnboundedSender<Result<ServeMsg, Status>>,
    last_seen: Instant,
    state: WorkerState,
    leases: BTreeSet<u64>,
    held: VecDeque<String>,
    completed: u64,
    /// Its loaded target plugins: name to component digest.
    plugins: BTreeMap<String, String>,
    /// It applies `Plugin` and `Config` messages.
    admin: bool,
}

impl WorkerEntry {
    fn send(&self, kind: serve_msg::Kind) {
        // A closed stream is noticed by its reader, which removes the worker.
        let _ = self.tx.send(Ok(ServeMsg { kind: Some(kind) }));
    }

    fn hold(&mut self, root: String) {
        if root.is_empty() || self.held.contains(&root) {
            return;
        }
        if self.held.len() == HELD {
            self.held.pop_front();
        }
        self.held.push_back(root);
    }
}

struct Op {
    tx: watch::Sender<Operation>,
    function: DigestFunction,
    action_digest: BlobDigest,
    input_root: String,
    platform: Vec<(String, String)>,
    cpu: f64,
    memory: u64,
    do_not_cache: bool,
    secrets: BTreeMap<String, String>,
    /// The client's attempt of the task (not serve's leases of the action: `attempts`).
    task_attempt: u32,
    key: Option<InflightKey>,
    client: String,
    queued_at: Instant,
    attempts: u32,
    died_on: Vec<String>,
    lease: Option<u64>,
    unwatched_since: Option<Instant>,
}

struct Lease {
    op: String,
    worker: u64,
    cpu: f64,
    memory: u64,
    log: Option<LeaseLog>,
}

/// The live output of one lease, as serve relays it: files under `exec/live-{lease}/`
/// readable with ByteStream under the stream names the operation's metadata gives.
struct LeaseLog {
    names: [String; 2],
    dir: std::path::PathBuf,
    progress: [ProgressTx; 2],
}

impl LeaseLog {
    fn append(&self, stderr: bool, data: &[u8]) {
        use std::io::Write;
        let i = usize::from(stderr);
        let path = self.dir.join(["stdout", "stderr"][i]);
        let written = std::fs::create_dir_all(&self.dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(data))
        });
        // A chunk that cannot be written is lost to live readers only: the result has it.
        if written.is_ok() {
            self.progress[i].send_modify(|p| p.len += data.len() as u64);
        }
    }

    fn close(self, live: &LiveLogs) {
        for (p, n) in self.progress.iter().zip(&self.names) {
            p.send_modify(|p| p.done = true);
            live.remove(n);
        }
        if self.dir.exists() {
            let _ = remove_tree(&self.dir);
        }
    }
}

#[derive(Default)]
struct State {
    ops: HashMap<String, Op>,
    queues: HashMap<String, VecDeque<String>>,
    rr: VecDeque<String>,
    leases: HashMap<u64, Lease>,
    workers: BTreeMap<u64, WorkerEntry>,
    inflight: HashMap<InflightKey, String>,
    finished: HashMap<String, watch::Sender<Operation>>,
    next_lease: u64,
    next_worker: u64,
    requeued: u64,
    discarded: u64,
    completed: u64,
    /// Plugins and config pushed to the pool (see [`fanout`]).
    admin: fanout::AdminState,
}

/// The pool scheduler.
pub struct PoolScheduler {
    store: Arc<DiskStore>,
    live: Arc<LiveLogs>,
    config: PoolConfig,
    state: Mutex<State>,
    journal: Mutex<Option<Journal>>,
}

impl std::fmt::Debug for PoolScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolScheduler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A resource request from a platform property value: CPU cores (`2`, `0.5`) or memory
/// (`512Mi`, `2G`, `1073741824`).
fn parse_resource(name: &str, value: &str) -> Result<f64, String> {
    let bad = || format!("platform property {name}={value} is not a valid amount");
    if name == CPU {
        let v: f64 = value.trim().parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 {
            return Err(bad());
        }
        return Ok(v);
    }
    let v = value.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    Ok(n * mult)
}

impl PoolScheduler {
    /// A scheduler over `store`, relaying workers' live output into `live`; `journal` (with
    /// what it held queued) makes the queue durable.
    pub fn new(
        store: Arc<DiskStore>,
        live: Arc<LiveLogs>,
        config: PoolConfig,
        journal: Option<(Journal, Vec<Queued>)>,
    ) -> Arc<PoolScheduler> {
        let (journal, recovered) = match journal {
            Some((j, r)) => (Some(j), r),
            None => (None, Vec::new()),
        };
        let this = Arc::new(PoolScheduler {
            store,
            live,
            config,
            state: Mutex::new(State::default()),
            journal: Mutex::new(journal),
        });
        for q in recovered {
            this.recover(q);
        }
        this
    }

    fn log(&self, line: &str) {
        (self.config.log)(line);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn journal_done(&self, id: &str) {
        if let Some(j) = self
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            && let Err(e) = j.done(id)
        {
            self.log(&format!("warning: {}", crate::error_chain(&e)));
        }
    }

    /// The pool's load now.
    pub fn load(&self) -> PoolLoad {
        let state = self.state();
        let queued = state.queues.values().map(VecDeque::len).sum();
        PoolLoad {
            queued,
            running: state.leases.len(),
            workers: state
                .workers
                .values()
                .filter(|w| w.state != WorkerState::Lost)
                .count(),
            capacity_slots: state
                .workers
                .values()
                .filter(|w| w.state == WorkerState::Ready)
                .map(|w| w.jobs as usize)
                .sum(),
        }
    }

    /// The snapshot `sykli workers` prints.
    pub fn status(&self) -> proto::PoolStatus {
        let load = self.load();
        let state = self.state();
        proto::PoolStatus {
            queued: load.queued as u64,
            running: load.running as u64,
            capacity_slots: load.capacity_slots as u64,
            requeued: state.requeued,
            discarded: state.discarded,
            completed: state.completed,
            workers: state
                .workers
                .iter()
                .map(|(id, w)| proto::WorkerStatus {
                    id: *id,
                    name: w.name.clone(),
                    state: w.state.name().into(),
                    labels: w.advertised.clone(),
                    jobs: w.jobs,
                    running: w.leases.len() as u32,
                    completed: w.completed,
                    version: w.version.clone(),
                    last_seen_ms: w.last_seen.elapsed().as_millis() as u64,
                    cpus: w.cpus,
                    memory: w.memory,
                    plugins: fanout::named(&w.plugins),
                })
                .collect(),
        }
    }

    /// Queues an action recovered from the journal under its old operation name.
    fn recover(&self, q: Queued) {
        let loaded = (|| -> Result<Submission, String> {
            let function = function_of(q.function).map_err(|s| s.message().to_owned())?;
            let action_digest = BlobDigest::from_parts(&q.hash, q.size, "Action")
                .map_err(|s| s.message().to_owned())?;
            let action: reapi::Action = self
                .store
                .read_message(function, &action_digest, "Action")
                .map_err(|e| e.to_string())?;
            let command_digest =
                BlobDigest::required(action.command_digest.as_ref(), "Action.command_digest")
                    .map_err(|s| s.message().to_owned())?;
            let command: reapi::Command = self
                .store
                .read_message(function, &command_digest, "Command")
                .map_err(|e| e.to_string())?;
            Ok(Submission {
                function,
                action_digest,
                action,
                command,
                secrets: BTreeMap::new(),
                attempt: q.attempt,
                secrets_hash: [0; 32],
                id: q.id.clone(),
                client: q.client.clone(),
            })
        })();
        match loaded {
            Ok(sub) => {
                let name = format!("operations/{}", sub.id);
                match self.enqueue(sub, false) {
                    Ok(_) => self.log(&format!("recovered {name} from the queue log")),
                    Err(s) => {
                        self.log(&format!(
                            "dropped {name} from the queue log: {}",
                            s.message()
                        ));
                        self.journal_done(&q.id);
                    }
                }
            }
            Err(m) => {
                self.log(&format!(
                    "dropped operations/{} from the queue log: {m}",
                    q.id
                ));
                self.journal_done(&q.id);
            }
        }
    }

    /// Queues `sub` (journaled first when `journal`), or joins its twin in flight.
    fn enqueue(
        &self,
        sub: Submission,
        journal: bool,
    ) -> Result<watch::Receiver<Operation>, Status> {
        let mut platform = Vec::new();
        let (mut cpu, mut memory) = (0.0, 0u64);
        for p in sub
            .platform()
            .map(|p| p.properties.as_slice())
            .unwrap_or_default()
        {
            if p.name == CPU || p.name == MEMORY {
                let v = parse_resource(&p.name, &p.value).map_err(|m| {
                    Status::invalid_argument(format!("action {}: {m}", sub.action_digest))
                })?;
                if p.name == CPU {
                    cpu = v;
                } else {
                    memory = v as u64;
                }
            }
            platform.push((p.name.clone(), p.value.clone()));
        }
        let key = InflightKey::of(&sub);
        if let Some(key) = &key {
            let state = self.state();
            if let Some(name) = state.inflight.get(key)
                && let Some(op) = state.ops.get(name)
            {
                return Ok(op.tx.subscribe());
            }
        }
        if journal && sub.secrets.is_empty() {
            let q = Queued {
                id: sub.id.clone(),
                function: sub.function.reapi_value(),
                hash: sub.action_digest.hash.to_hex(),
                size: sub.action_digest.size as i64,
                client: sub.client.clone(),
                attempt: sub.attempt,
            };
            if let Some(j) = self
                .journal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                j.queued(&q).map_err(|e| {
                    Status::unavailable(format!(
                        "serve cannot record the action: {}",
                        crate::error_chain(&e)
                    ))
                })?;
            }
        }
        let name = format!("operations/{}", sub.id);
        let (tx, rx) = watch::channel(operation(
            &name,
            Stage::Queued,
            sub.function,
            &sub.action_digest,
            None,
        ));
        let input_root = sub
            .action
            .input_root_digest
            .as_ref()
            .map(|d| d.hash.clone())
            .unwrap_or_default();
        let op = Op {
            tx,
            function: sub.function,
            action_digest: sub.action_digest,
            input_root,
            platform,
            cpu,
            memory,
            do_not_cache: sub.action.do_not_cache,
            secrets: sub.secrets,
            task_attempt: sub.attempt,
            key: key.clone(),
            client: sub.client.clone(),
            queued_at: Instant::now(),
            attempts: 0,
            died_on: Vec::new(),
            lease: None,
            unwatched_since: None,
        };
        let mut state = self.state();
        if let Some(key) = key {
            // A twin may have been queued while the log was written.
            if let Some(twin) = state.inflight.get(&key)
                && let Some(twin) = state.ops.get(twin)
            {
                let rx = twin.tx.subscribe();
                drop(state);
                self.journal_done(&sub.id);
                return Ok(rx);
            }
            state.inflight.insert(key, name.clone());
        }
        state.ops.insert(name.clone(), op);
        push_queue(&mut state, &sub.client, name, false);
        self.dispatch(&mut state);
        Ok(rx)
    }

    /// Hands queued actions to free workers, clients in turn: a client served goes to the
    /// back of the turn order; one that could not be served keeps its place.
    fn dispatch(&self, state: &mut State) {
        // Each round leases at least one action or stops: bounded by the queue.
        loop {
            let clients: Vec<String> = state.rr.drain(..).collect();
            let (mut waiting, mut served) = (Vec::new(), Vec::new());
            for client in clients {
                let Some(queue) = state.queues.get(&client) else {
                    continue;
                };
                if queue.is_empty() {
                    state.queues.remove(&client);
                    continue;
                }
                let mut chosen = None;
                for (i, name) in queue.iter().take(SCAN).enumerate() {
                    if let Some(op) = state.ops.get(name)
                        && let Some(w) = best_worker(state, op)
                    {
                        chosen = Some((i, name.clone(), w));
                        break;
                    }
                }
                match chosen {
                    Some((i, name, worker)) => {
                        if let Some(q) = state.queues.get_mut(&client) {
                            q.remove(i);
                        }
                        self.lease(state, &name, worker);
                        served.push(client);
                    }
                    None => waiting.push(client),
                }
            }
            let progressed = !served.is_empty();
            state.rr.extend(waiting);
            state.rr.extend(served);
            if !progressed {
                break;
            }
        }
    }

    fn lease(&self, state: &mut State, name: &str, worker: u64) {
        state.next_lease += 1;
        let id = state.next_lease;
        let Some(op) = state.ops.get_mut(name) else {
            return;
        };
        op.attempts += 1;
        op.lease = Some(id);
        let mut executing = operation(name, Stage::Executing, op.function, &op.action_digest, None);
        let key = format!("{}-{id}", name.trim_start_matches("operations/"));
        // The directory is made by the first chunk: most short actions print little.
        let dir = self.store.root().join("exec").join(format!("live-{id}"));
        let names = [stream_name(&key, "stdout"), stream_name(&key, "stderr")];
        let progress = [
            self.live.register(names[0].clone(), dir.join("stdout")),
            self.live.register(names[1].clone(), dir.join("stderr")),
        ];
        with_streams(&mut executing, &names);
        let log = Some(LeaseLog {
            names,
            dir,
            progress,
        });
        op.tx.send_replace(executing);
        let work = proto::Work {
            lease: id,
            digest_function: op.function.reapi_value(),
            action_digest: Some(op.action_digest.to_reapi()),
            secrets: op.secrets.clone(),
            operation: name.to_owned(),
            attempt: op.task_attempt,
        };
        let (cpu, memory, attempt, client) = (op.cpu, op.memory, op.attempts, op.client.clone());
        state.leases.insert(
            id,
            Lease {
                op: name.to_owned(),
                worker,
                cpu,
                memory,
                log,
            },
        );
        if let Some(w) = state.workers.get_mut(&worker) {
            w.leases.insert(id);
            w.send(serve_msg::Kind::Work(work));
            self.log(&format!(
                "lease {id}: {name} to worker {worker} ({}), attempt {attempt}, for {client}",
                w.name
            ));
        }
    }

    /// Ends `name` with `response` (or leaves it to the dedup twin).
    fn finish(&self, state: &mut State, name: &str, response: reapi::ExecuteResponse) {
        let Some(op) = state.ops.remove(name) else {
            return;
        };
        if let Some(key) = &op.key
            && state.inflight.get(key).is_some_and(|n| n == name)
        {
            state.inflight.remove(key);
        }
        if let Some(q) = state.queues.get_mut(&op.client) {
            q.retain(|n| n != name);
        }
        op.tx.send_replace(operation(
            name,
            Stage::Completed,
            op.function,
            &op.action_digest,
            Some(response),
        ));
        state.finished.insert(name.to_owned(), op.tx);
        let id = name.trim_start_matches("operations/").to_owned();
        self.journal_done(&id);
    }

    /// A lease ended without a result (its worker was lost): the action runs again, or
    /// fails once it died on `max_attempts` workers.
    fn requeue(&self, state: &mut State, lease: u64, why: &str) {
        let Some(mut l) = state.leases.remove(&lease) else {
            return;
        };
        if let Some(log) = l.log.take() {
            log.close(&self.live);
        }
        let worker_name = match state.workers.get_mut(&l.worker) {
            Some(w) => {
                w.leases.remove(&lease);
                w.name.clone()
            }
            None => format!("worker {}", l.worker),
        };
        let Some(op) = state.ops.get_mut(&l.op) else {
            return;
        };
        op.lease = None;
        op.died_on.push(worker_name.clone());
        if op.attempts >= self.config.max_attempts {
            let message = format!(
                "action {} was lost with its worker {} times ({why}); it died on: {}",
                op.action_digest,
                op.attempts,
                op.died_on.join(", ")
            );
            self.log(&format!("{}: failed: {message}", l.op));
            let response = reapi::ExecuteResponse {
                status: Some(status::status(Code::Aborted, message)),
                ..Default::default()
            };
            self.finish(state, &l.op, response);
            return;
        }
        // The queue timeout counts from the requeue, not from the first Execute.
        op.queued_at = Instant::now();
        op.tx.send_replace(operation(
            &l.op,
            Stage::Queued,
            op.function,
            &op.action_digest,
            None,
        ));
        let client = op.client.clone();
        state.requeued += 1;
        self.log(&format!(
            "lease {lease}: {} requeued ({why} on {worker_name})",
            l.op
        ));
        push_queue(state, &client, l.op, true);
    }

    /// Registers a worker that said hello (its messages go to `tx`); returns its id.
    pub fn add_worker(
        &self,
        hello: proto::Hello,
        tx: mpsc::UnboundedSender<Result<ServeMsg, Status>>,
    ) -> u64 {
        let mut state = self.state();
        state.next_worker += 1;
        let id = state.next_worker;
        let entry = WorkerEntry {
            name: hello.name.clone(),
            labels: Labels::announced(&hello.labels),
            advertised: hello.labels,
            jobs: hello.jobs.max(1),
            cpus: hello.cpus,
            memory: hello.memory,
            version: hello.version,
            tx,
            last_seen: Instant::now(),
            state: WorkerState::Ready,
            leases: BTreeSet::new(),
            held: VecDeque::new(),
            completed: 0,
            plugins: fanout::parse_named(&hello.plugins),
            admin: hello.admin,
        };
        entry.send(serve_msg::Kind::Welcome(proto::Welcome {
            worker: id,
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
        }));
        self.log(&format!(
            "worker {id} ({}) joined: {} jobs, {} cpus, labels {}",
            entry.name,
            entry.jobs,
            entry.cpus,
            entry.advertised.join(",")
        ));
        state.workers.insert(id, entry);
        fanout::catch_up(&mut state, id);
        self.dispatch(&mut state);
        id
    }

    /// A message from worker `id` (as a joined worker's stream delivers it).
    pub fn message(&self, id: u64, kind: proto::worker_msg::Kind) {
        self.on_message(id, kind);
    }

    /// Worker `id` left (its stream ended, or its driver stopped): its leases are requeued.
    pub fn worker_gone(&self, id: u64, why: &str) {
        self.remove_worker(id, why);
    }

    /// Whether worker `id` missed its heartbeats (or is gone).
    pub fn is_lost(&self, id: u64) -> bool {
        self.state()
            .workers
            .get(&id)
            .is_none_or(|w| w.state == WorkerState::Lost)
    }

    /// The scheduler's settings.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// A message from worker `id`.
    fn on_message(&self, id: u64, kind: proto::worker_msg::Kind) {
        use proto::worker_msg::Kind;
        let mut state = self.state();
        let Some(w) = state.workers.get_mut(&id) else {
            return;
        };
        w.last_seen = Instant::now();
        match kind {
            Kind::Hello(_) => {}
            Kind::Heartbeat(hb) => {
                if w.state == WorkerState::Lost {
                    w.state = WorkerState::Ready;
                    self.log(&format!("worker {id} ({}) is back", w.name));
                }
                for h in hb.held {
                    w.hold(h);
                }
                let stale: Vec<u64> = hb
                    .running
                    .iter()
                    .copied()
                    .filter(|l| !w.leases.contains(l))
                    .collect();
                for lease in stale {
                    w.send(serve_msg::Kind::Cancel(proto::Cancel {
                        lease,
                        reason: "the lease was given to another worker".into(),
                    }));
                }
            }
            Kind::Output(o) => {
                if let Some(l) = state.leases.get(&o.lease)
                    && l.worker == id
                    && let Some(log) = &l.log
                {
                    log.append(o.stderr, &o.data);
                }
                // Output changes no placement.
                return;
            }
            Kind::Resources(r) => {
                // Only the lease's holder speaks for it; a lease that ended has no samples.
                // The sample rides in the operation (`remote::resources`): serve's observers
                // and the client that waits for it both see it there.
                if let Some(op) = state
                    .leases
                    .get(&r.lease)
                    .filter(|l| l.worker == id)
                    .and_then(|l| state.ops.get(&l.op))
                {
                    let sample = Sample {
                        cpu_percent: r.cpu_percent,
                        rss_bytes: r.rss_bytes,
                    };
                    op.tx
                        .send_if_modified(|o| crate::remote::resources::attach(o, sample));
                }
                return;
            }
            Kind::Applied(a) => {
                fanout::applied(&mut state, id, a, &self.config.log);
            }
            Kind::Draining(_) => {
                if w.state == WorkerState::Ready {
                    w.state = WorkerState::Draining;
                }
                self.log(&format!("worker {id} ({}) drains", w.name));
            }
            Kind::Result(r) => {
                w.hold(r.held.clone());
                let owned = w.state != WorkerState::Lost
                    && state.leases.get(&r.lease).is_some_and(|l| l.worker == id);
                if !owned {
                    state.discarded += 1;
                    let name = state.workers.get(&id).map(|w| w.name.clone());
                    self.log(&format!(
                        "lease {}: discarded a late result from worker {id} ({}): it lost the lease",
                        r.lease,
                        name.unwrap_or_default()
                    ));
                    return;
                }
                let Some(mut l) = state.leases.remove(&r.lease) else {
                    return;
                };
                if let Some(log) = l.log.take() {
                    log.close(&self.live);
                }
                if let Some(w) = state.workers.get_mut(&id) {
                    w.leases.remove(&r.lease);
                    w.completed += 1;
                }
                let response = match reapi::ExecuteResponse::decode(r.response.as_slice()) {
                    Ok(resp) => resp,
                    Err(e) => reapi::ExecuteResponse {
                        status: Some(status::status(
                            Code::Internal,
                            format!("worker {id} sent a result that does not decode: {e}"),
                        )),
                        ..Default::default()
                    },
                };
                self.accept(&mut state, &l.op, id, r.lease, response);
            }
        }
        self.dispatch(&mut state);
    }

    fn accept(
        &self,
        state: &mut State,
        name: &str,
        worker: u64,
        lease: u64,
        response: reapi::ExecuteResponse,
    ) {
        let Some(op) = state.ops.get(name) else {
            return;
        };
        let ok = response
            .status
            .as_ref()
            .is_none_or(|s| s.code == Code::Ok as i32);
        let cacheable =
            ok && !op.do_not_cache && response.result.as_ref().is_some_and(|r| r.exit_code == 0);
        if let Some(result) = response.result.as_ref().filter(|_| cacheable) {
            // A result that cannot be cached is still the answer.
            let _ = self
                .store
                .put_action(op.function, &op.action_digest, result);
        }
        state.completed += 1;
        let exit = response.result.as_ref().map(|r| r.exit_code);
        self.log(&format!(
            "lease {lease}: {name} completed by worker {worker} (exit {}, status {})",
            exit.map_or("none".into(), |c| c.to_string()),
            response.status.as_ref().map_or(0, |s| s.code)
        ));
        self.finish(state, name, response);
    }

    /// Worker `id`'s stream ended: its leases are requeued and it leaves the pool.
    fn remove_worker(&self, id: u64, why: &str) {
        let mut state = self.state();
        let Some(w) = state.workers.get(&id) else {
            return;
        };
        let leases: Vec<u64> = w.leases.iter().copied().collect();
        self.log(&format!("worker {id} ({}) left: {why}", w.name));
        for l in leases {
            self.requeue(&mut state, l, why);
        }
        state.workers.remove(&id);
        fanout::forget_worker(&mut state, id);
        self.dispatch(&mut state);
    }

    /// Expires silent workers' leases, fails actions no worker can take after the queue
    /// timeout, cancels actions nobody waits for; then dispatches.
    pub fn tick(&self) {
        let now = Instant::now();
        let silence = self.config.heartbeat * self.config.misses;
        let mut state = self.state();
        let silent: Vec<u64> = state
            .workers
            .iter()
            .filter(|(_, w)| w.state != WorkerState::Lost && now - w.last_seen > silence)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            let leases: Vec<u64> = match state.workers.get_mut(&id) {
                Some(w) => {
                    w.state = WorkerState::Lost;
                    self.log(&format!(
                        "worker {id} ({}) missed {} heartbeats: its leases expire",
                        w.name, self.config.misses
                    ));
                    w.leases.iter().copied().collect()
                }
                None => Vec::new(),
            };
            for l in leases {
                self.requeue(&mut state, l, "heartbeats missed");
            }
        }
        // Queue timeout: queued too long and no worker in the pool matches.
        let expired: Vec<(String, String)> = state
            .ops
            .iter()
            .filter(|(_, op)| op.lease.is_none() && now - op.queued_at > self.config.queue_timeout)
            .filter_map(|(name, op)| unplaceable(&state, op).map(|m| (name.clone(), m)))
            .collect();
        for (name, why) in expired {
            let message = format!(
                "no worker could take the action within the queue timeout ({}): {why}",
                humantime::format_duration(self.config.queue_timeout)
            );
            self.log(&format!("{name}: failed: {message}"));
            let response = reapi::ExecuteResponse {
                status: Some(status::status(Code::FailedPrecondition, message)),
                ..Default::default()
            };
            self.finish(&mut state, &name, response);
        }
        // Orphans: nobody has watched the operation for the grace period.
        let mut orphans = Vec::new();
        for (name, op) in state.ops.iter_mut() {
            if op.tx.receiver_count() > 0 {
                op.unwatched_since = None;
                continue;
            }
            let since = *op.unwatched_since.get_or_insert(now);
            if now - since > self.config.orphan_grace {
                orphans.push(name.clone());
            }
        }
        for name in orphans {
            self.withdraw(&mut state, &name, "nobody waits for the action any more");
            self.log(&format!(
                "{name}: cancelled: nobody waited for it for {}",
                humantime::format_duration(self.config.orphan_grace)
            ));
            let response = reapi::ExecuteResponse {
                status: Some(status::status(
                    Code::Cancelled,
                    "nobody waited for the action any more",
                )),
                ..Default::default()
            };
            self.finish(&mut state, &name, response);
        }
        self.dispatch(&mut state);
    }

    /// Withdraws the lease of operation `name`, if it has one: the worker is told to stop
    /// the action (it kills its processes and reports nothing). Returns the worker's name.
    fn withdraw(&self, state: &mut State, name: &str, reason: &str) -> Option<String> {
        let lease = state.ops.get(name).and_then(|op| op.lease)?;
        let mut l = state.leases.remove(&lease)?;
        if let Some(log) = l.log.take() {
            log.close(&self.live);
        }
        let w = state.workers.get_mut(&l.worker)?;
        w.leases.remove(&lease);
        w.send(serve_msg::Kind::Cancel(proto::Cancel {
            lease,
            reason: reason.to_owned(),
        }));
        Some(w.name.clone())
    }

    /// Forgets finished operations older than [`RETENTION`] (called with the tick).
    fn forget_later(self: &Arc<Self>, name: String) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(RETENTION).await;
            if let Some(this) = this.upgrade() {
                this.state().finished.remove(&name);
            }
        });
    }

    /// Runs [`PoolScheduler::tick`] every quarter heartbeat until `stop` is cancelled.
    pub async fn run_ticks(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let period = (self.config.heartbeat / 4).max(Duration::from_millis(10));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = stop.cancelled() => return,
            }
            self.tick();
            let names: Vec<String> = self
                .state()
                .finished
                .keys()
                .filter(|n| !seen.contains(*n))
                .cloned()
                .collect();
            for n in names {
                seen.insert(n.clone());
                self.forget_later(n);
            }
            seen.retain(|n| self.state().finished.contains_key(n));
        }
    }
}

/// Queues `name` for `client` (at the front when it is a retry).
fn push_queue(state: &mut State, client: &str, name: String, front: bool) {
    let q = state.queues.entry(client.to_owned()).or_default();
    if front {
        q.push_front(name);
    } else {
        q.push_back(name);
    }
    if !state.rr.iter().any(|c| c == client) {
        state.rr.push_back(client.to_owned());
    }
}

fn platform_of(op: &Op) -> reapi::Platform {
    reapi::Platform {
        properties: op
            .platform
            .iter()
            .map(|(name, value)| reapi::platform::Property {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

/// The free worker that suits `op` best: labels match, a slot, CPU and memory free; one that
/// holds its input root first, then the least loaded.
fn best_worker(state: &State, op: &Op) -> Option<u64> {
    let platform = platform_of(op);
    let mut best: Option<(bool, f64, u64)> = None;
    for (id, w) in &state.workers {
        if w.state != WorkerState::Ready || w.leases.len() >= w.jobs as usize {
            continue;
        }
        if w.labels.place(Some(&platform)).is_err() || !fanout::has_plugins(state, w, op) {
            continue;
        }
        let (mut cpu, mut mem) = (0.0, 0u64);
        for l in &w.leases {
            if let Some(l) = state.leases.get(l) {
                cpu += l.cpu;
                mem += l.memory;
            }
        }
        if op.cpu > 0.0 && w.cpus > 0.0 && cpu + op.cpu > w.cpus + 1e-9 {
            continue;
        }
        if op.memory > 0 && w.memory > 0 && mem + op.memory > w.memory {
            continue;
        }
        let holds = !op.input_root.is_empty() && w.held.contains(&op.input_root);
        let load = w.leases.len() as f64 / w.jobs as f64;
        let better = match best {
            None => true,
            Some((bh, bl, _)) => (holds && !bh) || (holds == bh && load < bl),
        };
        if better {
            best = Some((holds, load, *id));
        }
    }
    best.map(|(_, _, id)| id)
}

/// Why no worker in the pool could ever take `op` (none when one could, busy or not).
fn unplaceable(state: &State, op: &Op) -> Option<String> {
    let platform = platform_of(op);
    let live: Vec<&WorkerEntry> = state
        .workers
        .values()
        .filter(|w| w.state != WorkerState::Lost)
        .collect();
    let fits = |w: &&WorkerEntry| {
        w.labels.place(Some(&platform)).is_ok()
            && (op.cpu <= 0.0 || w.cpus <= 0.0 || op.cpu <= w.cpus + 1e-9)
            && (op.memory == 0 || w.memory == 0 || op.memory <= w.memory)
            && fanout::has_plugins(state, w, op)
    };
    if live.iter().any(fits) {
        return None;
    }
    if live.is_empty() {
        return Some("no worker is in the pool".into());
    }
    if let Some(m) = fanout::missing_plugins(state, &live, op) {
        return Some(m);
    }
    let missing: Vec<String> = op
        .platform
        .iter()
        .filter(|(n, v)| {
            let one = reapi::Platform {
                properties: vec![reapi::platform::Property {
                    name: n.clone(),
                    value: v.clone(),
                }],
            };
            !live.iter().any(|w| {
                w.labels.place(Some(&one)).is_ok()
                    && (n != CPU || op.cpu <= w.cpus || w.cpus <= 0.0)
                    && (n != MEMORY || op.memory <= w.memory || w.memory == 0)
            })
        })
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    Some(if missing.is_empty() {
        format!(
            "no single worker offers all of its platform properties {}",
            op.platform
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("no worker offers {}", missing.join(", "))
    })
}

impl Scheduler for PoolScheduler {
    fn store(&self) -> &Arc<DiskStore> {
        &self.store
    }

    fn submit(
        self: Arc<Self>,
        submission: Submission,
    ) -> Result<watch::Receiver<Operation>, Status> {
        self.enqueue(submission, true)
    }

    fn finished(self: Arc<Self>, op: Operation) -> watch::Receiver<Operation> {
        let name = op.name.clone();
        let (tx, rx) = watch::channel(op);
        self.state().finished.insert(name, tx);
        rx
    }

    fn subscribe(&self, name: &str) -> Option<watch::Receiver<Operation>> {
        let state = self.state();
        state
            .ops
            .get(name)
            .map(|op| op.tx.subscribe())
            .or_else(|| state.finished.get(name).map(watch::Sender::subscribe))
    }

    fn cancel(&self, name: &str, reason: &str) -> Result<bool, Status> {
        let mut state = self.state();
        if !state.ops.contains_key(name) {
            return if state.finished.contains_key(name) {
                Ok(false)
            } else {
                Err(not_found(name))
            };
        }
        let server = match self.withdraw(&mut state, name, reason) {
            Some(worker) => format!("sykli serve (its worker {worker} was told to stop it)"),
            None => "sykli serve (before a worker ran it)".to_owned(),
        };
        self.log(&format!("{name}: cancelled: {reason}"));
        let response = reapi::ExecuteResponse {
            status: Some(cancelled_status(&server, reason)),
            ..Default::default()
        };
        self.finish(&mut state, name, response);
        self.dispatch(&mut state);
        Ok(true)
    }
}

/// The `Pool` service over a scheduler: joins and status.
#[derive(Debug, Clone)]
pub struct PoolService {
    scheduler: Arc<PoolScheduler>,
}

impl PoolService {
    /// The service over `scheduler`.
    pub fn new(scheduler: Arc<PoolScheduler>) -> PoolService {
        PoolService { scheduler }
    }
}

#[tonic::async_trait]
impl proto::Pool for PoolService {
    async fn join(
        &self,
        request: tonic::Request<tonic::Streaming<proto::WorkerMsg>>,
    ) -> Result<tonic::Response<tonic::codegen::BoxStream<ServeMsg>>, Status> {
        let mut incoming = request.into_inner();
        let limit = self.scheduler.config.heartbeat * self.scheduler.config.misses.max(1) * 2;
        let first = tokio::time::timeout(limit, incoming.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Hello from the worker in time"))??;
        let Some(proto::WorkerMsg {
            kind: Some(proto::worker_msg::Kind::Hello(hello)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "a worker's first message must be Hello",
            ));
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.scheduler.add_worker(hello, tx);
        let scheduler = self.scheduler.clone();
        tokio::spawn(async move {
            // Bounded by the stream: it ends when the worker leaves or its connection breaks.
            let why = loop {
                match incoming.message().await {
                    Ok(Some(proto::WorkerMsg { kind: Some(kind) })) => {
                        scheduler.on_message(id, kind)
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break "it closed its stream".to_owned(),
                    Err(s) => break format!("its stream broke: {}", s.message()),
                }
            };
            scheduler.remove_worker(id, &why);
        });
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    async fn status(&self) -> Result<proto::PoolStatus, Status> {
        Ok(self.scheduler.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::server::platform::Labels;

    fn hello(name: &str, cpus: f64, memory: u64, jobs: u32) -> proto::Hello {
        proto::Hello {
            name: name.into(),
            labels: Labels::new([], false).advertised(),
            jobs,
            cpus,
            memory,
            version: "test".into(),
            ..Default::default()
        }
    }

    fn submission(n: u32, props: &[(&str, &str)], root: &str) -> Submission {
        let action = reapi::Action {
            input_root_digest: Some(reapi::Digest {
                hash: root.into(),
                size_bytes: 1,
            }),
            platform: Some(reapi::Platform {
                properties: props
                    .iter()
                    .map(|(n, v)| reapi::platform::Property {
                        name: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
            }),
            ..Default::default()
        };
        let bytes = format!("action {n}");
        Submission {
            function: DigestFunction::Blake3,
            action_digest: BlobDigest::of(DigestFunction::Blake3, bytes.as_bytes()),
            action,
            command: reapi::Command::default(),
            secrets: BTreeMap::new(),
            attempt: 1,
            secrets_hash: [0; 32],
            id: format!("op{n}"),
            client: "c".into(),
        }
    }

    /// The operations leased to a worker so far.
    fn leased(rx: &mut mpsc::UnboundedReceiver<Result<ServeMsg, Status>>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Ok(ServeMsg { kind: Some(kind) })) = rx.try_recv() {
            if let serve_msg::Kind::Work(w) = kind {
                out.push(w.operation);
            }
        }
        out
    }

    fn pool() -> (tempfile::TempDir, Arc<PoolScheduler>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DiskStore::open(dir.path()).unwrap());
        let live = Arc::new(LiveLogs::default());
        (
            dir,
            PoolScheduler::new(store, live, PoolConfig::default(), None),
        )
    }

    #[test]
    fn cpu_and_memory_requests_place_on_a_worker_with_room_and_wait_otherwise() {
        let (_dir, pool) = pool();
        let (small_tx, mut small) = mpsc::unbounded_channel();
        let (big_tx, mut big) = mpsc::unbounded_channel();
        pool.add_worker(hello("small", 2.0, 1 << 30, 4), small_tx);
        pool.add_worker(hello("big", 8.0, 16 << 30, 4), big_tx);
        let mut keep = Vec::new();
        for n in 0..3 {
            keep.push(
                pool.clone()
                    .submit(submission(n, &[("cpu", "3")], "r"))
                    .unwrap(),
            );
        }
        keep.push(
            pool.clone()
                .submit(submission(9, &[("memory", "2Gi")], "r"))
                .unwrap(),
        );
        assert_eq!(leased(&mut small), Vec::<String>::new());
        let on_big = leased(&mut big);
        assert_eq!(
            on_big,
            vec!["operations/op0", "operations/op1", "operations/op9"]
        );
        let load = pool.load();
        assert_eq!(
            (load.queued, load.running, load.workers, load.capacity_slots),
            (1, 3, 2, 8)
        );
    }

    #[test]
    fn a_worker_holding_the_input_root_is_preferred() {
        let (_dir, pool) = pool();
        let (a_tx, mut a) = mpsc::unbounded_channel();
        let (b_tx, mut b) = mpsc::unbounded_channel();
        let ida = pool.add_worker(hello("a", 2.0, 0, 4), a_tx);
        pool.add_worker(hello("b", 2.0, 0, 4), b_tx);
        let _x = pool.clone().submit(submission(1, &[], "other")).unwrap();
        assert_eq!(
            leased(&mut a),
            vec!["operations/op1"],
            "ties go to the first worker"
        );
        pool.on_message(
            ida,
            proto::worker_msg::Kind::Heartbeat(proto::Heartbeat {
                running: Vec::new(),
                held: vec!["warm".into()],
            }),
        );
        let _y = pool.clone().submit(submission(2, &[], "warm")).unwrap();
        let _z = pool.clone().submit(submission(3, &[], "warm")).unwrap();
        assert!(leased(&mut b).is_empty(), "b holds nothing of warm");
        // Without the preference the idle b would have taken them (a already runs one).
        assert_eq!(leased(&mut a).len(), 2);
    }

    /// The status of a done operation.
    fn done_status(rx: &watch::Receiver<Operation>) -> bazel_remote_apis::google::rpc::Status {
        let op = rx.borrow().clone();
        assert!(op.done, "{op:?}");
        let Some(bazel_remote_apis::google::longrunning::operation::Result::Response(any)) =
            op.result
        else {
            panic!("no response: {op:?}")
        };
        reapi::ExecuteResponse::decode(&any.value[..])
            .unwrap()
            .status
            .unwrap()
    }

    #[test]
    fn cancel_drops_a_queued_action_and_withdraws_a_running_ones_lease() {
        let (_dir, pool) = pool();
        // Queued (no worker yet): it finishes CANCELLED and never runs.
        let queued = pool.clone().submit(submission(1, &[], "r")).unwrap();
        assert!(pool.cancel("operations/op1", "asked").unwrap());
        let st = done_status(&queued);
        assert_eq!(st.code, Code::Cancelled as i32);
        assert!(st.message.contains("before a worker ran it"), "{st:?}");
        // Leased: the worker is told to stop it, the slot is free again.
        let (tx, mut rx) = mpsc::unbounded_channel();
        pool.add_worker(hello("w", 2.0, 0, 1), tx);
        assert!(
            leased(&mut rx).is_empty(),
            "the cancelled action is not leased"
        );
        let running = pool.clone().submit(submission(2, &[], "r")).unwrap();
        let waiting = pool.clone().submit(submission(3, &[], "r")).unwrap();
        assert_eq!(leased(&mut rx), vec!["operations/op2"]);
        assert!(pool.cancel("operations/op2", "asked").unwrap());
        let st = done_status(&running);
        assert_eq!(st.code, Code::Cancelled as i32);
        assert!(st.message.contains("its worker w was told"), "{st:?}");
        let mut cancels = Vec::new();
        let mut works = Vec::new();
        while let Ok(Ok(ServeMsg { kind: Some(kind) })) = rx.try_recv() {
            match kind {
                serve_msg::Kind::Cancel(c) => cancels.push((c.lease, c.reason)),
                serve_msg::Kind::Work(w) => works.push(w.operation),
                _ => {}
            }
        }
        assert_eq!(cancels, vec![(1, "asked".to_owned())]);
        assert_eq!(
            works,
            vec!["operations/op3"],
            "the freed slot runs the next"
        );
        assert!(!waiting.borrow().done);
        // Done already: nothing to cancel; unknown: NOT_FOUND.
        assert!(!pool.cancel("operations/op2", "again").unwrap());
        let err = pool.cancel("operations/nope", "x").unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }

    #[test]
    fn resources_parse_cores_and_memory_units() {
        assert_eq!(parse_resource(CPU, "0.5"), Ok(0.5));
        assert_eq!(
            parse_resource(MEMORY, "2Gi"),
            Ok(2.0 * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(parse_resource(MEMORY, "512M"), Ok(512e6));
        assert!(parse_resource(CPU, "-1").unwrap_err().contains("cpu=-1"));
        assert!(parse_resource(MEMORY, "3 parsecs").is_err());
    }

    /// Serve-side mapping of joined workers' samples: a lease's sample rides in its
    /// operation, only from the worker holding the lease and only while it runs.
    #[test]
    fn resource_samples_ride_in_the_operation_only_from_the_lease_holder_while_it_runs() {
        let (_dir, pool) = pool();
        let (a_tx, mut a) = mpsc::unbounded_channel();
        let (b_tx, _b) = mpsc::unbounded_channel();
        let ida = pool.add_worker(hello("a", 2.0, 0, 1), a_tx);
        let idb = pool.add_worker(hello("b", 2.0, 0, 1), b_tx);
        let op = pool.clone().submit(submission(1, &[], "r")).unwrap();
        let mut lease = None;
        while let Ok(Ok(ServeMsg { kind: Some(kind) })) = a.try_recv() {
            if let serve_msg::Kind::Work(w) = kind {
                lease = Some(w.lease);
            }
        }
        let lease = lease.expect("a got the lease");
        let sample = |lease, rss_bytes| {
            proto::worker_msg::Kind::Resources(proto::Resources {
                lease,
                cpu_percent: 50.0,
                rss_bytes,
            })
        };
        let carried = || crate::remote::resources::of_operation(&op.borrow()).map(|s| s.rss_bytes);
        pool.message(idb, sample(lease, 1));
        assert_eq!(
            carried(),
            None,
            "not from a worker that does not hold the lease"
        );
        pool.message(ida, sample(lease, 2));
        assert_eq!(carried(), Some(2));
        pool.message(ida, sample(lease + 99, 3));
        assert_eq!(carried(), Some(2), "not for another lease");
        assert!(pool.cancel("operations/op1", "asked").unwrap());
        pool.message(ida, sample(lease, 4));
        assert!(op.borrow().done);
        assert_ne!(carried(), Some(4), "not after the lease ended");
    }
}
