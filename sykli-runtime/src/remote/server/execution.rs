//! The Execution and Operations services: `Execute` (with the operation stream),
//! `WaitExecution`, `GetOperation`/`WaitOperation`, `CancelOperation`.
//!
//! Every execution is an operation held as data ([`Executions`]): a `watch` channel of its
//! latest `Operation`, which streams subscribe to. Executions of the same action (same
//! digest function, Action digest and secret values) share one operation while it runs,
//! unless the action says `do_not_cache`. A cached result answers at once
//! (`cached_result`) unless the request says `skip_cache_lookup`. At most `--jobs` actions
//! run at once; the rest wait `QUEUED`. Finished operations stay visible for
//! [`RETENTION`]. `CancelOperation` (and `sykli cancel` through the observe hub) stops a
//! queued or running action: its process group is killed as a timeout kills it, and the
//! operation finishes with a `CANCELLED` status naming the worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::build::bazel::remote::execution::v2::execution_stage::Value as Stage;
use bazel_remote_apis::google::longrunning::{
    self as lr, CancelOperationRequest, DeleteOperationRequest, GetOperationRequest,
    ListOperationsRequest, ListOperationsResponse, Operation, WaitOperationRequest, operation,
};
use bazel_remote_apis::google::protobuf::{Any, Empty};
use prost::Message;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::digests::{BlobDigest, function_of};
use super::live::{LiveLogs, LiveStreams, Progress, stream_name};
use super::outputs;
use super::platform::{self, Labels};
use super::runner::{Job, Runner};
use super::status;
use super::store::{DiskStore, StoreError};
use crate::cache::digest::DigestFunction;
use crate::observe::metrics::Metrics;

pub use crate::remote::{ATTEMPT_METADATA, SECRETS_METADATA};

/// How long a finished operation stays visible to `WaitExecution`/`GetOperation`.
pub const RETENTION: Duration = Duration::from_secs(600);

const METADATA_URL: &str =
    "type.googleapis.com/build.bazel.remote.execution.v2.ExecuteOperationMetadata";
const RESPONSE_URL: &str = "type.googleapis.com/build.bazel.remote.execution.v2.ExecuteResponse";

/// An Execute whose Action and Command are loaded and that no cached result answered.
#[derive(Debug)]
pub struct Submission {
    /// The digest function of everything the action names.
    pub function: DigestFunction,
    /// The Action's digest.
    pub action_digest: BlobDigest,
    /// The Action.
    pub action: reapi::Action,
    /// Its Command.
    pub command: reapi::Command,
    /// Secret values for its environment (never stored).
    pub secrets: BTreeMap<String, String>,
    /// Which attempt of its task the client says this is (from 1; [`ATTEMPT_METADATA`]).
    pub attempt: u32,
    /// A hash of the secret values (part of the in-flight key), zeros when none.
    pub secrets_hash: [u8; 32],
    /// A unique id (the operation is `operations/{id}`).
    pub id: String,
    /// Who asked (instance name and peer), for fair sharing.
    pub client: String,
}

impl Submission {
    /// The action's platform (the Action's, else the Command's deprecated one).
    pub fn platform(&self) -> Option<&reapi::Platform> {
        #[allow(deprecated)]
        self.action
            .platform
            .as_ref()
            .or(self.command.platform.as_ref())
    }
}

