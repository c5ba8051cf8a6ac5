//! The REAPI client: one connection to a remote cache or executor (a `sykli worker`,
//! BuildGrid, Buildbarn, BuildBuddy, NativeLink), with the digest function negotiated from
//! its capabilities.
//!
//! - [`RemoteClient::connect`]: TLS or plaintext, the bearer token, GetCapabilities, and the
//!   digest function (BLAKE3 when advertised, else SHA-256, never one that is not).
//! - [`cas`]: FindMissingBlobs, BatchUpdateBlobs under the server's limit, ByteStream above.
//! - [`execute`]: Execute with WaitExecution after a broken stream, backoff and a queue
//!   timeout.
//! - [`results`]: restoring an `ActionResult` into the workspace and publishing one.
//! - [`RemoteCache`]: a remote action cache stacked behind the local cache.
//! - [`RemoteExecutor`]: the executor that ships tasks placed `remote`.

mod cache_layer;
pub mod cas;
pub mod execute;
mod executor;
pub mod results;
mod retry;
mod setup;

pub use cache_layer::RemoteCache;
pub use cas::{Blob, BlobData, Transferred};
pub use executor::{RemoteExecutor, RemoteExecutorOptions};
pub use setup::{REMOTE_KINDS, RemoteExecution, RemoteSetup};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
/// gRPC status codes (re-exported so callers need no tonic dependency).
pub use tonic::Code;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use super::endpoint::Endpoint;
use crate::cache::DigestFunction;

/// gRPC's default message limit, which batches must stay under.
pub const GRPC_MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

use crate::remote::{LABELS_METADATA, WORKER_METADATA};

/// How to reach a remote server.
#[derive(Clone)]
pub struct ClientOptions {
    /// `grpc://` or `grpcs://` endpoint.
    pub endpoint: Endpoint,
    /// REAPI instance name (empty by default).
    pub instance: String,
    /// An extra root certificate (PEM) besides the system roots.
    pub tls_ca: Option<PathBuf>,
    /// The bearer token sent as `authorization: Bearer TOKEN` on every call.
    pub token: Option<super::auth::Token>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("endpoint", &self.endpoint.to_string())
            .field("instance", &self.instance)
            .field("tls_ca", &self.tls_ca)
            .field("token", &self.token)
            .finish()
    }
}

impl ClientOptions {
    /// Options for `endpoint` with no instance, TLS CA or token.
    pub fn new(endpoint: Endpoint) -> ClientOptions {
        ClientOptions {
            endpoint,
            instance: String::new(),
            tls_ca: None,
            token: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// An error talking to a remote server.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A token would travel unencrypted to another machine.
    #[error(
        "refusing to send the token in plaintext to {endpoint}: use grpcs:// (TLS), or a \
         loopback address for grpc://"
    )]
    PlaintextToken {
        /// The endpoint.
        endpoint: String,
    },
    /// The TLS CA file could not be used.
    #[error("failed to read the TLS CA file {}: {message}", path.display())]
    TlsCa {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// No connection could be made.
    #[error("failed to connect to {endpoint}: {message}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// A call failed.
    #[error("{endpoint}: {call} failed: {}{}", status_text(*code, message), hint(*code))]
    Rpc {
        /// The endpoint.
        endpoint: String,
        /// The RPC.
        call: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The server's message.
        message: String,
    },
    /// The server supports no digest function sykli uses.
    #[error(
        "{endpoint} advertises no digest function sykli uses (BLAKE3 or SHA-256); it \
         advertises: {advertised}"
    )]
    NoDigestFunction {
        /// The endpoint.
        endpoint: String,
        /// What it listed.
        advertised: String,
    },
    /// The server does not execute actions.
    #[error("{endpoint} does not execute actions (it is a cache only): use it with --remote-cache")]
    NoExecution {
        /// The endpoint.
        endpoint: String,
    },
    /// The server answered something malformed.
    #[error("{endpoint}: {message}")]
    Protocol {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        message: String,
    },
    /// A local file could not be read or written.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No worker started the action in time.
    #[error(
        "{endpoint}: no worker started the action within {} (queue timeout; raise it with \
         --remote-queue-timeout, or check that a worker matches the platform {platform})",
        humantime::format_duration(*after)
    )]
    QueueTimeout {
        /// The endpoint.
        endpoint: String,
        /// The timeout.
        after: Duration,
        /// The action's platform properties.
        platform: String,
    },
}

