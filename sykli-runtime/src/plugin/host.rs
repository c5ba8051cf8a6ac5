//! The wasmtime host: one shared [`Engine`] (pooling allocator, epoch interruption driven by a
//! ticker thread), the compiled-component cache, loading a plugin, and running one task in a
//! fresh `Store` with its limits and grants.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::PluginError;
use super::bindings::sykli::target::{host, types};
use super::bindings::{Target, TargetPre};
use super::grants::{HostError, ResolvedGrants};
use super::manifest::{DEFAULT_DEADLINE_MS, MAX_MEMORY_MIB, Manifest, PluginSource, check_name};
use super::output::SinkStdout;
use crate::exec::{ExecOutcome, OutputSink, OutputStream};

/// The contract version this host implements.
pub const CONTRACT: &str = "sykli:target@0.1.0";
/// How often the epoch ticker advances the engine's epoch (the granularity of deadlines and
/// cancellation of running wasm code).
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// The largest HTTP response body a plugin may receive.
const MAX_HTTP_BODY: usize = 64 << 20;
/// Instances the pooling allocator keeps slots for (tasks running plugin code at once).
const POOL_INSTANCES: u32 = 256;
/// Bytes of each linear memory (and table) reset with `memset` instead of `madvise` when an
/// instance ends: a task's store is short-lived, so releasing and faulting those pages back in
/// on every task cost more than the instance itself (bench/plugin: 10.7 us per instantiation
/// without, about 5 us with).
const MEMORY_KEEP_RESIDENT: usize = 128 << 10;
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// The client of plugins' granted `http`: plain http and https, trusting the system's root
/// certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` override them, as for other tools).
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The process-wide [`HttpClient`] and how many root certificates it trusts, built on the
/// first `http` call (reading the system's roots costs milliseconds no other task should pay).
fn http_client() -> Result<(HttpClient, usize), String> {
    static CLIENT: OnceLock<Result<(HttpClient, usize), String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (trusted, _unusable) = roots.add_parsable_certificates(found.certs);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("setting up TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .build();
            Ok((Client::builder(TokioExecutor::new()).build(https), trusted))
        })
        .clone()
}

/// The process-wide engine, created once with its epoch ticker.
fn shared_engine() -> Result<Engine, PluginError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(POOL_INSTANCES)
                .total_core_instances(POOL_INSTANCES * 8)
                .total_memories(POOL_INSTANCES * 2)
                .total_tables(POOL_INSTANCES * 4)
                .max_memory_size((MAX_MEMORY_MIB << 20) as usize)
                .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
                .table_keep_resident(TABLE_KEEP_RESIDENT);
            let mut config = Config::new();
            config
                .wasm_component_model(true)
                .epoch_interruption(true)
                .memory_reservation(MAX_MEMORY_MIB << 20)
                .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
            let weak = engine.weak();
            std::thread::Builder::new()
                .name("sykli-plugin-epoch".into())
                .spawn(move || {
                    // Ends when the engine is dropped (never, for the shared one).
                    while let Some(engine) = weak.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(EPOCH_TICK);
                    }
                })
                .map_err(|e| format!("starting the epoch ticker: {e}"))?;
            Ok(engine)
        })
        .clone()
        .map_err(PluginError::Engine)
}