/// What runs the actions behind the Execution and Operations services (NativeLink-style:
/// the services are the same; the scheduler differs). [`Executions`] runs them on this
/// worker; the pool scheduler of `sykli serve` leases them to joined workers.
pub trait Scheduler: Send + Sync + 'static {
    /// The store the services load Actions, Commands and cached results from.
    fn store(&self) -> &Arc<DiskStore>;
    /// Starts `submission` (or joins the identical one in flight); the receiver follows its
    /// operation. An error refuses it outright.
    fn submit(
        self: Arc<Self>,
        submission: Submission,
    ) -> Result<watch::Receiver<Operation>, Status>;
    /// Registers a finished operation (a cached result) so WaitExecution finds it.
    fn finished(self: Arc<Self>, op: Operation) -> watch::Receiver<Operation>;
    /// The operation called `name`, when known.
    fn subscribe(&self, name: &str) -> Option<watch::Receiver<Operation>>;
    /// Cancels the operation called `name`: a queued action never runs, a running one is
    /// stopped (its processes killed as a timeout kills them); the operation finishes with
    /// a `CANCELLED` status saying `reason`. `Ok(false)` when it had already finished;
    /// `NOT_FOUND` when the operation is not known here.
    fn cancel(&self, name: &str, reason: &str) -> Result<bool, Status>;
}

/// The status of an action cancelled on request on `server` (a worker or serve).
pub fn cancelled_status(server: &str, reason: &str) -> bazel_remote_apis::google::rpc::Status {
    status::status(
        tonic::Code::Cancelled,
        format!("the action was cancelled on {server}: {reason}"),
    )
}

/// What makes two executions the same action in flight (they then share one operation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InflightKey {
    function: DigestFunction,
    action: BlobDigest,
    secrets: [u8; 32],
}

impl InflightKey {
    /// The key of `sub`; none when its action says `do_not_cache` (never deduplicated).
    pub fn of(sub: &Submission) -> Option<InflightKey> {
        (!sub.action.do_not_cache).then_some(InflightKey {
            function: sub.function,
            action: sub.action_digest,
            secrets: sub.secrets_hash,
        })
    }
}

#[derive(Default)]
struct State {
    ops: HashMap<String, watch::Sender<Operation>>,
    inflight: HashMap<InflightKey, String>,
    /// Operations queued or running: how to stop them.
    active: HashMap<String, Control>,
}

/// How a queued or running operation is stopped.
struct Control {
    /// Cancelled by shutdown or by a cancel request.
    token: CancellationToken,
    /// Why it was cancelled on request (unset: not cancelled, or the worker stops).
    reason: Arc<std::sync::OnceLock<String>>,
}

/// The executions of a worker: operations, in-flight deduplication, the job limit.
pub struct Executions {
    store: Arc<DiskStore>,
    runner: Arc<Runner>,
    live: Arc<LiveLogs>,
    labels: Arc<Labels>,
    jobs: Arc<Semaphore>,
    /// How many permits `jobs` stands for now (`sykli config push` resizes it).
    jobs_size: Mutex<usize>,
    state: Mutex<State>,
    shutdown: CancellationToken,
    running: watch::Sender<usize>,
}

impl std::fmt::Debug for Executions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executions").finish_non_exhaustive()
    }
}

impl Scheduler for Executions {
    fn store(&self) -> &Arc<DiskStore> {
        &self.store
    }

    fn submit(self: Arc<Self>, sub: Submission) -> Result<watch::Receiver<Operation>, Status> {
        let placement = self.labels.place(sub.platform()).map_err(|m| {
            Status::failed_precondition(format!("action {}: {m}", sub.action_digest))
        })?;
        let job = Job {
            function: sub.function,
            action_digest: sub.action_digest,
            action: sub.action,
            command: sub.command,
            placement,
            secrets: sub.secrets,
            attempt: sub.attempt,
            dir_name: sub.id,
            queued: SystemTime::now(),
            live: None,
        };
        Ok(self.start_or_join(job, sub.secrets_hash))
    }

    fn finished(self: Arc<Self>, op: Operation) -> watch::Receiver<Operation> {
        let name = op.name.clone();
        let (tx, rx) = watch::channel(op);
        self.state().ops.insert(name.clone(), tx);
        self.forget_later(name);
        rx
    }

    fn subscribe(&self, name: &str) -> Option<watch::Receiver<Operation>> {
        self.state().ops.get(name).map(watch::Sender::subscribe)
    }

