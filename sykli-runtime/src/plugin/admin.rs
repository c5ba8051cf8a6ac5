//! The admin service of a running `sykli worker` or `sykli serve` (`sykli.admin.v1.Admin`,
//! gRPC on the server's own port, behind the same bearer token as its REAPI services): push,
//! list and remove plugins; push and show the hot configuration. Messages are derived with
//! prost (no `protoc`), as `sykli.pool.v1.Pool`'s are.
//!
//! On `sykli serve` a [`Fanout`] (the pool) goes with it: what serve loads or applies goes on
//! to every joined worker, and a call answers once they all answered (naming each worker that
//! refused, and why).
//!
//! | method | request | reply |
//! | --- | --- | --- |
//! | `PushPlugin` | manifest TOML + component bytes | the plugin now loaded (+ the version it replaced) |
//! | `ListPlugins` | - | every loaded plugin |
//! | `RemovePlugin` | name | the plugin removed |
//! | `PushConfig` | config TOML | the config now applied (TOML) |
//! | `ShowConfig` | - | the config now applied (TOML) |

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::*;

use super::config::{ConfigError, ServerConfig};
use super::manifest::{Manifest, PluginSource};
use super::store::{PluginSummary, Plugins};
use crate::remote::client::{ClientOptions, RemoteClient, RemoteError};

/// The service name.
pub const SERVICE_NAME: &str = "sykli.admin.v1.Admin";
const PUSH_PLUGIN: &str = "/sykli.admin.v1.Admin/PushPlugin";
const LIST_PLUGINS: &str = "/sykli.admin.v1.Admin/ListPlugins";
const REMOVE_PLUGIN: &str = "/sykli.admin.v1.Admin/RemovePlugin";
const PUSH_CONFIG: &str = "/sykli.admin.v1.Admin/PushConfig";
const SHOW_CONFIG: &str = "/sykli.admin.v1.Admin/ShowConfig";

/// A plugin to load: its manifest's text and its component.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushPluginRequest {
    /// The manifest (`plugin.toml`) text; its `component` path is ignored.
    #[prost(string, tag = "1")]
    pub manifest: String,
    /// The component's bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub component: Vec<u8>,
}

/// A plugin by name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginName {
    /// The target name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// No arguments.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// One loaded plugin.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginEntry {
    /// Target name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Version.
    #[prost(string, tag = "2")]
    pub version: String,
    /// Description.
    #[prost(string, tag = "3")]
    pub description: String,
    /// BLAKE3 of the component.
    #[prost(string, tag = "4")]
    pub digest: String,
    /// Load time, Unix seconds.
    #[prost(uint64, tag = "5")]
    pub loaded_at: u64,
    /// Tasks run since loaded.
    #[prost(uint64, tag = "6")]
    pub tasks_served: u64,
    /// Whether its compiled code came from the cache.
    #[prost(bool, tag = "7")]
    pub from_cache: bool,
    /// Its grants and limits as JSON.
    #[prost(string, tag = "8")]
    pub grants_json: String,
}

/// Plugins, and for a push the version replaced.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginsReply {
    /// The plugins.
    #[prost(message, repeated, tag = "1")]
    pub plugins: Vec<PluginEntry>,
    /// The version a push replaced.
    #[prost(string, optional, tag = "2")]
    pub replaced: Option<String>,
}

/// A config's TOML.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigText {
    /// The TOML.
    #[prost(string, tag = "1")]
    pub toml: String,
}

impl From<&PluginSummary> for PluginEntry {
    fn from(s: &PluginSummary) -> Self {
        PluginEntry {
            name: s.name.clone(),
            version: s.version.clone(),
            description: s.description.clone(),
            digest: s.digest.clone(),
            loaded_at: s.loaded_at,
            tasks_served: s.tasks_served,
            from_cache: s.from_cache,
            grants_json: serde_json::json!({ "grants": s.grants, "limits": s.limits }).to_string(),
        }
    }
}

