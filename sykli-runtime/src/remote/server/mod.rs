//! `sykli worker`: a REAPI v2 server that caches and runs actions.
//!
//! One module per service: [`capabilities`], [`cas`] (ContentAddressableStorage),
//! [`bytestream`] (blobs, and [`live`] logs of running actions), [`action_cache`],
//! [`execution`] (Execution and Operations). Beneath them:
//! [`store`] (the disk CAS and action cache, both digest functions), [`inputs`] (input roots
//! materialised with hardlinks), [`runner`] (one action through the local executors, logs
//! masked, outputs collected), [`outputs`], [`platform`] (labels and matching), [`status`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), sykli_runtime::remote::server::WorkerError> {
//! use sykli_runtime::remote::server::{WorkerConfig, bind};
//! let config = WorkerConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp/store".into());
//! let worker = bind(config).await?;
//! println!("sykli worker: listening on {}", worker.url());
//! worker.serve(tokio_util::sync::CancellationToken::new()).await?;
//! # Ok(()) }
//! ```

pub mod action_cache;
pub mod bytestream;
pub mod capabilities;
pub mod cas;
pub mod digests;
pub mod execution;
pub mod inputs;
pub mod live;
pub mod outputs;
pub mod platform;
pub mod runner;
pub mod status;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::bytestream::byte_stream_server::ByteStreamServer;
use bazel_remote_apis::google::longrunning::operations_server::OperationsServer;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use self::execution::Executions;
use self::platform::Labels;
use self::runner::Runner;
use self::store::{DiskStore, StoreError};
use super::auth::{ServerAuth, Token};
use crate::exec::process::ProcessExecutor;

/// How long running actions get to stop after shutdown before the worker exits anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long open connections may stay after shutdown once no action runs.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);

/// PEM files of a TLS server identity.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// How a worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// Store directory (created when missing).
    pub store: PathBuf,
    /// At most this many actions at once.
    pub jobs: usize,
    /// Labels offered as platform properties (`K=V`).
    pub labels: Vec<(String, String)>,
    /// Serve TLS with this identity.
    pub tls: Option<TlsFiles>,
    /// Refuse calls without this bearer token.
    pub token: Option<Token>,
    /// Offer `container-image` when a Docker engine answers (default true).
    pub containers: bool,
    /// SIGTERM-to-SIGKILL grace when stopping an action.
    pub kill_grace: Duration,
    /// Run host actions in the sandbox (default true on Linux): each sees only its input
    /// root, the read-only host tools and a private /tmp, never the worker's store, token
    /// or other actions. See docs/sandbox.md.
    pub sandbox: bool,
    /// The runs of the actions served (grouped by the clients' `RequestMetadata`), for the
    /// observe service, `/metrics` and the web view.
    pub hub: crate::observe::Hub,
}

impl WorkerConfig {
    /// Defaults: one job per CPU, no labels, no TLS, no token, containers when an engine
    /// answers, 5 s grace.
    pub fn new(listen: SocketAddr, store: PathBuf) -> WorkerConfig {
        WorkerConfig {
            listen,
            store,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            labels: Vec::new(),
            tls: None,
            token: None,
            containers: true,
            kill_grace: Duration::from_secs(5),
            sandbox: cfg!(target_os = "linux"),
            hub: crate::observe::Hub::new(),
        }
    }
}

/// Why a worker could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store could not be opened.
    #[error("failed to open the worker store")]
    Store(#[source] StoreError),
    /// The address could not be bound.
    #[error("failed to listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file could not be read.
    #[error("failed to read the TLS {what} {}", path.display())]
    TlsFile {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key was refused.
    #[error(
        "the TLS certificate {} or key {} is not usable (PEM expected)",
        cert.display(),
        key.display()
    )]
    TlsIdentity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// Serving failed.
    #[error("the gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
    /// The plugins stored in the worker's store could not be loaded.
    #[cfg(feature = "plugins")]
    #[error("failed to load the worker's plugins")]
    Plugins(#[source] crate::plugin::PluginError),
}

/// A worker bound to its address, not serving yet.
pub struct BoundWorker {
    listener: tokio::net::TcpListener,
    /// The gRPC server, its TLS identity already loaded.
    server: Server,
    addr: SocketAddr,
    config: WorkerConfig,
    store: Arc<DiskStore>,
    labels: Arc<Labels>,
    #[cfg(feature = "docker")]
    docker: Option<Arc<crate::exec::container::DockerExecutor>>,
    #[cfg(feature = "plugins")]
    plugins: crate::plugin::Plugins,
}

/// The plugins a worker stored in `store` (`plugins/`, compiled code in `plugins/.cache/`),
/// loaded (from the compiled cache when there).
#[cfg(feature = "plugins")]
pub fn stored_plugins(
    store: &std::path::Path,
) -> Result<crate::plugin::Plugins, crate::plugin::PluginError> {
    let dir = store.join("plugins");
    let host = crate::plugin::PluginHost::new(Some(dir.join(crate::plugin::CACHE_DIR)))?;
    let plugins = crate::plugin::Plugins::new(host);
    plugins.load_dir(&dir, None)?;
    Ok(plugins)
}