    fn cancel(&self, name: &str, reason: &str) -> Result<bool, Status> {
        let state = self.state();
        match state.active.get(name) {
            Some(c) => {
                let first = c.reason.set(reason.to_owned()).is_ok();
                c.token.cancel();
                Ok(first)
            }
            None if state.ops.contains_key(name) => Ok(false),
            None => Err(not_found(name)),
        }
    }
}

impl Executions {
    /// Executions over `store`, running at most `jobs` actions at once, their output live in
    /// `live`; `shutdown` stops running actions and refuses queued ones.
    pub fn new(
        store: Arc<DiskStore>,
        runner: Arc<Runner>,
        live: Arc<LiveLogs>,
        labels: Arc<Labels>,
        jobs: usize,
        shutdown: CancellationToken,
    ) -> Executions {
        Executions {
            store,
            runner,
            live,
            labels,
            jobs: Arc::new(Semaphore::new(jobs.max(1))),
            jobs_size: Mutex::new(jobs.max(1)),
            state: Mutex::new(State::default()),
            shutdown,
            running: watch::Sender::new(0),
        }
    }

    /// Runs at most `n` actions at once from now on. Growing starts queued actions at once;
    /// shrinking interrupts nothing: the surplus permits are taken back as running actions
    /// finish.
    pub fn set_jobs(&self, n: usize) {
        let n = n.max(1);
        let mut size = self.jobs_size.lock().unwrap_or_else(|p| p.into_inner());
        if n > *size {
            self.jobs.add_permits(n - *size);
        } else if n < *size {
            let surplus = u32::try_from(*size - n).unwrap_or(u32::MAX);
            let jobs = self.jobs.clone();
            tokio::spawn(async move {
                if let Ok(p) = jobs.acquire_many_owned(surplus).await {
                    p.forget();
                }
            });
        }
        *size = n;
    }

    /// How many actions may run at once now.
    pub fn jobs(&self) -> usize {
        *self.jobs_size.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until no operation is queued or running (after shutdown, once each has
    /// stopped its action and cleaned up).
    pub async fn drained(&self) {
        let mut rx = self.running.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget_later(self: &Arc<Self>, name: String) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(RETENTION).await;
            if let Some(this) = this.upgrade() {
                this.state().ops.remove(&name);
            }
        });
    }