impl PluginEntry {
    /// Back to a summary (grants and limits from their JSON; defaults when unreadable).
    pub fn summary(&self) -> PluginSummary {
        let v: serde_json::Value = serde_json::from_str(&self.grants_json).unwrap_or_default();
        PluginSummary {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            digest: self.digest.clone(),
            loaded_at: self.loaded_at,
            tasks_served: self.tasks_served,
            from_cache: self.from_cache,
            grants: serde_json::from_value(v["grants"].clone()).unwrap_or_default(),
            limits: serde_json::from_value(v["limits"].clone()).unwrap_or_default(),
        }
    }
}

/// What applying a config changes beyond plugins: set by the server that hosts the service.
pub trait ConfigTarget: Send + Sync {
    /// Sets how many actions run at once (running ones are never interrupted).
    fn set_concurrency(&self, n: usize);
    /// Replaces the labels offered besides the built-in ones.
    fn set_labels(&self, labels: &std::collections::BTreeMap<String, String>);
}

/// Where a server hands what it loaded or applied on (`sykli serve`: to its pool's workers).
/// Each returns the refusals, one line each naming the worker and why.
#[tonic::async_trait]
pub trait Fanout: Send + Sync {
    /// Plugin `name` (component `digest`) was loaded from `source`.
    async fn plugin(&self, name: &str, digest: &str, source: &PluginSource) -> Vec<String>;
    /// Plugin `name` was removed.
    async fn removed(&self, name: &str) -> Vec<String>;
    /// This (validated) config's TOML was applied.
    async fn config(&self, toml: &str) -> Vec<String>;
}

/// The hot configuration of a server: the last applied config and where it goes.
pub struct LiveConfig {
    current: Mutex<ServerConfig>,
    plugins: Plugins,
    target: Option<Arc<dyn ConfigTarget>>,
}

impl LiveConfig {
    /// Applies to `plugins` and `target`.
    pub fn new(plugins: Plugins, target: Option<Arc<dyn ConfigTarget>>) -> LiveConfig {
        LiveConfig {
            current: Mutex::new(ServerConfig::default()),
            plugins,
            target,
        }
    }

    /// Validates `text` whole, then applies it: concurrency, labels, target settings and
    /// grant overrides each swapped at once; nothing is applied when anything is invalid.
    pub fn apply(&self, text: &str) -> Result<ServerConfig, ConfigError> {
        let config = ServerConfig::parse(text)?;
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = &self.target {
            if let Some(n) = config.concurrency {
                t.set_concurrency(n);
            }
            t.set_labels(&config.labels);
        }
        self.plugins.settings().replace(config.targets.clone());
        self.plugins
            .grant_overrides()
            .replace(config.grants.clone());
        *current = config.clone();
        Ok(config)
    }