/// What `sykli config push` changes on a worker besides plugins.
#[cfg(feature = "plugins")]
struct LiveWorker {
    executions: Arc<Executions>,
    labels: Arc<Labels>,
}

#[cfg(feature = "plugins")]
impl crate::plugin::admin::ConfigTarget for LiveWorker {
    fn set_concurrency(&self, n: usize) {
        self.executions.set_jobs(n);
    }

    fn set_labels(&self, labels: &std::collections::BTreeMap<String, String>) {
        self.labels.set_pushed(labels);
    }
}

impl std::fmt::Debug for BoundWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundWorker")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Opens the store, looks for a container engine, loads the TLS identity and binds the
/// address.
pub async fn bind(config: WorkerConfig) -> Result<BoundWorker, WorkerError> {
    let root = config.store.clone();
    let store = tokio::task::spawn_blocking(move || DiskStore::open(root))
        .await
        .map_err(|e| {
            WorkerError::Store(StoreError::Io {
                action: "open",
                path: config.store.clone(),
                source: std::io::Error::other(e.to_string()),
            })
        })?
        .map_err(WorkerError::Store)?;
    #[cfg(feature = "docker")]
    let docker = if config.containers {
        engine().await
    } else {
        None
    };
    #[cfg(feature = "docker")]
    let containers = docker.is_some();
    #[cfg(not(feature = "docker"))]
    let containers = false;
    let labels = Arc::new(Labels::new(config.labels.clone(), containers));
    #[cfg(feature = "plugins")]
    let plugins = {
        let root = config.store.clone();
        tokio::task::spawn_blocking(move || stored_plugins(&root))
            .await
            .map_err(|e| {
                WorkerError::Plugins(crate::plugin::PluginError::Engine(format!(
                    "loading task failed: {e}"
                )))
            })?
            .map_err(WorkerError::Plugins)?
    };
    // TLS files are read before anything listens: a bad file fails the start, and the
    // listen line is printed only by a worker that can serve.
    let server = tls_server(config.tls.as_ref())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| WorkerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| WorkerError::Bind {
        addr: config.listen,
        source,
    })?;
    Ok(BoundWorker {
        listener,
        server,
        addr,
        config,
        store: Arc::new(store),
        labels,
        #[cfg(feature = "docker")]
        docker,
        #[cfg(feature = "plugins")]
        plugins,
    })
}

/// A gRPC server builder, with the TLS identity of `tls` loaded when given.
pub fn tls_server(tls: Option<&TlsFiles>) -> Result<Server, WorkerError> {
    // HTTP/1 too: `/metrics`, `/healthz` and `/readyz` share the gRPC port.
    let server = Server::builder().accept_http1(true);
    let Some(tls) = tls else {
        return Ok(server);
    };
    let read = |what: &'static str, path: &PathBuf| {
        std::fs::read(path).map_err(|source| WorkerError::TlsFile {
            what,
            path: path.clone(),
            source,
        })
    };
    let identity = Identity::from_pem(read("certificate", &tls.cert)?, read("key", &tls.key)?);
    server
        .tls_config(ServerTlsConfig::new().identity(identity))
        .map_err(|source| WorkerError::TlsIdentity {
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            source,
        })
}

/// The REAPI services (Capabilities, CAS, ByteStream, ActionCache, Execution, Operations)
/// over `store`, with `scheduler` behind Execution and Operations: `sykli worker` puts its
/// local runner there, `sykli serve` its pool.
/// `http` (`/metrics`, `/healthz`, `/readyz`, see [`crate::observe::http`]) is served on
/// the same port over HTTP/1 or HTTP/2.
#[allow(clippy::too_many_arguments)]
pub fn reapi_router(
    server: &mut Server,
    store: Arc<DiskStore>,
    live: Arc<live::LiveLogs>,
    labels: Arc<Labels>,
    scheduler: Arc<dyn execution::Scheduler>,
    auth: ServerAuth,
    observe: Arc<crate::observe::actions::ActionRuns>,
    http: axum::Router,
) -> tonic::transport::server::Router {
    observe.serve(scheduler.clone(), live.clone());
    server
        .add_routes(http.into())
        .add_service(reapi::capabilities_server::CapabilitiesServer::with_interceptor(
            capabilities::CapabilitiesService::new(labels),
            auth.clone(),
        ))
        .add_service(
            reapi::content_addressable_storage_server::ContentAddressableStorageServer::with_interceptor(
                cas::CasService::new(store.clone()),
                auth.clone(),
            ),
        )
        .add_service(ByteStreamServer::with_interceptor(
            bytestream::ByteStreamService::new(store.clone(), live),
            auth.clone(),
        ))
        .add_service(reapi::action_cache_server::ActionCacheServer::with_interceptor(
            action_cache::ActionCacheService::new(store),
            auth.clone(),
        ))
        .add_service(reapi::execution_server::ExecutionServer::with_interceptor(
            execution::ExecutionService::new(scheduler.clone()).with_observe(Some(observe.clone())),
            auth.clone(),
        ))
        .add_service(OperationsServer::with_interceptor(
            execution::OperationsService::new(scheduler),
            auth.clone(),
        ))
        // The runs of the actions served, for `sykli observe`, `ps` and `cancel`.
        .add_service(tonic::service::interceptor::InterceptedService::new(
            crate::observe::grpc::ObserveServer::new(observe.hub().clone(), observe.host()),
            auth,
        ))
}