    /// Joins the running execution of the same action, or starts one.
    fn start_or_join(
        self: &Arc<Self>,
        mut job: Job,
        secrets_hash: [u8; 32],
    ) -> watch::Receiver<Operation> {
        let key = InflightKey {
            function: job.function,
            action: job.action_digest,
            secrets: secrets_hash,
        };
        let dedup = !job.action.do_not_cache;
        let mut state = self.state();
        if dedup
            && let Some(name) = state.inflight.get(&key)
            && let Some(tx) = state.ops.get(name)
        {
            return tx.subscribe();
        }
        let name = format!("operations/{}", job.dir_name);
        let (tx, rx) = watch::channel(operation(
            &name,
            Stage::Queued,
            job.function,
            &job.action_digest,
            None,
        ));
        let log_names = [
            stream_name(&job.dir_name, "stdout"),
            stream_name(&job.dir_name, "stderr"),
        ];
        let exec_dir = self.store.root().join("exec").join(&job.dir_name);
        let streams = LiveStreams::new(
            self.live
                .register(log_names[0].clone(), exec_dir.join("stdout")),
            self.live
                .register(log_names[1].clone(), exec_dir.join("stderr")),
        );
        job.live = Some(streams.clone());
        let token = self.shutdown.child_token();
        let reason = Arc::new(std::sync::OnceLock::new());
        state.active.insert(
            name.clone(),
            Control {
                token: token.clone(),
                reason: reason.clone(),
            },
        );
        state.ops.insert(name.clone(), tx.clone());
        if dedup {
            state.inflight.insert(key.clone(), name.clone());
        }
        drop(state);
        self.running.send_modify(|n| *n += 1);
        Metrics::global().action_queued();
        let this = self.clone();
        tokio::spawn(async move {
            let permit = tokio::select! {
                p = this.jobs.clone().acquire_owned() => p.ok(),
                () = token.cancelled() => None,
            };
            let worker = this.runner.worker();
            let response = match permit {
                None if reason.get().is_some() => {
                    Metrics::global().action_dropped();
                    let why = reason.get().map_or("", String::as_str);
                    reapi::ExecuteResponse {
                        status: Some(cancelled_status(worker, &format!("{why} (before it ran)"))),
                        ..Default::default()
                    }
                }
                None => {
                    Metrics::global().action_dropped();
                    reapi::ExecuteResponse {
                        status: Some(status::status(
                            tonic::Code::Unavailable,
                            "the worker stopped before the action ran",
                        )),
                        ..Default::default()
                    }
                }
                Some(_permit) => {
                    Metrics::global().action_started();
                    let began = std::time::Instant::now();
                    let mut executing = operation(
                        &name,
                        Stage::Executing,
                        job.function,
                        &job.action_digest,
                        None,
                    );
                    with_streams(&mut executing, &log_names);
                    tx.send_replace(executing);
                    let sampler =
                        tokio::spawn(publish_samples(tx.clone(), streams.pgid.subscribe()));
                    let mut response = this.runner.run(&job, token.clone()).await;
                    sampler.abort();
                    // Cancelled on request, not by the worker stopping: say so (the logs
                    // of what it did stay in the result).
                    if let Some(why) = reason.get()
                        && !this.shutdown.is_cancelled()
                        && response
                            .status
                            .as_ref()
                            .is_some_and(|s| s.code == tonic::Code::Unavailable as i32)
                    {
                        response.status = Some(cancelled_status(worker, why));
                    }
                    Metrics::global()
                        .action_finished(outcome(&response), began.elapsed().as_secs_f64());
                    response
                }
            };
            {
                let mut state = this.state();
                if state.inflight.get(&key) == Some(&name) {
                    state.inflight.remove(&key);
                }
                state.active.remove(&name);
            }
            tx.send_replace(operation(
                &name,
                Stage::Completed,
                job.function,
                &job.action_digest,
                Some(response),
            ));
            for p in [&streams.stdout, &streams.stderr] {
                p.send_modify(|p: &mut Progress| p.done = true);
            }
            for n in &log_names {
                this.live.remove(n);
            }
            this.runner.clean_up(&job).await;
            this.forget_later(name);
            this.running.send_modify(|n| *n = n.saturating_sub(1));
        });
        rx
    }
}

/// How an action ended, as `sykli_tasks_finished_total` counts it: `errored` when it did
/// not run to completion, else `passed` (exit 0) or `failed`.
fn outcome(response: &reapi::ExecuteResponse) -> &'static str {
    let completed = response.status.as_ref().is_none_or(|s| s.code == 0);
    match &response.result {
        Some(r) if completed && r.exit_code == 0 => "passed",
        Some(_) if completed => "failed",
        _ => "errored",
    }
}

/// An `Operation` at `stage`; done with `response` when given.
pub fn operation(
    name: &str,
    stage: Stage,
    function: DigestFunction,
    action: &BlobDigest,
    response: Option<reapi::ExecuteResponse>,
) -> Operation {
    let metadata = reapi::ExecuteOperationMetadata {
        stage: stage as i32,
        action_digest: Some(action.to_reapi()),
        digest_function: function.reapi_value(),
        ..Default::default()
    };
    Operation {
        name: name.to_owned(),
        metadata: Some(Any {
            type_url: METADATA_URL.into(),
            value: metadata.encode_to_vec(),
        }),
        done: response.is_some(),
        result: response.map(|r| {
            operation::Result::Response(Any {
                type_url: RESPONSE_URL.into(),
                value: r.encode_to_vec(),
            })
        }),
    }
}

