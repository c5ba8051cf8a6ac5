//! The worker<->serve protocol (`sykli.pool.v1.Pool`), its messages derived with prost (no
//! `protoc`): `Join`, one bidirectional stream a worker opens outbound (so it works behind
//! NAT), and `Status`, the snapshot `sykli workers` prints.
//!
//! A worker sends `Hello` first (labels, capacity, version), then `Heartbeat`s every interval
//! `Welcome` gave it, a `Result` per lease, and `Draining` when it stops taking work. Serve
//! sends `Welcome`, then `Work` (a lease of one action) and `Cancel` (a lease withdrawn).

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::*;
use tonic::transport::Channel;

/// `Join`'s path.
pub const JOIN_PATH: &str = "/sykli.pool.v1.Pool/Join";
/// `Status`'s path.
pub const STATUS_PATH: &str = "/sykli.pool.v1.Pool/Status";
/// The service name.
pub const SERVICE_NAME: &str = "sykli.pool.v1.Pool";

/// A worker's message to serve.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkerMsg {
    /// What it says.
    #[prost(oneof = "worker_msg::Kind", tags = "1, 2, 3, 4, 5, 10, 11")]
    pub kind: Option<worker_msg::Kind>,
}

/// The kinds of [`WorkerMsg`].
pub mod worker_msg {
    /// What a worker says.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// First message: who it is and what it offers.
        #[prost(message, tag = "1")]
        Hello(super::Hello),
        /// It is alive; what it runs and holds.
        #[prost(message, tag = "2")]
        Heartbeat(super::Heartbeat),
        /// A lease's outcome.
        #[prost(message, tag = "3")]
        Result(super::LeaseResult),
        /// It takes no new work (SIGTERM); it finishes what it runs.
        #[prost(message, tag = "4")]
        Draining(super::Draining),
        /// Output of a running lease, as it comes (masked).
        #[prost(message, tag = "5")]
        Output(super::Output),
        /// A `Plugin` or `Config` applied (or refused), and what the worker offers now.
        #[prost(message, tag = "10")]
        Applied(super::Applied),
        /// A resource sample of a running lease's processes (about once a second).
        #[prost(message, tag = "11")]
        Resources(super::Resources),
    }
}

/// A worker introduces itself.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Hello {
    /// Its name (host and pid), for humans and failure messages.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Platform properties it offers, `K=V`.
    #[prost(string, repeated, tag = "2")]
    pub labels: Vec<String>,
    /// Actions at once.
    #[prost(uint32, tag = "3")]
    pub jobs: u32,
    /// CPU cores.
    #[prost(double, tag = "4")]
    pub cpus: f64,
    /// Memory in bytes.
    #[prost(uint64, tag = "5")]
    pub memory: u64,
    /// The sykli version it runs.
    #[prost(string, tag = "6")]
    pub version: String,
    /// The target plugins it has loaded, `NAME@DIGEST` (BLAKE3 of the component).
    #[prost(string, repeated, tag = "7")]
    pub plugins: Vec<String>,
    /// It applies `Plugin` and `Config` messages (answering each with `Applied`).
    #[prost(bool, tag = "8")]
    pub admin: bool,
}

/// A worker is alive.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Heartbeat {
    /// The leases it runs.
    #[prost(uint64, repeated, tag = "1")]
    pub running: Vec<u64>,
    /// Input roots it held recently (hashes), for placement.
    #[prost(string, repeated, tag = "2")]
    pub held: Vec<String>,
}

/// A lease's outcome.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseResult {
    /// The lease.
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    /// The `ExecuteResponse`, encoded (its outputs are in serve's CAS already).
    #[prost(bytes = "vec", tag = "2")]
    pub response: Vec<u8>,
    /// The input root it held for this lease (hash), for placement.
    #[prost(string, tag = "3")]
    pub held: String,
}

/// A chunk of a running lease's output.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Output {
    /// The lease.
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    /// `true` for stderr, `false` for stdout.
    #[prost(bool, tag = "2")]
    pub stderr: bool,
    /// The bytes, following the previous chunk of that stream.
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

/// A sample of a running lease's processes, as `task_resources` carries it
/// ([`crate::observe::resources::Sample`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resources {
    /// The lease.
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    /// CPU used since the previous sample, in percent of one core.
    #[prost(double, tag = "2")]
    pub cpu_percent: f64,
    /// Resident memory of its processes now, in bytes.
    #[prost(uint64, tag = "3")]
    pub rss_bytes: u64,
}

/// The worker drains.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Draining {}

/// Serve's message to a worker.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServeMsg {
    /// What serve says.
    #[prost(oneof = "serve_msg::Kind", tags = "1, 2, 3, 10, 11")]
    pub kind: Option<serve_msg::Kind>,
}

