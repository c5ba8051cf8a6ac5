//! The observe service (`sykli.observe.v1.Observe`) over a [`Hub`]: `Subscribe` (server
//! streaming: a run's events from a sequence number, then live, in batches of what was
//! ready), `ListRuns` and `Cancel`.
//! Messages are derived with prost (no `protoc`); an event travels as its JSON-encoded
//! [`Envelope`] (one schema: the one `--json`, the journal and the web view use), a run list
//! as JSON [`RunInfo`]s.
//!
//! Served by `sykli worker`, `sykli serve` and `sykli run --serve ADDR`, behind the same
//! bearer token as the REAPI services ([`crate::remote::auth`]). [`ObserveClient`] is the
//! client `sykli observe`, `sykli ps` and `sykli cancel` use.

use std::sync::Arc;

use futures::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::*;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

use super::hub::{Hub, HubError, RunInfo};
use crate::events::Envelope;
use crate::remote::client::{ClientOptions, RemoteError, open_channel};

/// The service name.
pub const SERVICE_NAME: &str = "sykli.observe.v1.Observe";
/// `Subscribe`'s path.
pub const SUBSCRIBE_PATH: &str = "/sykli.observe.v1.Observe/Subscribe";
/// `ListRuns`' path.
pub const LIST_RUNS_PATH: &str = "/sykli.observe.v1.Observe/ListRuns";
/// `Cancel`'s path.
pub const CANCEL_PATH: &str = "/sykli.observe.v1.Observe/Cancel";

/// Which events to stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeRequest {
    /// The run; empty: the newest unfinished run (else the newest).
    #[prost(string, tag = "1")]
    pub run_id: String,
    /// Only this task's events (and the run's own); empty: all.
    #[prost(string, tag = "2")]
    pub task: String,
    /// First sequence number wanted (0 or 1: from the start).
    #[prost(uint64, tag = "3")]
    pub from_seq: u64,
}

/// One event (inside an [`EventBatch`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EventMessage {
    /// Its sequence number (also inside the envelope), to resume from `seq + 1`.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// The JSON-encoded [`Envelope`].
    #[prost(bytes = "vec", tag = "2")]
    pub envelope_json: Vec<u8>,
}

/// The events that were ready together (one message, one HTTP/2 frame, for many events
/// when the run is busy).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EventBatch {
    /// In order.
    #[prost(message, repeated, tag = "1")]
    pub events: Vec<EventMessage>,
}

/// Most events in one [`EventBatch`].
const BATCH: usize = 256;

/// `ListRuns` takes nothing.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListRunsRequest {}

/// The runs a server serves.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListRunsResponse {
    /// A JSON array of [`RunInfo`], oldest first.
    #[prost(bytes = "vec", tag = "1")]
    pub runs_json: Vec<u8>,
    /// The server's name (host), for `sykli ps`.
    #[prost(string, tag = "2")]
    pub server: String,
}

/// Cancel a run or one of its tasks.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CancelRequest {
    /// The run.
    #[prost(string, tag = "1")]
    pub run_id: String,
    /// The task; empty: the whole run.
    #[prost(string, tag = "2")]
    pub task: String,
}

/// `Cancel` answers nothing more than OK.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CancelResponse {}

/// The status a hub refusal travels as.
fn status_of(e: HubError) -> tonic::Status {
    let msg = e.to_string();
    match e {
        HubError::NoSuchRun { .. } => tonic::Status::not_found(msg),
        HubError::Evicted { .. } => tonic::Status::out_of_range(msg),
        HubError::NotCancellable { .. } => tonic::Status::unimplemented(msg),
        HubError::Finished { .. } | HubError::TaskNotRunning { .. } => {
            tonic::Status::failed_precondition(msg)
        }
    }
}

/// The `Observe` gRPC service over a hub. Wrap it in the server's auth interceptor.
#[derive(Clone)]
pub struct ObserveServer {
    hub: Hub,
    name: Arc<str>,
}