/// Sets the live log names in an operation's metadata.
pub fn with_streams(op: &mut Operation, names: &[String; 2]) {
    let Some(any) = op.metadata.as_mut() else {
        return;
    };
    if let Ok(mut meta) = reapi::ExecuteOperationMetadata::decode(&any.value[..]) {
        meta.stdout_stream_name = names[0].clone();
        meta.stderr_stream_name = names[1].clone();
        any.value = meta.encode_to_vec();
    }
}

/// Puts resource samples of the action's process group (once it started on this machine)
/// into its operation about once a second ([`crate::remote::resources`]), until the group is
/// gone or the operation is done; a done operation is never changed.
async fn publish_samples(tx: watch::Sender<Operation>, mut pgid: watch::Receiver<Option<u32>>) {
    use futures::StreamExt;
    // Bounded: the sender goes with the operation.
    let Ok(Some(id)) = pgid.wait_for(Option::is_some).await.map(|p| *p) else {
        return;
    };
    let mut samples = std::pin::pin!(crate::observe::resources::samples(id));
    while let Some(sample) = samples.next().await {
        if !tx.send_if_modified(|op| crate::remote::resources::attach(op, sample)) {
            break;
        }
    }
}

/// The stream of an operation's states, ending with the done one.
pub fn op_stream(rx: watch::Receiver<Operation>) -> BoxStream<Operation> {
    Box::pin(futures::stream::unfold(
        (rx, true, false),
        |(mut rx, first, finished)| async move {
            if finished {
                return None;
            }
            if !first && rx.changed().await.is_err() {
                return None;
            }
            let op = rx.borrow_and_update().clone();
            let done = op.done;
            Some((Ok(op), (rx, false, done)))
        },
    ))
}

/// The header where Bazel and other REAPI clients send their `RequestMetadata`.
const REQUEST_METADATA: &str = "build.bazel.remote.execution.v2.requestmetadata-bin";

/// Who sent `request`, for fair sharing: the invocation of its `RequestMetadata` when it
/// sends one (Bazel's build), else its peer address (a connection).
fn client_of<T>(request: &Request<T>) -> String {
    let invocation = request
        .metadata()
        .get_bin(REQUEST_METADATA)
        .and_then(|v| v.to_bytes().ok())
        .and_then(|b| reapi::RequestMetadata::decode(&b[..]).ok())
        .map(|m| {
            if m.correlated_invocations_id.is_empty() {
                m.tool_invocation_id
            } else {
                m.correlated_invocations_id
            }
        })
        .filter(|id| !id.is_empty());
    match invocation {
        Some(id) => format!("invocation {id}"),
        None => request
            .remote_addr()
            .map_or_else(|| "unknown peer".to_owned(), |a| format!("peer {a}")),
    }
}

/// The attempt from [`ATTEMPT_METADATA`] (1 when absent, as from clients other than sykli).
pub fn attempt_of(metadata: &tonic::metadata::MetadataMap) -> Result<u32, Status> {
    let Some(value) = metadata.get(ATTEMPT_METADATA) else {
        return Ok(1);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "{ATTEMPT_METADATA} metadata must be a whole number from 1, got {value:?}"
            ))
        })
}

/// Secret values from `x-sykli-secrets-bin` (none when absent). Errors never echo values.
pub fn secrets_of(
    metadata: &tonic::metadata::MetadataMap,
) -> Result<BTreeMap<String, String>, Status> {
    let Some(value) = metadata.get_bin(SECRETS_METADATA) else {
        return Ok(BTreeMap::new());
    };
    let bytes = value.to_bytes().map_err(|_| {
        Status::invalid_argument(format!("{SECRETS_METADATA} metadata is not valid base64"))
    })?;
    let secrets: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| {
        Status::invalid_argument(format!(
            "{SECRETS_METADATA} metadata must be a JSON object of strings ({{NAME: VALUE}})"
        ))
    })?;
    for name in secrets.keys() {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(Status::invalid_argument(format!(
                "{SECRETS_METADATA}: \"{}\" is not a valid environment variable name",
                name.escape_default()
            )));
        }
    }
    Ok(secrets)
}

