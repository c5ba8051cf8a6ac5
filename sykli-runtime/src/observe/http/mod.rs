//! The HTTP side of every sykli server: `/metrics` (Prometheus text), `/healthz`, `/readyz`
//! and, when asked, the live web page ([`ui`]).
//!
//! The routes are an [`axum::Router`]: `sykli worker` and `sykli serve` mount them on their
//! gRPC port (tonic accepts HTTP/1 there too), `sykli run --ui` serves them on its own
//! listener ([`serve`]). Rules (docs/observe.md):
//! - `/healthz`: 200 while the process answers at all; never needs a token.
//! - `/readyz`: 200 `ready` when the server takes work, else 503 with the reason (a serve
//!   with no worker taking work, a worker shutting down); never needs a token.
//! - `/metrics`: counts only (no task names, output or secrets); never needs a token, as
//!   Prometheus scrapers expect.
//! - the page's static files (`/`, `/ui`, `/ui/app.js`, `/ui/app.css`) need no token: they
//!   are compiled into every binary and hold no data.
//! - its data (`/api/...`: runs, events, logs) needs the server's bearer token when it has
//!   one: `Authorization: Bearer <token>`, or `?token=<token>` (the page passes on the
//!   token of its own address).

pub mod ui;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// Whether a server takes work now: `Err(reason)` when not.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Checks a presented bearer token (constant time); `None` means no token is required.
pub type Authorizer = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// What the HTTP routes serve.
#[derive(Clone)]
pub struct HttpConfig {
    /// The metrics `/metrics` encodes.
    pub metrics: &'static Metrics,
    /// `/readyz`'s answer.
    pub readiness: Readiness,
    /// The token rule for the page and its API.
    pub auth: Option<Authorizer>,
    /// The web page, when `--ui` asked for it.
    pub ui: Option<ui::UiState>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("auth", &self.auth.is_some())
            .field("ui", &self.ui.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpConfig {
    /// `/metrics` of this process, always ready, no token, no page.
    pub fn new() -> HttpConfig {
        HttpConfig {
            metrics: Metrics::global(),
            readiness: Arc::new(|| Ok(())),
            auth: None,
            ui: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The routes of `config`. Paths it does not know answer 404 (a gRPC call to an unknown
/// service is answered by tonic before it gets here).
pub fn router(config: HttpConfig) -> Router {
    let open = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .with_state(config.clone());
    let Some(ui) = config.ui.clone() else {
        return open;
    };
    let guarded = ui::api(ui).layer(middleware::from_fn_with_state(
        config.auth.clone(),
        require_token,
    ));
    open.merge(ui::assets()).merge(guarded)
}

/// The routes a gRPC server (`sykli worker`, `sykli serve`, `sykli run --serve`) mounts on
/// its port: this process's metrics, `readiness`, the web page when `ui` is given, and the
/// server's own token rule.
#[cfg(feature = "remote")]
pub fn server_router(
    token: Option<crate::remote::auth::Token>,
    readiness: Readiness,
    ui: Option<ui::UiState>,
) -> Router {
    router(HttpConfig {
        readiness,
        auth: token.map(|t| Arc::new(move |presented: &[u8]| t.matches(presented)) as Authorizer),
        ui,
        ..HttpConfig::new()
    })
}

/// Ready until `shutdown` is cancelled (a worker: draining or stopping takes no new work).
pub fn ready_until(shutdown: &CancellationToken) -> Readiness {
    let shutdown = shutdown.clone();
    Arc::new(move || {
        if shutdown.is_cancelled() {
            Err("shutting down".into())
        } else {
            Ok(())
        }
    })
}

/// Answers what no route knows: gRPC's `UNIMPLEMENTED` to a gRPC call (as tonic would), 404
/// to anything else.
async fn fallback(request: Request) -> Response {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/grpc"),
                (header::HeaderName::from_static("grpc-status"), "12"),
            ],
        )
            .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        format!("no such page: {}\n", request.uri().path()),
    )
        .into_response()
}

async fn readyz(State(config): State<HttpConfig>) -> Response {
    match (config.readiness)() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(config): State<HttpConfig>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        config.metrics.encode(),
    )
        .into_response()
}

/// Refuses a request without the token (when one is required) with 401.
async fn require_token(
    State(auth): State<Option<Authorizer>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(auth) = auth else {
        return next.run(request).await;
    };
    match presented(request.headers(), request.uri()) {
        Some(t) if auth(t.as_bytes()) => next.run(request).await,
        Some(_) => (StatusCode::UNAUTHORIZED, "wrong token\n").into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            "this server requires a token: send `Authorization: Bearer <token>` or add \
             `?token=<token>` to the address\n",
        )
            .into_response(),
    }
}

/// The token a request presents: the bearer header, else the `token` query parameter.
fn presented(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value.strip_prefix("Bearer ").map(str::to_owned);
    }
    let Query(mut query) = Query::<HashMap<String, String>>::try_from_uri(uri).ok()?;
    query.remove("token")
}

/// Why the HTTP server could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error("failed to listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// An HTTP server bound to its address, not serving yet (`sykli run --ui`).
#[derive(Debug)]
pub struct BoundHttp {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

/// Binds `addr` (port 0 picks one).
pub async fn bind(addr: SocketAddr) -> Result<BoundHttp, HttpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    Ok(BoundHttp { listener, addr })
}

impl BoundHttp {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `router` until `shutdown` is cancelled; open event streams are closed then.
    pub async fn serve(self, router: Router, shutdown: CancellationToken) -> Result<(), HttpError> {
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(HttpError::Serve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_bearer_header_or_the_query() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(
            presented(&h, &uri("/ui?a=1&token=s%2Fx")),
            Some("s/x".into())
        );
        assert_eq!(presented(&h, &uri("/ui?a=1")), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(presented(&h, &uri("/ui")), Some("abc".into()));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(presented(&h, &uri("/ui?token=abc")), None);
    }
}