/// The kinds of [`ServeMsg`].
pub mod serve_msg {
    /// What serve says.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// The worker is in the pool.
        #[prost(message, tag = "1")]
        Welcome(super::Welcome),
        /// Run this.
        #[prost(message, tag = "2")]
        Work(super::Work),
        /// Stop this lease (nobody waits for it, or it was given away).
        #[prost(message, tag = "3")]
        Cancel(super::Cancel),
        /// Load (or hot-swap, or remove) a target plugin.
        #[prost(message, tag = "10")]
        Plugin(super::PluginPush),
        /// Apply these worker-level settings.
        #[prost(message, tag = "11")]
        Config(super::ConfigPush),
    }
}

/// The worker is in the pool.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Welcome {
    /// Its id in the pool.
    #[prost(uint64, tag = "1")]
    pub worker: u64,
    /// Send a heartbeat this often (milliseconds).
    #[prost(uint64, tag = "2")]
    pub heartbeat_ms: u64,
}

/// One action to run under a lease.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Work {
    /// The lease.
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    /// The REAPI digest function value.
    #[prost(int32, tag = "2")]
    pub digest_function: i32,
    /// The Action's digest (it and what it names are in serve's CAS).
    #[prost(message, optional, tag = "3")]
    pub action_digest: Option<bazel_remote_apis::build::bazel::remote::execution::v2::Digest>,
    /// Secret values for its environment (never stored).
    #[prost(btree_map = "string, string", tag = "4")]
    pub secrets: BTreeMap<String, String>,
    /// The operation it answers, for logs.
    #[prost(string, tag = "5")]
    pub operation: String,
    /// Which attempt of its task the client said this is (from 1; 0 from an older serve).
    #[prost(uint32, tag = "6")]
    pub attempt: u32,
}

/// Stop a lease.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Cancel {
    /// The lease.
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    /// Why.
    #[prost(string, tag = "2")]
    pub reason: String,
}

/// A target plugin for a worker: loaded (a name already loaded is swapped, its running
/// tasks finishing on the old version), or removed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginPush {
    /// Answered by the `Applied` of the same number.
    #[prost(uint64, tag = "1")]
    pub request: u64,
    /// The target name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// The manifest (`plugin.toml`) text; empty with `remove`.
    #[prost(string, tag = "3")]
    pub manifest: String,
    /// The component's bytes; empty with `remove`.
    #[prost(bytes = "vec", tag = "4")]
    pub component: Vec<u8>,
    /// Unload `name` instead.
    #[prost(bool, tag = "5")]
    pub remove: bool,
}

/// The worker-level settings of `sykli config push` (concurrency, labels, target settings,
/// grant overrides), as the config's TOML.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigPush {
    /// Answered by the `Applied` of the same number.
    #[prost(uint64, tag = "1")]
    pub request: u64,
    /// The whole config (it replaces the previous one).
    #[prost(string, tag = "2")]
    pub toml: String,
}

/// A worker's answer to a `Plugin` or `Config`, with what it offers now.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Applied {
    /// The request answered.
    #[prost(uint64, tag = "1")]
    pub request: u64,
    /// Why it refused; empty when applied.
    #[prost(string, tag = "2")]
    pub error: String,
    /// Its job slots now.
    #[prost(uint32, tag = "3")]
    pub jobs: u32,
    /// Its labels now, `K=V`.
    #[prost(string, repeated, tag = "4")]
    pub labels: Vec<String>,
    /// Its loaded plugins now, `NAME@DIGEST`.
    #[prost(string, repeated, tag = "5")]
    pub plugins: Vec<String>,
}

/// `Status`'s request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

/// The pool as `sykli workers` shows it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PoolStatus {
    /// Actions waiting for a worker.
    #[prost(uint64, tag = "1")]
    pub queued: u64,
    /// Actions running.
    #[prost(uint64, tag = "2")]
    pub running: u64,
    /// Job slots of ready workers.
    #[prost(uint64, tag = "3")]
    pub capacity_slots: u64,
    /// The workers.
    #[prost(message, repeated, tag = "4")]
    pub workers: Vec<WorkerStatus>,
    /// Actions requeued after their worker was lost.
    #[prost(uint64, tag = "5")]
    pub requeued: u64,
    /// Results discarded because their worker had lost the lease.
    #[prost(uint64, tag = "6")]
    pub discarded: u64,
    /// Results accepted.
    #[prost(uint64, tag = "7")]
    pub completed: u64,
}