impl ObserveServer {
    /// The service over `hub`; `name` is what `ListRuns` calls this server.
    pub fn new(hub: Hub, name: impl Into<String>) -> Self {
        ObserveServer {
            hub,
            name: Arc::from(name.into()),
        }
    }

    fn subscribe(&self, req: SubscribeRequest) -> Result<BoxStream<EventBatch>, tonic::Status> {
        let run = if req.run_id.is_empty() {
            self.hub.latest().ok_or_else(|| {
                tonic::Status::not_found("no run is served here yet (sykli ps lists runs)")
            })?
        } else {
            req.run_id
        };
        let task = (!req.task.is_empty()).then_some(req.task);
        let events = self
            .hub
            .subscribe(&run, task, req.from_seq)
            .map_err(status_of)?;
        let messages = events.map(|item| match item {
            Ok(e) => serde_json::to_vec(&*e)
                .map(|envelope_json| EventMessage {
                    seq: e.seq,
                    envelope_json,
                })
                .map_err(|err| {
                    tonic::Status::internal(format!("encoding event #{}: {err}", e.seq))
                }),
            Err(e) => Err(status_of(e)),
        });
        // Whatever is ready goes in one message; an error follows the events before it.
        Ok(Box::pin(messages.ready_chunks(BATCH).flat_map(|chunk| {
            let mut out = Vec::with_capacity(2);
            let mut events = Vec::with_capacity(chunk.len());
            let mut error = None;
            for item in chunk {
                match item {
                    Ok(m) if error.is_none() => events.push(m),
                    Ok(_) => {}
                    Err(s) => {
                        error.get_or_insert(s);
                    }
                }
            }
            if !events.is_empty() {
                out.push(Ok(EventBatch { events }));
            }
            if let Some(s) = error {
                out.push(Err(s));
            }
            futures::stream::iter(out)
        })))
    }

    fn list_runs(&self) -> Result<ListRunsResponse, tonic::Status> {
        let runs = serde_json::to_vec(&self.hub.runs())
            .map_err(|e| tonic::Status::internal(format!("encoding runs: {e}")))?;
        Ok(ListRunsResponse {
            runs_json: runs,
            server: self.name.to_string(),
        })
    }
}

impl tonic::server::NamedService for ObserveServer {
    const NAME: &'static str = SERVICE_NAME;
}

struct SubscribeSvc(ObserveServer);

impl tonic::server::ServerStreamingService<SubscribeRequest> for SubscribeSvc {
    type Response = EventBatch;
    type ResponseStream = BoxStream<EventBatch>;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<SubscribeRequest>) -> Self::Future {
        let r = self.0.subscribe(request.into_inner());
        Box::pin(async move { r.map(tonic::Response::new) })
    }
}

struct ListRunsSvc(ObserveServer);

impl tonic::server::UnaryService<ListRunsRequest> for ListRunsSvc {
    type Response = ListRunsResponse;
    type Future = BoxFuture<tonic::Response<ListRunsResponse>, tonic::Status>;
    fn call(&mut self, _request: tonic::Request<ListRunsRequest>) -> Self::Future {
        let r = self.0.list_runs();
        Box::pin(async move { r.map(tonic::Response::new) })
    }
}

struct CancelSvc(ObserveServer);

impl tonic::server::UnaryService<CancelRequest> for CancelSvc {
    type Response = CancelResponse;
    type Future = BoxFuture<tonic::Response<CancelResponse>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<CancelRequest>) -> Self::Future {
        let req = request.into_inner();
        let task = (!req.task.is_empty()).then_some(req.task.as_str());
        let r = self
            .0
            .hub
            .cancel(&req.run_id, task)
            .map(|()| tonic::Response::new(CancelResponse {}))
            .map_err(status_of);
        Box::pin(async move { r })
    }
}