    /// The config applied last.
    pub fn current(&self) -> ServerConfig {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The admin service over a server's plugins and config.
#[derive(Clone)]
pub struct AdminServer {
    plugins: Plugins,
    config: Arc<LiveConfig>,
    store_dir: Option<PathBuf>,
    fanout: Option<Arc<dyn Fanout>>,
    config_file: Option<PathBuf>,
}

impl AdminServer {
    /// Serves `plugins` and `config`; pushed plugins are also stored in `store_dir` (see
    /// [`Plugins::store_in`]) so a restart loads them again.
    pub fn new(plugins: Plugins, config: Arc<LiveConfig>, store_dir: Option<PathBuf>) -> Self {
        AdminServer {
            plugins,
            config,
            store_dir,
            fanout: None,
            config_file: None,
        }
    }

    /// Also hands what it loads or applies to `fanout`, and stores each applied config in
    /// `config_file` (see [`load_config_file`]).
    pub fn with_fanout(mut self, fanout: Arc<dyn Fanout>, config_file: PathBuf) -> Self {
        self.fanout = Some(fanout);
        self.config_file = Some(config_file);
        self
    }

    async fn push_config(&self, text: &str) -> Result<ConfigText, tonic::Status> {
        // Validated whole before anything is applied or handed on.
        let applied = self
            .config
            .apply(text)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let toml = applied.to_toml();
        if let Some(path) = &self.config_file {
            std::fs::write(path, &toml).map_err(|e| {
                tonic::Status::internal(format!("storing the config in {}: {e}", path.display()))
            })?;
        }
        if let Some(fanout) = &self.fanout {
            let refusals = fanout.config(&toml).await;
            if !refusals.is_empty() {
                return Err(refused("the config", &refusals));
            }
        }
        Ok(ConfigText { toml })
    }

    async fn push(&self, req: PushPluginRequest) -> Result<PluginsReply, tonic::Status> {
        let manifest = Manifest::parse(&req.manifest, "the pushed manifest")
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let source = PluginSource {
            manifest,
            manifest_text: req.manifest,
            wasm: req.component,
        };
        let plugins = self.plugins.clone();
        let store_dir = self.store_dir.clone();
        // Compiling is CPU work: off the async executor, never on a task's path.
        let loaded = tokio::task::spawn_blocking(move || {
            let loaded = Arc::new(
                plugins
                    .host()
                    .load(&source, None)
                    .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?,
            );
            if let Some(dir) = &store_dir {
                Plugins::store_in(dir, &loaded.name, &source)
                    .map_err(|e| tonic::Status::internal(e.to_string()))?;
            }
            let swapped = plugins.put(loaded);
            Ok::<_, tonic::Status>((
                PluginsReply {
                    plugins: vec![PluginEntry::from(&swapped.plugin)],
                    replaced: swapped.replaced,
                },
                source,
            ))
        })
        .await
        .map_err(|e| tonic::Status::internal(format!("loading the plugin: {e}")))??;
        let (reply, source) = loaded;
        if let Some(fanout) = &self.fanout
            && let Some(p) = reply.plugins.first()
        {
            let refusals = fanout.plugin(&p.name, &p.digest, &source).await;
            if !refusals.is_empty() {
                let what = format!("plugin `{}` {}", p.name, p.version);
                return Err(refused(&what, &refusals));
            }
        }
        Ok(reply)
    }

    async fn remove(&self, name: &str) -> Result<PluginsReply, tonic::Status> {
        let removed = self
            .plugins
            .remove(name)
            .map_err(|e| tonic::Status::not_found(e.to_string()))?;
        if let Some(dir) = &self.store_dir {
            Plugins::unstore(dir, name).map_err(|e| tonic::Status::internal(e.to_string()))?;
        }
        if let Some(fanout) = &self.fanout {
            let refusals = fanout.removed(name).await;
            if !refusals.is_empty() {
                return Err(refused(&format!("removing plugin `{name}`"), &refusals));
            }
        }
        Ok(PluginsReply {
            plugins: vec![PluginEntry::from(&removed)],
            replaced: None,
        })
    }
}

/// `what` was done on this server but refused by the workers of `refusals`.
fn refused(what: &str, refusals: &[String]) -> tonic::Status {
    tonic::Status::failed_precondition(format!(
        "{what} was applied on serve, but {} worker(s) refused it: {}",
        refusals.len(),
        refusals.join("; ")
    ))
}

/// The config stored in `path` by an earlier push, validated; `None` when there is none.
pub fn load_config_file(path: &std::path::Path) -> Result<Option<ServerConfig>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => ServerConfig::parse(&text).map(Some).map_err(|mut e| {
            for p in &mut e.problems {
                *p = format!("{}: {p}", path.display());
            }
            e
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError {
            problems: vec![format!("reading {}: {e}", path.display())],
        }),
    }
}

impl tonic::server::NamedService for AdminServer {
    const NAME: &'static str = SERVICE_NAME;
}

struct Unary<F>(F);

impl<Req, Resp, F, Fut> tonic::server::UnaryService<Req> for Unary<F>
where
    F: Fn(Req) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Resp, tonic::Status>> + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    type Response = Resp;
    type Future = BoxFuture<tonic::Response<Resp>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        let f = self.0.clone();
        Box::pin(async move { f(request.into_inner()).await.map(tonic::Response::new) })
    }
}

async fn unary<Req, Resp, B, F, Fut>(
    req: http::Request<B>,
    f: F,
) -> http::Response<tonic::body::Body>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
    F: Fn(Req) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Resp, tonic::Status>> + Send + 'static,
{
    let codec = tonic_prost::ProstCodec::<Resp, Req>::default();
    let mut grpc = tonic::server::Grpc::new(codec).max_decoding_message_size(256 << 20);
    grpc.unary(Unary(f), req).await
}