/// One worker in [`PoolStatus`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkerStatus {
    /// Its id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Its name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// `ready`, `draining` or `lost`.
    #[prost(string, tag = "3")]
    pub state: String,
    /// Its labels.
    #[prost(string, repeated, tag = "4")]
    pub labels: Vec<String>,
    /// Its job slots.
    #[prost(uint32, tag = "5")]
    pub jobs: u32,
    /// Leases it runs.
    #[prost(uint32, tag = "6")]
    pub running: u32,
    /// Results accepted from it.
    #[prost(uint64, tag = "7")]
    pub completed: u64,
    /// Its version.
    #[prost(string, tag = "8")]
    pub version: String,
    /// Milliseconds since it was last heard from.
    #[prost(uint64, tag = "9")]
    pub last_seen_ms: u64,
    /// CPU cores.
    #[prost(double, tag = "10")]
    pub cpus: f64,
    /// Memory in bytes.
    #[prost(uint64, tag = "11")]
    pub memory: u64,
    /// Its loaded target plugins, `NAME@DIGEST`.
    #[prost(string, repeated, tag = "12")]
    pub plugins: Vec<String>,
}

/// What serve does with joins and status requests.
#[async_trait]
pub trait Pool: Send + Sync + 'static {
    /// A worker joined: `incoming` is its stream; the returned stream goes to it.
    async fn join(
        &self,
        incoming: tonic::Request<tonic::Streaming<WorkerMsg>>,
    ) -> Result<tonic::Response<BoxStream<ServeMsg>>, tonic::Status>;
    /// The pool's snapshot.
    async fn status(&self) -> Result<PoolStatus, tonic::Status>;
}

/// The `Pool` gRPC service over a [`Pool`].
pub struct PoolServer<T> {
    inner: Arc<T>,
}

impl<T> PoolServer<T> {
    /// The service over `inner`.
    pub fn from_arc(inner: Arc<T>) -> Self {
        PoolServer { inner }
    }
}

impl<T> Clone for PoolServer<T> {
    fn clone(&self) -> Self {
        PoolServer {
            inner: self.inner.clone(),
        }
    }
}

impl<T> tonic::server::NamedService for PoolServer<T> {
    const NAME: &'static str = SERVICE_NAME;
}

struct JoinSvc<T>(Arc<T>);

impl<T: Pool> tonic::server::StreamingService<WorkerMsg> for JoinSvc<T> {
    type Response = ServeMsg;
    type ResponseStream = BoxStream<ServeMsg>;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<tonic::Streaming<WorkerMsg>>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.join(request).await })
    }
}

struct StatusSvc<T>(Arc<T>);

impl<T: Pool> tonic::server::UnaryService<StatusRequest> for StatusSvc<T> {
    type Response = PoolStatus;
    type Future = BoxFuture<tonic::Response<PoolStatus>, tonic::Status>;
    fn call(&mut self, _request: tonic::Request<StatusRequest>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.status().await.map(tonic::Response::new) })
    }
}

impl<T, B> Service<http::Request<B>> for PoolServer<T>
where
    T: Pool,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        match req.uri().path() {
            JOIN_PATH => Box::pin(async move {
                let codec = tonic_prost::ProstCodec::<ServeMsg, WorkerMsg>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.streaming(JoinSvc(inner), req).await)
            }),
            STATUS_PATH => Box::pin(async move {
                let codec = tonic_prost::ProstCodec::<PoolStatus, StatusRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(StatusSvc(inner), req).await)
            }),
            _ => Box::pin(async { Ok(crate::remote::unimplemented_method()) }),
        }
    }
}

/// A client of the `Pool` service.
#[derive(Debug, Clone)]
pub struct PoolClient {
    inner: tonic::client::Grpc<Channel>,
}

impl PoolClient {
    /// A client over `channel`.
    pub fn new(channel: Channel) -> PoolClient {
        PoolClient {
            inner: tonic::client::Grpc::new(channel),
        }
    }

    /// Opens the `Join` stream: `outgoing` goes to serve, the result comes from it.
    pub async fn join(
        &mut self,
        outgoing: tonic::Request<
            impl tonic::codegen::tokio_stream::Stream<Item = WorkerMsg> + Send + 'static,
        >,
    ) -> Result<tonic::Streaming<ServeMsg>, tonic::Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("the channel is not ready: {e}")))?;
        let codec = tonic_prost::ProstCodec::<WorkerMsg, ServeMsg>::default();
        let response = self
            .inner
            .streaming(outgoing, PathAndQuery::from_static(JOIN_PATH), codec)
            .await?;
        Ok(response.into_inner())
    }

    /// The pool's snapshot.
    pub async fn status(
        &mut self,
        request: tonic::Request<StatusRequest>,
    ) -> Result<PoolStatus, tonic::Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("the channel is not ready: {e}")))?;
        let codec = tonic_prost::ProstCodec::<StatusRequest, PoolStatus>::default();
        let response = self
            .inner
            .unary(request, PathAndQuery::from_static(STATUS_PATH), codec)
            .await?;
        Ok(response.into_inner())
    }
}