/// The `Execution` service.
#[derive(Clone)]
pub struct ExecutionService {
    inner: Arc<dyn Scheduler>,
    observe: Option<Arc<crate::observe::actions::ActionRuns>>,
}

impl ExecutionService {
    /// The service over `scheduler`.
    pub fn new(inner: Arc<dyn Scheduler>) -> Self {
        Self {
            inner,
            observe: None,
        }
    }

    /// Actions that name their run and task (REAPI `RequestMetadata`) show as runs in
    /// `observe`'s hub.
    pub fn with_observe(
        mut self,
        observe: Option<Arc<crate::observe::actions::ActionRuns>>,
    ) -> Self {
        self.observe = observe;
        self
    }

    fn track(&self, tagged: Option<(String, String)>, rx: &watch::Receiver<Operation>) {
        if let (Some(o), Some((run, task))) = (&self.observe, tagged) {
            o.track(run, task, rx.clone());
        }
    }
}

fn load<M: Message + Default>(
    store: &DiskStore,
    function: DigestFunction,
    d: &BlobDigest,
    what: &'static str,
) -> Result<M, Status> {
    store.read_message(function, d, what).map_err(|e| match e {
        StoreError::NotFound { .. } => {
            status::to_tonic(&status::missing_blobs(function, &[(what.to_owned(), *d)]))
        }
        other => {
            let mut s = other.to_status();
            if s.code() == tonic::Code::InvalidArgument {
                s = Status::invalid_argument(format!("{what} {d}: {}", s.message()));
            }
            s
        }
    })
}

#[tonic::async_trait]
impl reapi::execution_server::Execution for ExecutionService {
    type ExecuteStream = BoxStream<Operation>;
    type WaitExecutionStream = BoxStream<Operation>;

    async fn execute(
        &self,
        request: Request<reapi::ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        let secrets = secrets_of(request.metadata())?;
        let attempt = attempt_of(request.metadata())?;
        let who = client_of(&request);
        let tagged = crate::observe::actions::run_and_task(request.metadata());
        let req = request.into_inner();
        let client = format!("{}/{who}", req.instance_name);
        let function = function_of(req.digest_function)?;
        let action_digest = BlobDigest::required(req.action_digest.as_ref(), "action_digest")?;
        let inner = self.inner.clone();
        let store = inner.store().clone();
        let (action, command, cached) = tokio::task::spawn_blocking(move || {
            let action: reapi::Action = load(&store, function, &action_digest, "Action")?;
            let command_digest =
                BlobDigest::required(action.command_digest.as_ref(), "Action.command_digest")?;
            let command: reapi::Command = load(&store, function, &command_digest, "Command")?;
            let cached = if req.skip_cache_lookup
                || action.do_not_cache
                || platform::names_plugin(&action, &command)
            {
                None
            } else {
                let hit = store
                    .get_action(function, &action_digest)
                    .ok()
                    .flatten()
                    .filter(|r| {
                        r.exit_code == 0 && outputs::first_missing(&store, function, r).is_none()
                    });
                Metrics::global().cache_lookup(hit.is_some());
                hit
            };
            Ok::<_, Status>((action, command, cached))
        })
        .await
        .map_err(|e| Status::internal(format!("lookup task failed: {e}")))??;

        let id = format!("{:032x}", rand::random::<u128>());
        if let Some(result) = cached {
            let response = reapi::ExecuteResponse {
                result: Some(result),
                cached_result: true,
                status: Some(status::ok()),
                ..Default::default()
            };
            let op = operation(
                &format!("operations/{id}"),
                Stage::Completed,
                function,
                &action_digest,
                Some(response),
            );
            let rx = inner.finished(op);
            self.track(tagged, &rx);
            return Ok(Response::new(op_stream(rx)));
        }
        let secrets_hash = if secrets.is_empty() {
            [0; 32]
        } else {
            *blake3::hash(&serde_json::to_vec(&secrets).unwrap_or_default()).as_bytes()
        };
        let rx = inner.submit(Submission {
            function,
            action_digest,
            action,
            command,
            secrets,
            attempt,
            secrets_hash,
            id,
            client,
        })?;
        self.track(tagged, &rx);
        Ok(Response::new(op_stream(rx)))
    }