impl<B> Service<http::Request<B>> for ObserveServer
where
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
        let inner = self.clone();
        match req.uri().path() {
            SUBSCRIBE_PATH => Box::pin(async move {
                let codec = tonic_prost::ProstCodec::<EventBatch, SubscribeRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.server_streaming(SubscribeSvc(inner), req).await)
            }),
            LIST_RUNS_PATH => Box::pin(async move {
                let codec = tonic_prost::ProstCodec::<ListRunsResponse, ListRunsRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(ListRunsSvc(inner), req).await)
            }),
            CANCEL_PATH => Box::pin(async move {
                let codec = tonic_prost::ProstCodec::<CancelResponse, CancelRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(CancelSvc(inner), req).await)
            }),
            _ => Box::pin(async { Ok(crate::remote::unimplemented_method()) }),
        }
    }
}

/// A client of the `Observe` service.
#[derive(Debug, Clone)]
pub struct ObserveClient {
    inner: tonic::client::Grpc<Channel>,
    auth: Option<AsciiMetadataValue>,
    endpoint: String,
}

impl ObserveClient {
    /// Connects to `opts.endpoint` (TLS and token as every sykli client).
    pub async fn connect(opts: &ClientOptions) -> Result<ObserveClient, RemoteError> {
        let (channel, auth) = open_channel(opts).await?;
        Ok(ObserveClient {
            inner: tonic::client::Grpc::new(channel),
            auth,
            endpoint: opts.endpoint.to_string(),
        })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(a) = &self.auth {
            r.metadata_mut().insert("authorization", a.clone());
        }
        r
    }

    fn error(&self, call: &'static str, s: tonic::Status) -> RemoteError {
        RemoteError::Rpc {
            endpoint: self.endpoint.clone(),
            call,
            code: s.code(),
            message: s.message().to_owned(),
        }
    }

    async fn ready(&mut self, call: &'static str) -> Result<(), RemoteError> {
        self.inner.ready().await.map_err(|e| {
            self.error(
                call,
                tonic::Status::unavailable(format!("the channel is not ready: {e}")),
            )
        })
    }

    /// The events of `run` (`None`: the newest) from `from_seq`, then live, until the run's
    /// last event; with `task`, that task's and the run's own. Each item is an envelope or
    /// the status that ended the stream.
    pub async fn subscribe(
        &mut self,
        run: Option<&str>,
        task: Option<&str>,
        from_seq: u64,
    ) -> Result<impl futures::Stream<Item = Result<Envelope, tonic::Status>> + use<>, RemoteError>
    {
        self.ready("Observe/Subscribe").await?;
        let req = self.request(SubscribeRequest {
            run_id: run.unwrap_or_default().to_owned(),
            task: task.unwrap_or_default().to_owned(),
            from_seq,
        });
        let codec = tonic_prost::ProstCodec::<SubscribeRequest, EventBatch>::default();
        let stream = self
            .inner
            .server_streaming(req, PathAndQuery::from_static(SUBSCRIBE_PATH), codec)
            .await
            .map_err(|s| self.error("Observe/Subscribe", s))?
            .into_inner();
        Ok(stream.flat_map(|batch| {
            let items: Vec<Result<Envelope, tonic::Status>> = match batch {
                Ok(b) => b
                    .events
                    .into_iter()
                    .map(|m| {
                        serde_json::from_slice::<Envelope>(&m.envelope_json).map_err(|e| {
                            tonic::Status::data_loss(format!(
                                "event #{} is not a valid envelope: {e}",
                                m.seq
                            ))
                        })
                    })
                    .collect(),
                Err(s) => vec![Err(s)],
            };
            futures::stream::iter(items)
        }))
    }

    /// The runs the server serves, and its name.
    pub async fn list_runs(&mut self) -> Result<(String, Vec<RunInfo>), RemoteError> {
        self.ready("Observe/ListRuns").await?;
        let req = self.request(ListRunsRequest {});
        let codec = tonic_prost::ProstCodec::<ListRunsRequest, ListRunsResponse>::default();
        let r = self
            .inner
            .unary(req, PathAndQuery::from_static(LIST_RUNS_PATH), codec)
            .await
            .map_err(|s| self.error("Observe/ListRuns", s))?
            .into_inner();
        let runs = serde_json::from_slice(&r.runs_json).map_err(|e| RemoteError::Protocol {
            endpoint: self.endpoint.clone(),
            message: format!("the run list is not valid JSON: {e}"),
        })?;
        Ok((r.server, runs))
    }