fn status_text(code: tonic::Code, message: &str) -> String {
    let name = format!("{code:?}");
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_uppercase());
    }
    if message.is_empty() {
        snake
    } else {
        format!("{snake}: {message}")
    }
}

fn hint(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Unauthenticated => {
            " (the server wants a token: set SYKLI_TOKEN or pass --token-file FILE)"
        }
        tonic::Code::PermissionDenied => " (the token is not allowed to do this)",
        _ => "",
    }
}

impl RemoteError {
    /// The gRPC code of a failed call, if this is one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            RemoteError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What a server said about itself.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Digest functions it advertises (REAPI numbers).
    pub digest_functions: Vec<i32>,
    /// Whether it executes actions.
    pub exec_enabled: bool,
    /// Whether clients may write its action cache.
    pub cache_update: bool,
    /// Its `max_batch_total_size_bytes` (0: no limit of its own).
    pub max_batch: i64,
    /// Whether it is a `sykli worker` (response metadata `x-sykli-worker: 1`).
    pub sykli_worker: bool,
    /// A sykli worker's labels, `K=V` (response metadata `x-sykli-worker-labels`).
    pub worker_labels: Vec<String>,
}

impl ServerInfo {
    /// Whether it advertises `f`.
    pub fn supports(&self, f: DigestFunction) -> bool {
        self.digest_functions.contains(&f.reapi_value())
    }