/// Loads and runs plugins: the shared engine, the linker with the host functions and WASI,
/// and the compiled-component cache.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<State>,
    cache_dir: Option<PathBuf>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// A host caching compiled components in `cache_dir` (created if missing); `None`:
    /// compile every load.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Arc<PluginHost>, PluginError> {
        let engine = shared_engine()?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PluginError::Engine(format!("linking WASI: {e:#}")))?;
        Target::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(format!("linking the host interface: {e:#}")))?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| PluginError::Io {
                what: format!("creating the plugin cache {}", dir.display()),
                source: e,
            })?;
        }
        Ok(Arc::new(PluginHost {
            engine,
            linker,
            cache_dir,
        }))
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or takes from the cache) `source`'s component, checks it implements
    /// [`CONTRACT`], asks it who it is, and returns it ready to run tasks. Relative granted
    /// directories resolve against `base_dir` (`None`: each task's working directory).
    pub fn load(
        &self,
        source: &PluginSource,
        base_dir: Option<PathBuf>,
    ) -> Result<LoadedPlugin, PluginError> {
        let label = source
            .manifest
            .name
            .clone()
            .unwrap_or_else(|| source.manifest.component.display().to_string());
        let digest = blake3::hash(&source.wasm).to_hex().to_string();
        let (component, cached) = self.compile(&label, &digest, &source.wasm)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Contract {
                plugin: label.clone(),
                message: format!("{e:#}"),
            })?;
        let pre = TargetPre::new(pre).map_err(|e| PluginError::Contract {
            plugin: label.clone(),
            message: format!("{e:#}"),
        })?;
        let info = self.describe(&pre, &label)?;
        let name = source.manifest.name.clone().unwrap_or(info.name.clone());
        check_name(&name).map_err(|message| PluginError::Invalid {
            plugin: label.clone(),
            message: format!("its target name: {message}"),
        })?;
        Ok(LoadedPlugin {
            name,
            info,
            digest,
            manifest: source.manifest.clone(),
            manifest_text: source.manifest_text.clone(),
            base_dir,
            loaded_at: SystemTime::now(),
            from_cache: cached,
            pre,
            served: AtomicU64::new(0),
        })
    }

    /// The component of `wasm`, from the cache when a compiled copy is there (and whether it
    /// was).
    fn compile(
        &self,
        label: &str,
        digest: &str,
        wasm: &[u8],
    ) -> Result<(Component, bool), PluginError> {
        let compile_err = |e: wasmtime::Error| PluginError::Compile {
            plugin: label.to_owned(),
            message: format!("{e:#}"),
        };
        let Some(dir) = &self.cache_dir else {
            return Ok((
                Component::new(&self.engine, wasm).map_err(compile_err)?,
                false,
            ));
        };
        let path = dir.join(format!("{digest}-{}.cwasm", self.compat_tag()));
        if path.is_file() {
            // SAFETY: the file is one this host wrote with `precompile_component` into its
            // own cache directory, named by the source's digest and the engine's
            // compatibility hash; wasmtime still checks its header and rejects a mismatch.
            if let Ok(c) = unsafe { Component::deserialize_file(&self.engine, &path) } {
                return Ok((c, true));
            }
        }
        let compiled = self
            .engine
            .precompile_component(wasm)
            .map_err(compile_err)?;
        let tmp = dir.join(format!(".{digest}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &compiled)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| PluginError::Io {
                what: format!("writing the compiled plugin {}", path.display()),
                source: e,
            })?;
        // SAFETY: the bytes were just produced by `precompile_component` of this engine.
        let c = unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(compile_err)?;
        Ok((c, false))
    }

    fn compat_tag(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{:016x}", h.finish())
    }

    fn describe(&self, pre: &TargetPre<State>, label: &str) -> Result<PluginInfo, PluginError> {
        let call = Call::describe(label);
        let mut store = self.store(&call, ResolvedGrants::default(), 16)?;
        let fail = |e: wasmtime::Error| PluginError::Invalid {
            plugin: label.to_owned(),
            message: format!("describe() failed: {e:#}"),
        };
        let target = pre.instantiate(&mut store).map_err(fail)?;
        let info = target.call_describe(&mut store).map_err(fail)?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
        })
    }

    fn store(
        &self,
        call: &Call,
        grants: ResolvedGrants,
        memory_mib: u64,
    ) -> Result<Store<State>, PluginError> {
        let mut wasi = WasiCtx::builder();
        wasi.stdout(SinkStdout::new(call.sink.clone(), OutputStream::Stdout))
            .stderr(SinkStdout::new(call.sink.clone(), OutputStream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let state = State {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: Limiter {
                inner: StoreLimitsBuilder::new()
                    .memory_size((memory_mib << 20) as usize)
                    .trap_on_grow_failure(true)
                    .build(),
                hit: false,
            },
            grants,
            workdir: call.workdir.clone(),
            sink: call.sink.clone(),
            cancel: call.cancel.clone(),
            deadline: call.deadline,
            rt: call.rt.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            let s = ctx.data();
            if s.cancel.is_cancelled() || Instant::now() >= s.deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        Ok(store)
    }

    /// Instantiates `plugin` in a fresh store (what every task does first); for benchmarks.
    pub fn instantiate_only(&self, plugin: &LoadedPlugin) -> Result<(), PluginError> {
        let call = Call::describe(&plugin.name);
        let mut store = self.store(
            &call,
            ResolvedGrants::default(),
            plugin.manifest.limits.memory_mib,
        )?;
        plugin
            .pre
            .instantiate(&mut store)
            .map(drop)
            .map_err(|e| PluginError::Invalid {
                plugin: plugin.label(),
                message: format!("instantiating: {e:#}"),
            })
    }

    /// Runs one attempt of a task through `plugin`, blocking (call it off the async
    /// executor, e.g. in `spawn_blocking`). Never panics on the plugin's account: a trap,
    /// the deadline, the memory cap or a refusal becomes [`ExecOutcome::Errored`].
    pub fn run(&self, plugin: &LoadedPlugin, task: TaskCall) -> ExecOutcome {
        plugin.served.fetch_add(1, Ordering::Relaxed);
        let label = plugin.label();
        let stage = format!("running the task through {label}");
        let limits = &plugin.manifest.limits;
        let task_deadline = task.timeout;
        let manifest_deadline = limits.deadline_ms.map(Duration::from_millis);
        let (budget, is_timeout) = match (manifest_deadline, task_deadline) {
            (Some(m), Some(t)) if t <= m => (t, true),
            (Some(m), _) => (m, false),
            (None, Some(t)) => (t, true),
            (None, None) => (Duration::from_millis(DEFAULT_DEADLINE_MS), false),
        };
        let call = Call {
            workdir: task.workdir.clone(),
            sink: task.sink.clone(),
            cancel: task.cancel.clone(),
            deadline: Instant::now() + budget,
            rt: task.rt.clone(),
        };
        let base = plugin.base_dir.as_deref().unwrap_or(&task.workdir);
        let grants = ResolvedGrants::resolve(
            task.grants.as_ref().unwrap_or(&plugin.manifest.grants),
            base,
        );
        let mut store = match self.store(&call, grants, limits.memory_mib) {
            Ok(s) => s,
            Err(e) => return ExecOutcome::errored(stage, format!("{label}: {e}")),
        };
        let wit_task = types::Task {
            name: task.name,
            attempt: task.attempt,
            command: task.command,
            env: pairs(task.env),
            workdir: task.workdir.display().to_string(),
            image: task.image,
            timeout_ms: task.timeout.map(|t| t.as_millis() as u64),
            settings: pairs(task.settings),
        };
        let result = plugin
            .pre
            .instantiate(&mut store)
            .and_then(|t| t.call_run(&mut store, &wit_task));
        match result {
            Ok(Ok(outcome)) => ExecOutcome::Exited {
                code: outcome.exit_code,
            },
            Ok(Err(e)) => ExecOutcome::errored(stage, format!("{label}: {}", describe_error(&e))),
            Err(trap) => {
                let s = store.data();
                if s.cancel.is_cancelled() {
                    ExecOutcome::Cancelled
                } else if Instant::now() >= s.deadline && is_timeout {
                    ExecOutcome::TimedOut
                } else if Instant::now() >= s.deadline {
                    ExecOutcome::errored(
                        stage,
                        format!(
                            "{label}: exceeded its deadline of {} ms (limits.deadline_ms) and was stopped",
                            budget.as_millis()
                        ),
                    )
                } else if s.limits.hit {
                    ExecOutcome::errored(
                        stage,
                        format!(
                            "{label}: exceeded its memory cap of {} MiB (limits.memory_mib)",
                            limits.memory_mib
                        ),
                    )
                } else {
                    ExecOutcome::errored(stage, format!("{label}: trapped: {trap:#}"))
                }
            }
        }
    }
}

/// `e` and its sources, `: `-separated (hyper's own message alone says only "client error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    for _ in 0..16 {
        let Some(s) = source else { break };
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

fn pairs(v: Vec<(String, String)>) -> Vec<types::Pair> {
    v.into_iter()
        .map(|(name, value)| types::Pair { name, value })
        .collect()
}

fn describe_error(e: &types::Error) -> String {
    match e {
        types::Error::Denied(m) => format!("denied: {m}"),
        types::Error::NotFound(m) => format!("not found: {m}"),
        types::Error::Invalid(m) => format!("invalid: {m}"),
        types::Error::Failed(m) => format!("failed: {m}"),
    }
}

/// What a plugin says about itself (`describe()`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginInfo {
    /// Its own name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line about it.
    pub description: String,
}

/// A compiled, checked plugin ready to run tasks; shared by every task that runs on it.
pub struct LoadedPlugin {
    /// The target name tasks select it by.
    pub name: String,
    /// What it said about itself.
    pub info: PluginInfo,
    /// BLAKE3 of the component's bytes.
    pub digest: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// The manifest's text as loaded.
    pub manifest_text: String,
    /// What relative granted directories resolve against (`None`: each task's workdir).
    pub base_dir: Option<PathBuf>,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// Whether its compiled code came from the cache.
    pub from_cache: bool,
    pre: TargetPre<State>,
    served: AtomicU64,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("info", &self.info)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// `plugin `NAME` VERSION`, how messages name it.
    pub fn label(&self) -> String {
        format!("plugin `{}` {}", self.name, self.info.version)
    }

    /// Tasks it has run (or started) since it was loaded.
    pub fn tasks_served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

/// One attempt of a task as the host hands it to a plugin.
pub struct TaskCall {
    /// The task's name.
    pub name: String,
    /// The attempt, from 1.
    pub attempt: u32,
    /// Its shell command.
    pub command: String,
    /// Its environment.
    pub env: Vec<(String, String)>,
    /// Its absolute working directory.
    pub workdir: PathBuf,
    /// The image it asked for.
    pub image: Option<String>,
    /// Its timeout.
    pub timeout: Option<Duration>,
    /// The target's settings.
    pub settings: Vec<(String, String)>,
    /// Grants replacing the manifest's (from the server's config), if any.
    pub grants: Option<super::manifest::Grants>,
    /// Where its log goes.
    pub sink: Arc<dyn OutputSink>,
    /// Cancelled when the run is.
    pub cancel: CancellationToken,
    /// The runtime host calls do their I/O on.
    pub rt: tokio::runtime::Handle,
}

struct Call {
    workdir: PathBuf,
    sink: Arc<dyn OutputSink>,
    cancel: CancellationToken,
    deadline: Instant,
    rt: tokio::runtime::Handle,
}

impl Call {
    fn describe(_label: &str) -> Call {
        struct Discard;
        impl OutputSink for Discard {
            fn write(&self, _: OutputStream, _: &[u8]) {}
        }
        Call {
            workdir: PathBuf::from("/"),
            sink: Arc::new(Discard),
            cancel: CancellationToken::new(),
            deadline: Instant::now() + Duration::from_secs(10),
            rt: tokio::runtime::Handle::try_current().unwrap_or_else(|_| fallback_runtime()),
        }
    }
}

/// A small runtime for host calls made outside any tokio runtime (loading from sync code).
fn fallback_runtime() -> tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("building a one-thread tokio runtime")
    })
    .handle()
    .clone()
}

