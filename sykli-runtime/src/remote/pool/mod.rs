//! `sykli serve`: the REAPI front of a worker pool. The worker's services (Capabilities,
//! CAS, ByteStream, ActionCache over the same disk store) are composed unchanged; behind
//! Execution and Operations sits the [`scheduler::PoolScheduler`] instead of a local runner.
//! Workers join over one outbound stream ([`proto`], [`join`]); the queue is durable
//! ([`journal`]).
//!
//! With plugin support serve also serves `sykli.admin.v1.Admin` ([`crate::plugin::admin`]):
//! plugins pushed to it are stored in `plugins/` of its store (compiled code cached by
//! digest), loaded again after a restart, and handed to every worker that joins; a pushed
//! config is stored as `config.toml` and handed on the same way ([`scheduler`]'s fanout).

pub mod join;
pub mod journal;
pub mod member_admin;
pub mod proto;
pub mod scheduler;
pub mod static_worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use self::journal::{Journal, JournalError};
use self::scheduler::{PoolConfig, PoolScheduler, PoolService};
use super::auth::{ServerAuth, Token};
use super::server::platform::Labels;
use super::server::store::{DiskStore, StoreError};
use super::server::{TlsFiles, WorkerError, live, reapi_router, tls_server};

/// How `sykli serve` is set up.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// Store directory: the CAS, action cache and queue log.
    pub store: PathBuf,
    /// Serve TLS with this identity.
    pub tls: Option<TlsFiles>,
    /// Refuse calls (workers' included) without this bearer token.
    pub token: Option<Token>,
    /// The scheduler's settings.
    pub pool: PoolConfig,
    /// Plain `sykli worker`s (listening) to drive as pool members, with their job slots.
    pub static_workers: Vec<(super::client::ClientOptions, u32)>,
    /// The runs of the actions served (grouped by the clients' `RequestMetadata`), for the
    /// observe service, `/metrics` and the web view.
    pub hub: crate::observe::Hub,
    /// Also serve the live web page (`--ui`: `/ui` on the listen port, see docs/observe.md).
    pub ui: bool,
}

/// Why serve could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store, TLS files or address (as for a worker).
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The queue log could not be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The plugins or config serve stored could not be loaded.
    #[cfg(feature = "plugins")]
    #[error("failed to load serve's stored plugins and config: {0}")]
    Admin(String),
}

/// Serve bound to its address, its queue recovered, not serving yet.
pub struct BoundServe {
    listener: tokio::net::TcpListener,
    server: tonic::transport::Server,
    addr: SocketAddr,
    tls: bool,
    token: Option<Token>,
    store: Arc<DiskStore>,
    live: Arc<live::LiveLogs>,
    scheduler: Arc<PoolScheduler>,
    static_workers: Vec<(super::client::ClientOptions, u32)>,
    hub: crate::observe::Hub,
    ui: bool,
    #[cfg(feature = "plugins")]
    admin: crate::plugin::admin::AdminServer,
}

impl std::fmt::Debug for BoundServe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServe")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Opens the store and the queue log (queuing again what it held), loads TLS, binds.
pub async fn bind(config: ServeConfig) -> Result<BoundServe, ServeError> {
    let root = config.store.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let store =
            DiskStore::open(&root).map_err(|e| ServeError::Worker(WorkerError::Store(e)))?;
        let journal = Journal::open(&root)?;
        Ok::<_, ServeError>((store, journal))
    })
    .await
    .map_err(|e| {
        WorkerError::Store(StoreError::Io {
            action: "open",
            path: config.store.clone(),
            source: std::io::Error::other(e.to_string()),
        })
    })??;
    let (store, journal) = opened;
    let store = Arc::new(store);
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
    let live = Arc::new(live::LiveLogs::default());
    let scheduler = PoolScheduler::new(
        store.clone(),
        live.clone(),
        config.pool.clone(),
        Some(journal),
    );
    #[cfg(feature = "plugins")]
    let admin = {
        let (root, scheduler) = (config.store.clone(), scheduler.clone());
        tokio::task::spawn_blocking(move || admin_of(&root, scheduler))
            .await
            .map_err(|e| ServeError::Admin(e.to_string()))??
    };
    Ok(BoundServe {
        listener,
        server,
        addr,
        tls: config.tls.is_some(),
        token: config.token,
        store,
        live,
        scheduler,
        static_workers: config.static_workers,
        hub: config.hub,
        ui: config.ui,
        #[cfg(feature = "plugins")]
        admin,
    })
}