    /// Cancels `run` (`task: None`) or one running task of it.
    pub async fn cancel(&mut self, run: &str, task: Option<&str>) -> Result<(), RemoteError> {
        self.ready("Observe/Cancel").await?;
        let req = self.request(CancelRequest {
            run_id: run.to_owned(),
            task: task.unwrap_or_default().to_owned(),
        });
        let codec = tonic_prost::ProstCodec::<CancelRequest, CancelResponse>::default();
        self.inner
            .unary(req, PathAndQuery::from_static(CANCEL_PATH), codec)
            .await
            .map_err(|s| self.error("Observe/Cancel", s))?;
        Ok(())
    }
}

/// Serves the observe service over `hub` on `listener` (with the bearer `token` when given)
/// until `shutdown` is cancelled: what `sykli run --serve ADDR` runs beside its run.
///
/// `http` (`/metrics`, `/healthz`, `/readyz`: [`crate::observe::http`]) shares the port.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Hub,
    token: Option<crate::remote::auth::Token>,
    shutdown: tokio_util::sync::CancellationToken,
    http: axum::Router,
) -> Result<(), tonic::transport::Error> {
    let name = listener
        .local_addr()
        .map_or_else(|_| "sykli run".to_owned(), |a| format!("sykli run@{a}"));
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(http.into())
        .add_service(service(hub, name, token))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// The observe service over `hub`, behind the bearer-token check: what servers add to their
/// router.
pub fn service(
    hub: Hub,
    name: impl Into<String>,
    token: Option<crate::remote::auth::Token>,
) -> tonic::service::interceptor::InterceptedService<ObserveServer, crate::remote::auth::ServerAuth>
{
    tonic::service::interceptor::InterceptedService::new(
        ObserveServer::new(hub, name),
        crate::remote::auth::ServerAuth::new(token),
    )
}

/// The observe service running on a thread of its own (with its own single-threaded
/// runtime), so serving observers never takes time from the thread that runs the tasks:
/// `sykli run --serve` runs its scheduler on one thread, and only hands each event to the
/// hub there.
pub struct ServerThread {
    addr: std::net::SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
    done: tokio::sync::oneshot::Receiver<Result<(), String>>,
}

impl ServerThread {
    /// Serves `hub` on `listener` (with the bearer `token` when given) on a new thread.
    pub fn spawn(
        listener: std::net::TcpListener,
        hub: Hub,
        token: Option<crate::remote::auth::Token>,
    ) -> std::io::Result<ServerThread> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (tx, done) = tokio::sync::oneshot::channel();
        let stop = shutdown.clone();
        std::thread::Builder::new()
            .name("sykli-observe".into())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
                    .and_then(|rt| {
                        rt.block_on(async {
                            let listener = tokio::net::TcpListener::from_std(listener)
                                .map_err(|e| e.to_string())?;
                            // `/metrics`, `/healthz` and `/readyz` share the port.
                            let http = crate::observe::http::server_router(
                                token.clone(),
                                crate::observe::http::ready_until(&stop),
                                None,
                            );
                            serve(listener, hub, token, stop, http)
                                .await
                                .map_err(|e| crate::error_chain(&e))
                        })
                    });
                let _ = tx.send(result);
            })?;
        Ok(ServerThread {
            addr,
            shutdown,
            done,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Stops taking connections, lets open streams end, and waits for the thread at most
    /// `within`. `Err` says why serving failed.
    pub async fn stop(self, within: std::time::Duration) -> Result<(), String> {
        self.shutdown.cancel();
        match tokio::time::timeout(within, self.done).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the observe server's thread ended abruptly".into()),
            Err(_) => Ok(()),
        }
    }
}