/// StoreLimits that remember whether the memory cap was hit.
struct Limiter {
    inner: StoreLimits,
    hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let r = self.inner.memory_growing(current, desired, maximum);
        if !matches!(r, Ok(true)) {
            self.hit = true;
        }
        r
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
}

/// The data of one task's store: an empty WASI context, the grants, and the task's I/O.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limiter,
    grants: ResolvedGrants,
    workdir: PathBuf,
    sink: Arc<dyn OutputSink>,
    cancel: CancellationToken,
    deadline: Instant,
    rt: tokio::runtime::Handle,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl From<HostError> for types::Error {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Denied(m) => types::Error::Denied(m),
            HostError::NotFound(m) => types::Error::NotFound(m),
            HostError::Invalid(m) => types::Error::Invalid(m),
            HostError::Failed(m) => types::Error::Failed(m),
        }
    }
}

impl types::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: host::Level, message: String) {
        let (stream, prefix) = match level {
            host::Level::Debug => (OutputStream::Stdout, "debug: "),
            host::Level::Info => (OutputStream::Stdout, ""),
            host::Level::Warn => (OutputStream::Stderr, "warning: "),
            host::Level::Error => (OutputStream::Stderr, "error: "),
        };
        let mut line = format!("{prefix}{message}");
        if !line.ends_with('\n') {
            line.push('\n');
        }
        self.sink.write(stream, line.as_bytes());
    }

    fn spawn(&mut self, cmd: host::Command) -> Result<i32, types::Error> {
        let path_var = cmd
            .env
            .iter()
            .find(|p| p.name == "PATH")
            .map(|p| p.value.clone());
        let program = self.grants.program(&cmd.program, path_var.as_deref())?;
        let cwd = match &cmd.cwd {
            None => self.workdir.clone(),
            Some(c) => {
                let real = std::fs::canonicalize(self.workdir.join(c)).map_err(|e| {
                    HostError::NotFound(format!("spawn of `{}`: cwd {c}: {e}", cmd.program))
                })?;
                if !self.grants.dir_allowed(&real) {
                    return Err(HostError::Denied(format!(
                        "spawn of `{}`: cwd {c}: not inside a granted directory",
                        cmd.program
                    ))
                    .into());
                }
                real
            }
        };
        let run = super::spawn::Spawn {
            program,
            args: cmd.args,
            env: cmd.env.into_iter().map(|p| (p.name, p.value)).collect(),
            cwd,
            sink: self.sink.clone(),
            cancel: self.cancel.clone(),
            deadline: self.deadline,
        };
        let shown = cmd.program;
        self.rt
            .block_on(run.run())
            .map_err(|e| types::Error::Failed(format!("spawn of `{shown}`: {e}")))
    }

    fn read_file(&mut self, path: String) -> Result<Vec<u8>, types::Error> {
        let real = self.grants.readable(&path, &self.workdir)?;
        std::fs::read(&real).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => types::Error::NotFound(format!("read of {path}: {e}")),
            _ => types::Error::Failed(format!("read of {path}: {e}")),
        })
    }

    fn write_file(&mut self, path: String, contents: Vec<u8>) -> Result<(), types::Error> {
        let real = self.grants.writable(&path, &self.workdir)?;
        std::fs::write(&real, contents)
            .map_err(|e| types::Error::Failed(format!("write of {path}: {e}")))
    }

    fn http(&mut self, request: host::HttpRequest) -> Result<host::HttpResponse, types::Error> {
        let (host, port) = self.grants.http_target(&request.url)?;
        let mut req = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for h in &request.headers {
            req = req.header(h.name.as_str(), h.value.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| types::Error::Invalid(format!("http {}: {e}", request.url)))?;
        let (client, roots) =
            http_client().map_err(|e| types::Error::Failed(format!("http: {e}")))?;
        let https = request.url.starts_with("https:");
        let cancel = self.cancel.clone();
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let url = request.url.clone();
        self.rt.block_on(async move {
            let exchange = async {
                let resp = client.request(req).await.map_err(|e| {
                    let hint = if https && roots == 0 {
                        " (no trusted root certificates were found on this machine: install \
                         ca-certificates or set SSL_CERT_FILE)"
                    } else {
                        ""
                    };
                    types::Error::NotFound(format!("http to {host}:{port}: {}{hint}", error_chain(&e)))
                })?;
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| types::Pair {
                        name: k.to_string(),
                        value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    })
                    .collect();
                let body = Limited::new(resp.into_body(), MAX_HTTP_BODY)
                    .collect()
                    .await
                    .map_err(|e| types::Error::Failed(format!("http {url}: reading the body: {e}")))?
                    .to_bytes()
                    .to_vec();
                Ok(host::HttpResponse {
                    status,
                    headers,
                    body,
                })
            };
            tokio::select! {
                r = exchange => r,
                () = cancel.cancelled() => Err(types::Error::Failed("http: the task was cancelled".into())),
                () = tokio::time::sleep_until(deadline) => Err(types::Error::Failed("http: the call's deadline passed".into())),
            }
        })
    }
}