/// Serve's admin service: the plugins and config it stored loaded again (and remembered for
/// the workers that join), later pushes handed to the pool.
#[cfg(feature = "plugins")]
fn admin_of(
    store: &std::path::Path,
    scheduler: Arc<PoolScheduler>,
) -> Result<crate::plugin::admin::AdminServer, ServeError> {
    use crate::plugin::admin::{AdminServer, LiveConfig, load_config_file};
    fn err(e: &(dyn std::error::Error + 'static)) -> ServeError {
        ServeError::Admin(crate::error_chain(e))
    }
    let plugins = super::server::stored_plugins(store).map_err(|e| err(&e))?;
    let dir = store.join("plugins");
    for p in plugins.list() {
        let source = crate::plugin::PluginSource::read(&dir.join(&p.name).join("plugin.toml"))
            .map_err(|e| err(&e))?;
        scheduler.remember_plugin(&p.name, &p.digest, &source.manifest_text, source.wasm);
    }
    let config = Arc::new(LiveConfig::new(plugins.clone(), None));
    let config_file = store.join("config.toml");
    if let Some(stored) = load_config_file(&config_file).map_err(|e| err(&e))? {
        let toml = stored.to_toml();
        config.apply(&toml).map_err(|e| err(&e))?;
        scheduler.remember_config(&toml);
    }
    Ok(AdminServer::new(plugins, config, Some(dir)).with_fanout(scheduler, config_file))
}

impl BoundServe {
    /// The endpoint: `grpc://IP:PORT` or `grpcs://IP:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "grpcs" } else { "grpc" };
        format!("{scheme}://{}", self.addr)
    }

    /// The web page's address (`http(s)://IP:PORT/ui`), when it serves one.
    pub fn ui_url(&self) -> Option<String> {
        let scheme = if self.tls { "https" } else { "http" };
        self.ui.then(|| format!("{scheme}://{}/ui", self.addr))
    }

    /// The scheduler (its [`PoolScheduler::load`] feeds an autoscaler).
    pub fn scheduler(&self) -> Arc<PoolScheduler> {
        self.scheduler.clone()
    }

    /// Serves until `shutdown` is cancelled. Queued actions stay in the queue log.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let mut server = self.server;
        let auth = ServerAuth::new(self.token.clone());
        let ticks = tokio::spawn(self.scheduler.clone().run_ticks(shutdown.clone()));
        for (opts, jobs) in self.static_workers.clone() {
            let config = self.scheduler.config();
            tokio::spawn(static_worker::run(
                self.scheduler.clone(),
                self.store.clone(),
                opts,
                jobs,
                config.heartbeat,
                shutdown.clone(),
                config.log.clone(),
            ));
        }
        let load = self.scheduler.clone();
        crate::observe::metrics::Metrics::global().set_load_source(Arc::new(move || {
            let l = load.load();
            crate::observe::metrics::Load {
                queued: l.queued,
                running: l.running,
                workers: Some(l.workers),
            }
        }));
        let runs = crate::observe::actions::ActionRuns::new(
            self.hub.clone(),
            format!("sykli-serve@{}", self.addr),
        );
        let incoming = tonic::transport::server::TcpIncoming::from(self.listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)));
        let router = reapi_router(
            &mut server,
            self.store.clone(),
            self.live.clone(),
            Arc::new(Labels::announced(&[])),
            self.scheduler.clone(),
            auth.clone(),
            runs,
            crate::observe::http::server_router(
                self.token.clone(),
                pool_readiness(self.scheduler.clone(), &shutdown),
                self.ui.then(|| {
                    crate::observe::http::ui::UiState::new(
                        self.hub.clone(),
                        Default::default(),
                        None,
                        shutdown.clone(),
                    )
                }),
            ),
        )
        .add_service(tonic::service::interceptor::InterceptedService::new(
            proto::PoolServer::from_arc(Arc::new(PoolService::new(self.scheduler.clone()))),
            auth.clone(),
        ));
        #[cfg(feature = "plugins")]
        let router = router.add_service(tonic::service::interceptor::InterceptedService::new(
            self.admin, auth,
        ));
        #[cfg(not(feature = "plugins"))]
        drop(auth);
        // Workers' streams stay open: after shutdown, connections get a moment, not more.
        let served =
            router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
        let stopped = async {
            shutdown.cancelled().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let served = tokio::select! {
            r = served => r,
            () = stopped => Ok(()),
        };
        ticks.abort();
        served.map_err(|e| ServeError::Worker(WorkerError::Transport(e)))
    }
}

/// Serve is ready while it is not shutting down and some worker takes work (has free or busy
/// slots and is not draining or lost).
fn pool_readiness(
    scheduler: Arc<PoolScheduler>,
    shutdown: &CancellationToken,
) -> crate::observe::http::Readiness {
    let shutdown = shutdown.clone();
    Arc::new(move || {
        if shutdown.is_cancelled() {
            return Err("shutting down".into());
        }
        if scheduler.load().capacity_slots == 0 {
            return Err("no worker in the pool takes work".into());
        }
        Ok(())
    })
}