/// A Docker executor when an engine answers within a few seconds.
#[cfg(feature = "docker")]
async fn engine() -> Option<Arc<crate::exec::container::DockerExecutor>> {
    use crate::exec::container::{DockerConfig, DockerExecutor};
    let config = DockerConfig {
        connect_timeout: Duration::from_secs(3),
        ..DockerConfig::default()
    };
    let docker = DockerExecutor::with_config(config).ok()?;
    docker.ping().await.ok()?;
    Some(Arc::new(docker))
}

impl BoundWorker {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint as Bazel writes it: `grpc://IP:PORT` or `grpcs://IP:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "grpcs"
        } else {
            "grpc"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The labels this worker offers (`K=V`).
    pub fn labels(&self) -> Vec<String> {
        self.labels.advertised()
    }

    /// Serves until `shutdown` is cancelled; then stops running actions (SIGTERM, grace,
    /// SIGKILL of their process groups) and returns once they are gone.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        self.serve_until(shutdown, CancellationToken::new()).await
    }

    /// Like [`BoundWorker::serve`]; once `escalate` is cancelled too (a second Ctrl-C),
    /// running actions are SIGKILLed without waiting out their grace period.
    pub async fn serve_until(
        self,
        shutdown: CancellationToken,
        escalate: CancellationToken,
    ) -> Result<(), WorkerError> {
        let mut server = self.server;
        let auth = ServerAuth::new(self.config.token.clone());
        let worker_name = format!("sykli-worker@{}", self.addr);
        #[cfg(target_os = "linux")]
        let sandbox = self.config.sandbox.then(|| {
            crate::exec::sandbox::SandboxExecutor::default().with_escalation(escalate.clone())
        });
        #[cfg(not(target_os = "linux"))]
        let sandbox = None;
        let runner = Runner::new(
            self.store.clone(),
            ProcessExecutor::new().with_escalation(escalate),
            sandbox,
            #[cfg(feature = "docker")]
            self.docker.clone(),
            worker_name,
            self.config.kill_grace,
        );
        #[cfg(feature = "plugins")]
        let runner = runner.with_plugins(self.plugins.clone());
        let runner = Arc::new(runner);
        let live = Arc::new(live::LiveLogs::default());
        let executions = Arc::new(Executions::new(
            self.store.clone(),
            runner,
            live.clone(),
            self.labels.clone(),
            self.config.jobs,
            shutdown.clone(),
        ));
        // Without TCP_NODELAY every small response waits out the peer's delayed ACK (~40 ms
        // per call).
        let incoming = tonic::transport::server::TcpIncoming::from(self.listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)));
        let router = reapi_router(
            &mut server,
            self.store.clone(),
            live,
            self.labels.clone(),
            executions.clone(),
            auth.clone(),
            crate::observe::actions::ActionRuns::new(
                self.config.hub.clone(),
                format!("sykli-worker@{}", self.addr),
            ),
            crate::observe::http::server_router(
                self.config.token.clone(),
                crate::observe::http::ready_until(&shutdown),
                None,
            ),
        );
        #[cfg(feature = "plugins")]
        let router = {
            let live = LiveWorker {
                executions: executions.clone(),
                labels: self.labels.clone(),
            };
            let config = Arc::new(crate::plugin::admin::LiveConfig::new(
                self.plugins.clone(),
                Some(Arc::new(live)),
            ));
            let admin = crate::plugin::admin::AdminServer::new(
                self.plugins.clone(),
                config,
                Some(self.config.store.join("plugins")),
            );
            router.add_service(tonic::service::interceptor::InterceptedService::new(
                admin, auth,
            ))
        };
        #[cfg(not(feature = "plugins"))]
        let _ = auth;
        let served =
            router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
        // Graceful shutdown waits for every connection to close; a client that stops
        // reading must not keep the worker alive: once the actions are stopped, connections
        // get CLOSE_LIMIT more.
        let stopped = async {
            shutdown.cancelled().await;
            let _ = tokio::time::timeout(DRAIN_LIMIT, executions.drained()).await;
            tokio::time::sleep(CLOSE_LIMIT).await;
        };
        let served = tokio::select! {
            r = served => r,
            () = stopped => Ok(()),
        };
        let _ = tokio::time::timeout(DRAIN_LIMIT, executions.drained()).await;
        served.map_err(WorkerError::Transport)
    }
}