    /// The placement labels of an executor on this server: `K` for each worker label
    /// `K=true` (a task's `requires: [K]` becomes the platform property `K=true`), and
    /// `container` when it runs containers.
    pub fn placement_labels(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .worker_labels
            .iter()
            .filter_map(|l| l.split_once('='))
            .filter_map(|(k, v)| match (k, v) {
                ("container-image", _) => Some("container".to_owned()),
                (k, "true") => Some(k.to_owned()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether actions with a `container-image` may be sent: a sykli worker says so in its
    /// labels; other servers are assumed to (they refuse what they cannot run).
    pub fn runs_containers(&self) -> bool {
        !self.sykli_worker
            || self
                .worker_labels
                .iter()
                .any(|l| l.starts_with("container-image="))
    }

    /// BLAKE3 when advertised, else SHA-256 when advertised.
    pub fn preferred_function(&self) -> Option<DigestFunction> {
        [DigestFunction::Blake3, DigestFunction::Sha256]
            .into_iter()
            .find(|f| self.supports(*f))
    }
}

/// A connection to one REAPI server, with its negotiated digest function. Cheap to clone.
#[derive(Clone)]
pub struct RemoteClient {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    instance: String,
    channel: Channel,
    auth: Option<AsciiMetadataValue>,
    function: DigestFunction,
    info: ServerInfo,
    batch_limit: usize,
    /// Blobs and bytes uploaded through this connection (shared by its clones).
    uploaded: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("endpoint", &self.inner.endpoint.to_string())
            .field("instance", &self.inner.instance)
            .field("function", &self.inner.function)
            .finish_non_exhaustive()
    }
}

/// Messages up to this size are accepted from servers (batch reads, trees).
const MAX_DECODE: usize = 64 * 1024 * 1024;

/// A channel to `opts.endpoint` (TLS, timeouts, keep-alive as every sykli client sets them)
/// and the `authorization` value its calls carry. A token toward a non-loopback `grpc://`
/// endpoint is refused before connecting. Used by [`RemoteClient::connect`] and by clients
/// of sykli's own services (observe).
pub async fn open_channel(
    opts: &ClientOptions,
) -> Result<(tonic::transport::Channel, Option<AsciiMetadataValue>), RemoteError> {
    let endpoint = &opts.endpoint;
    let ep_text = endpoint.to_string();
    if opts.token.is_some() && !endpoint.tls && !endpoint.is_loopback() {
        return Err(RemoteError::PlaintextToken { endpoint: ep_text });
    }
    let auth = match &opts.token {
        Some(t) => Some(
            MetadataValue::try_from(format!("Bearer {}", t.expose())).map_err(|_| {
                RemoteError::Connect {
                    endpoint: ep_text.clone(),
                    message: "the token holds characters a gRPC header cannot carry".into(),
                }
            })?,
        ),
        None => None,
    };
    let connect_err = |message: String| RemoteError::Connect {
        endpoint: ep_text.clone(),
        message,
    };
    let mut ep = tonic::transport::Endpoint::from_shared(endpoint.uri())
        .map_err(|e| connect_err(crate::error_chain(&e)))?
        .connect_timeout(opts.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if endpoint.tls {
        let mut tls = ClientTlsConfig::new()
            .with_native_roots()
            .domain_name(endpoint.host.clone());
        if let Some(ca) = &opts.tls_ca {
            let pem = std::fs::read(ca).map_err(|e| RemoteError::TlsCa {
                path: ca.clone(),
                message: e.to_string(),
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(RemoteError::TlsCa {
                    path: ca.clone(),
                    message: "it holds no PEM certificate".into(),
                });
            }
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        ep = ep
            .tls_config(tls)
            .map_err(|e| connect_err(crate::error_chain(&e)))?;
    }
    let channel = ep
        .connect()
        .await
        .map_err(|e| connect_err(crate::error_chain(&e)))?;
    Ok((channel, auth))
}

impl RemoteClient {
    /// Connects, asks for the server's capabilities and negotiates the digest function
    /// (BLAKE3 when advertised, else SHA-256). A token toward a non-loopback `grpc://`
    /// endpoint is refused before connecting.
    pub async fn connect(opts: &ClientOptions) -> Result<RemoteClient, RemoteError> {
        let endpoint = &opts.endpoint;
        let ep_text = endpoint.to_string();
        let (channel, auth) = open_channel(opts).await?;
        let mut client = RemoteClient {
            inner: Arc::new(Inner {
                endpoint: endpoint.clone(),
                instance: opts.instance.clone(),
                channel,
                auth,
                function: DigestFunction::Blake3,
                info: ServerInfo {
                    digest_functions: Vec::new(),
                    exec_enabled: false,
                    cache_update: false,
                    max_batch: 0,
                    sykli_worker: false,
                    worker_labels: Vec::new(),
                },
                batch_limit: GRPC_MESSAGE_LIMIT,
                uploaded: Arc::default(),
            }),
        };
        let info = client.capabilities().await?;
        let function = info
            .preferred_function()
            .ok_or_else(|| RemoteError::NoDigestFunction {
                endpoint: ep_text.clone(),
                advertised: describe_functions(&info.digest_functions),
            })?;
        let batch_limit = match usize::try_from(info.max_batch) {
            Ok(n) if n > 0 => n.min(GRPC_MESSAGE_LIMIT),
            _ => GRPC_MESSAGE_LIMIT,
        };
        let inner = Arc::get_mut(&mut client.inner).ok_or_else(|| RemoteError::Protocol {
            endpoint: ep_text.clone(),
            message: "internal: client shared during connect".into(),
        })?;
        inner.function = function;
        inner.info = info;
        inner.batch_limit = batch_limit;
        Ok(client)
    }

    /// The same connection using digest function `f`, which the server must advertise.
    pub fn with_function(&self, f: DigestFunction) -> Result<RemoteClient, RemoteError> {
        if !self.inner.info.supports(f) {
            return Err(RemoteError::NoDigestFunction {
                endpoint: self.endpoint().to_string(),
                advertised: format!(
                    "{} (not {f})",
                    describe_functions(&self.inner.info.digest_functions)
                ),
            });
        }
        Ok(RemoteClient {
            inner: Arc::new(Inner {
                endpoint: self.inner.endpoint.clone(),
                instance: self.inner.instance.clone(),
                channel: self.inner.channel.clone(),
                auth: self.inner.auth.clone(),
                function: f,
                info: self.inner.info.clone(),
                batch_limit: self.inner.batch_limit,
                uploaded: self.inner.uploaded.clone(),
            }),
        })
    }

    async fn capabilities(&self) -> Result<ServerInfo, RemoteError> {
        use reapi::capabilities_client::CapabilitiesClient;
        let req = reapi::GetCapabilitiesRequest {
            instance_name: self.inner.instance.clone(),
        };
        let resp = retry::unary("GetCapabilities", || {
            let mut c = CapabilitiesClient::new(self.inner.channel.clone());
            let r = self.request(req.clone());
            async move { c.get_capabilities(r).await }
        })
        .await
        .map_err(|s| self.rpc_error("GetCapabilities", s))?;
        let sykli_worker = resp
            .metadata()
            .get(WORKER_METADATA)
            .is_some_and(|v| v.as_bytes() == b"1");
        let worker_labels: Vec<String> = resp
            .metadata()
            .get(LABELS_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let caps = resp.into_inner();
        let mut functions = Vec::new();
        let mut max_batch = 0;
        let mut cache_update = false;
        if let Some(c) = &caps.cache_capabilities {
            functions.extend(c.digest_functions.iter().copied());
            max_batch = c.max_batch_total_size_bytes;
            cache_update = c
                .action_cache_update_capabilities
                .as_ref()
                .is_some_and(|u| u.update_enabled);
        }
        let mut exec_enabled = false;
        if let Some(e) = &caps.execution_capabilities {
            exec_enabled = e.exec_enabled;
            if functions.is_empty() {
                functions.extend(e.digest_functions.iter().copied());
                if e.digest_function != 0 {
                    functions.push(e.digest_function);
                }
            }
        }
        functions.sort_unstable();
        functions.dedup();
        Ok(ServerInfo {
            digest_functions: functions,
            exec_enabled,
            cache_update,
            max_batch,
            sykli_worker,
            worker_labels,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The negotiated digest function.
    pub fn function(&self) -> DigestFunction {
        self.inner.function
    }

    /// What the server said about itself.
    pub fn info(&self) -> &ServerInfo {
        &self.inner.info
    }

    /// The instance name.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Blobs and bytes uploaded so far through this connection and its clones.
    pub fn uploaded(&self) -> Transferred {
        use std::sync::atomic::Ordering;
        Transferred {
            blobs: self.inner.uploaded.0.load(Ordering::Relaxed),
            bytes: self.inner.uploaded.1.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_upload(&self, sent: Transferred) {
        use std::sync::atomic::Ordering;
        self.inner
            .uploaded
            .0
            .fetch_add(sent.blobs, Ordering::Relaxed);
        self.inner
            .uploaded
            .1
            .fetch_add(sent.bytes, Ordering::Relaxed);
    }

    /// Largest total of blob bytes in one batch request.
    pub fn batch_limit(&self) -> usize {
        self.inner.batch_limit
    }

    pub(crate) fn channel(&self) -> Channel {
        self.inner.channel.clone()
    }

    /// A request carrying the token.
    pub(crate) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(a) = &self.inner.auth {
            r.metadata_mut().insert("authorization", a.clone());
        }
        r
    }

    pub(crate) fn rpc_error(&self, call: &'static str, s: tonic::Status) -> RemoteError {
        RemoteError::Rpc {
            endpoint: self.inner.endpoint.to_string(),
            call,
            code: s.code(),
            message: s.message().to_owned(),
        }
    }

    pub(crate) fn protocol(&self, message: impl Into<String>) -> RemoteError {
        RemoteError::Protocol {
            endpoint: self.inner.endpoint.to_string(),
            message: message.into(),
        }
    }

    /// The REAPI `digest_function` value sent on every request.
    pub(crate) fn fn_value(&self) -> i32 {
        self.inner.function.reapi_value()
    }

    /// Looks an action up in the action cache (`None` when absent).
    pub async fn get_action_result(
        &self,
        action: &reapi::Digest,
    ) -> Result<Option<reapi::ActionResult>, RemoteError> {
        use reapi::action_cache_client::ActionCacheClient;
        let req = reapi::GetActionResultRequest {
            instance_name: self.inner.instance.clone(),
            action_digest: Some(action.clone()),
            inline_stdout: true,
            inline_stderr: true,
            inline_output_files: Vec::new(),
            digest_function: self.fn_value(),
        };
        let r = retry::unary("GetActionResult", || {
            let mut c =
                ActionCacheClient::new(self.channel()).max_decoding_message_size(MAX_DECODE);
            let r = self.request(req.clone());
            async move { c.get_action_result(r).await }
        })
        .await;
        match r {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.rpc_error("GetActionResult", s)),
        }
    }

    /// Stores an action result under `action`.
    pub async fn update_action_result(
        &self,
        action: &reapi::Digest,
        result: reapi::ActionResult,
    ) -> Result<(), RemoteError> {
        use reapi::action_cache_client::ActionCacheClient;
        let req = reapi::UpdateActionResultRequest {
            instance_name: self.inner.instance.clone(),
            action_digest: Some(action.clone()),
            action_result: Some(result),
            results_cache_policy: None,
            digest_function: self.fn_value(),
        };
        retry::unary("UpdateActionResult", || {
            let mut c = ActionCacheClient::new(self.channel());
            let r = self.request(req.clone());
            async move { c.update_action_result(r).await }
        })
        .await
        .map_err(|s| self.rpc_error("UpdateActionResult", s))?;
        Ok(())
    }
}

fn describe_functions(values: &[i32]) -> String {
    use reapi::digest_function::Value;
    if values.is_empty() {
        return "none".into();
    }
    values
        .iter()
        .map(|v| match Value::try_from(*v) {
            Ok(f) => f.as_str_name().to_owned(),
            Err(_) => format!("unknown ({v})"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(functions: &[i32], sykli: bool, labels: &[&str]) -> ServerInfo {
        ServerInfo {
            digest_functions: functions.to_vec(),
            exec_enabled: true,
            cache_update: true,
            max_batch: 0,
            sykli_worker: sykli,
            worker_labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn blake3_when_advertised_else_sha256_never_an_unadvertised_one() {
        assert_eq!(
            info(&[1, 9], false, &[]).preferred_function(),
            Some(DigestFunction::Blake3)
        );
        assert_eq!(
            info(&[1], false, &[]).preferred_function(),
            Some(DigestFunction::Sha256)
        );
        assert_eq!(info(&[2, 3], false, &[]).preferred_function(), None);
        assert_eq!(info(&[], false, &[]).preferred_function(), None);
        assert_eq!(
            describe_functions(&[1, 9, 77]),
            "SHA256, BLAKE3, unknown (77)"
        );
    }

    #[test]
    fn a_workers_labels_become_placement_labels() {
        let i = info(
            &[9],
            true,
            &["gpu=true", "pool=fast", "container-image=docker://*"],
        );
        assert_eq!(i.placement_labels(), ["container", "gpu"]);
        assert!(i.runs_containers());
        assert!(!info(&[9], true, &["gpu=true"]).runs_containers());
        assert!(info(&[9], false, &[]).runs_containers());
    }

    #[test]
    fn status_codes_read_like_grpc_names_with_a_hint_for_auth() {
        let e = RemoteError::Rpc {
            endpoint: "grpc://h:1".into(),
            call: "GetCapabilities",
            code: tonic::Code::Unauthenticated,
            message: "no token".into(),
        };
        let t = e.to_string();
        assert!(
            t.contains("GetCapabilities failed: UNAUTHENTICATED: no token"),
            "{t}"
        );
        assert!(
            t.contains("SYKLI_TOKEN") && t.contains("--token-file"),
            "{t}"
        );
    }
}