impl<B> Service<http::Request<B>> for AdminServer
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
        let this = self.clone();
        match req.uri().path() {
            PUSH_PLUGIN => Box::pin(async move {
                Ok(unary(req, move |r: PushPluginRequest| {
                    let this = this.clone();
                    async move { this.push(r).await }
                })
                .await)
            }),
            LIST_PLUGINS => Box::pin(async move {
                Ok(unary(req, move |_: Empty| {
                    let this = this.clone();
                    async move {
                        Ok(PluginsReply {
                            plugins: this.plugins.list().iter().map(PluginEntry::from).collect(),
                            replaced: None,
                        })
                    }
                })
                .await)
            }),
            REMOVE_PLUGIN => Box::pin(async move {
                Ok(unary(req, move |r: PluginName| {
                    let this = this.clone();
                    async move { this.remove(&r.name).await }
                })
                .await)
            }),
            PUSH_CONFIG => Box::pin(async move {
                Ok(unary(req, move |r: ConfigText| {
                    let this = this.clone();
                    async move { this.push_config(&r.toml).await }
                })
                .await)
            }),
            SHOW_CONFIG => Box::pin(async move {
                Ok(unary(req, move |_: Empty| {
                    let this = this.clone();
                    async move {
                        Ok(ConfigText {
                            toml: this.config.current().to_toml(),
                        })
                    }
                })
                .await)
            }),
            _ => Box::pin(async { Ok(crate::remote::unimplemented_method()) }),
        }
    }
}

/// A client of the admin service of the server at `opts`.
pub struct AdminClient {
    client: RemoteClient,
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl AdminClient {
    /// Connects (with the token of `opts`).
    pub async fn connect(opts: &ClientOptions) -> Result<AdminClient, RemoteError> {
        Ok(AdminClient::over(RemoteClient::connect(opts).await?))
    }

    /// Over an already connected client (its channel and token).
    pub fn over(client: RemoteClient) -> AdminClient {
        let grpc = tonic::client::Grpc::new(client.channel()).max_encoding_message_size(256 << 20);
        AdminClient { client, grpc }
    }

    async fn call<Req, Resp>(
        &mut self,
        path: &'static str,
        call: &'static str,
        req: Req,
    ) -> Result<Resp, RemoteError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let endpoint = self.client.endpoint().to_string();
        let rpc = |s: tonic::Status| RemoteError::Rpc {
            endpoint: endpoint.clone(),
            call,
            code: s.code(),
            message: s.message().to_owned(),
        };
        self.grpc
            .ready()
            .await
            .map_err(|e| rpc(tonic::Status::unavailable(format!("not ready: {e}"))))?;
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        self.grpc
            .unary(
                self.client.request(req),
                PathAndQuery::from_static(path),
                codec,
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(rpc)
    }

    /// Loads (or hot-swaps) a plugin on the server.
    pub async fn push_plugin(
        &mut self,
        source: &PluginSource,
    ) -> Result<PluginsReply, RemoteError> {
        let req = PushPluginRequest {
            manifest: source.manifest_text.clone(),
            component: source.wasm.clone(),
        };
        self.call(PUSH_PLUGIN, "Admin/PushPlugin", req).await
    }

    /// The server's plugins.
    pub async fn list_plugins(&mut self) -> Result<PluginsReply, RemoteError> {
        self.call(LIST_PLUGINS, "Admin/ListPlugins", Empty {}).await
    }

    /// Unloads a plugin on the server.
    pub async fn remove_plugin(&mut self, name: &str) -> Result<PluginsReply, RemoteError> {
        let req = PluginName {
            name: name.to_owned(),
        };
        self.call(REMOVE_PLUGIN, "Admin/RemovePlugin", req).await
    }

    /// Applies a config on the server; the config now applied, as TOML.
    pub async fn push_config(&mut self, toml: &str) -> Result<String, RemoteError> {
        let req = ConfigText {
            toml: toml.to_owned(),
        };
        let r: ConfigText = self.call(PUSH_CONFIG, "Admin/PushConfig", req).await?;
        Ok(r.toml)
    }

    /// The config the server applies now, as TOML.
    pub async fn show_config(&mut self) -> Result<String, RemoteError> {
        let r: ConfigText = self.call(SHOW_CONFIG, "Admin/ShowConfig", Empty {}).await?;
        Ok(r.toml)
    }
}