    async fn wait_execution(
        &self,
        request: Request<reapi::WaitExecutionRequest>,
    ) -> Result<Response<Self::WaitExecutionStream>, Status> {
        let name = request.into_inner().name;
        match self.inner.subscribe(&name) {
            Some(rx) => Ok(Response::new(op_stream(rx))),
            None => Err(not_found(&name)),
        }
    }
}

/// NOT_FOUND for an operation this server does not know.
pub fn not_found(name: &str) -> Status {
    Status::not_found(format!(
        "operation \"{}\" is not known to this worker (finished long ago, or the worker \
         restarted): Execute the action again",
        name.escape_default()
    ))
}

/// The `Operations` service (`GetOperation`, `WaitOperation`, `CancelOperation`).
#[derive(Clone)]
pub struct OperationsService {
    inner: Arc<dyn Scheduler>,
}

impl OperationsService {
    /// The service over `scheduler`.
    pub fn new(inner: Arc<dyn Scheduler>) -> Self {
        Self { inner }
    }
}

#[tonic::async_trait]
impl lr::operations_server::Operations for OperationsService {
    async fn list_operations(
        &self,
        _request: Request<ListOperationsRequest>,
    ) -> Result<Response<ListOperationsResponse>, Status> {
        Err(Status::unimplemented(
            "ListOperations is not supported by sykli worker",
        ))
    }

    async fn get_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<Operation>, Status> {
        let name = request.into_inner().name;
        match self.inner.subscribe(&name) {
            Some(rx) => Ok(Response::new(rx.borrow().clone())),
            None => Err(not_found(&name)),
        }
    }

    async fn delete_operation(
        &self,
        _request: Request<DeleteOperationRequest>,
    ) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "DeleteOperation is not supported by sykli worker",
        ))
    }

    /// Stops the operation's action (queued or running); it finishes `CANCELLED`. An
    /// operation already finished is left as it is (google.longrunning: best effort).
    async fn cancel_operation(
        &self,
        request: Request<CancelOperationRequest>,
    ) -> Result<Response<Empty>, Status> {
        let name = request.into_inner().name;
        self.inner.cancel(&name, "CancelOperation was called")?;
        Ok(Response::new(Empty {}))
    }

    async fn wait_operation(
        &self,
        request: Request<WaitOperationRequest>,
    ) -> Result<Response<Operation>, Status> {
        let name = request.into_inner().name;
        let Some(mut rx) = self.inner.subscribe(&name) else {
            return Err(not_found(&name));
        };
        let op = rx
            .wait_for(|op| op.done)
            .await
            .map(|op| op.clone())
            .map_err(|_| not_found(&name))?;
        Ok(Response::new(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attempt header: absent is 1 (other REAPI clients); a whole number from 1 is taken;
    /// anything else is INVALID_ARGUMENT naming the header and the value, never a panic.
    #[test]
    fn the_attempt_header_is_read_or_refused_naming_it() {
        let mut m = tonic::metadata::MetadataMap::new();
        assert_eq!(attempt_of(&m).unwrap(), 1);
        m.insert(ATTEMPT_METADATA, "3".parse().unwrap());
        assert_eq!(attempt_of(&m).unwrap(), 3);
        for bad in ["0", "-1", "two", "99999999999"] {
            m.insert(ATTEMPT_METADATA, bad.parse().unwrap());
            let e = attempt_of(&m).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(
                e.message().contains(ATTEMPT_METADATA) && e.message().contains(bad),
                "{}",
                e.message()
            );
        }
    }
}
