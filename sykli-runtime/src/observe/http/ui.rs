//! The live web page (`sykli serve --ui`, `sykli run --ui`): one HTML page, its script and
//! style embedded in the binary (no build step, no external address), and the small JSON/SSE
//! API it reads:
//!
//! | route | answer |
//! | --- | --- |
//! | `/`, `/ui` | the page (no token: it holds no data) |
//! | `/ui/app.js`, `/ui/app.css` | its script and style (no token) |
//! | `/api/runs` | `{"live": [RunInfo...], "history": [RunRecord...]}`: the hub's runs, and the runs journalled under the project's `.sykli/` (newest first, at most 50) |
//! | `/api/graph` | `{"task": ["dependency", ...]}` of the pipeline being run (`{}` when the server has none) |
//! | `/api/runs/{id}/events` | the run's events as server-sent events: `id:` is the sequence number, `data:` the [`Envelope`](crate::events::Envelope) JSON; resumes after `Last-Event-ID` (or `?from=SEQ`); an `end` event closes it |
//! | `/api/history/{id}` | a journalled run's record |
//! | `/api/history/{id}/log/{task}` | a journalled task's log (text) |

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::observe::hub::{Hub, HubError};
use crate::state::RunRecord;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Most journalled runs `/api/runs` lists.
const HISTORY_LIMIT: usize = 50;

/// How long a read of the journal's runs is reused.
const HISTORY_TTL: Duration = Duration::from_secs(5);

/// The journal's runs and when they were read.
type History = (Instant, Vec<RunRecord>);

/// What the page shows: the hub's live runs, the pipeline's graph, the journal's history.
#[derive(Clone)]
pub struct UiState {
    hub: Hub,
    graph: Arc<BTreeMap<String, Vec<String>>>,
    state_dir: Option<PathBuf>,
    shutdown: CancellationToken,
    /// The journal's runs as last read, and when: pages poll, the journal is read at most
    /// every [`HISTORY_TTL`].
    history: Arc<tokio::sync::Mutex<Option<History>>>,
}

impl UiState {
    /// The page of `hub`'s runs; `graph` gives each task's dependencies when the server runs
    /// a known pipeline (`sykli run --ui`), `state_dir` (`.sykli/`) the run history and
    /// logs; `shutdown` ends open event streams (so a graceful shutdown does not wait on
    /// browsers).
    pub fn new(
        hub: Hub,
        graph: BTreeMap<String, Vec<String>>,
        state_dir: Option<PathBuf>,
        shutdown: CancellationToken,
    ) -> UiState {
        UiState {
            hub,
            graph: Arc::new(graph),
            state_dir,
            shutdown,
            history: Arc::default(),
        }
    }

    /// The journalled runs, newest first (at most [`HISTORY_LIMIT`]), read again when the
    /// last read is older than [`HISTORY_TTL`].
    async fn history(&self) -> Result<Vec<RunRecord>, String> {
        let Some(dir) = self.state_dir.clone() else {
            return Ok(Vec::new());
        };
        let mut cached = self.history.lock().await;
        if let Some((at, runs)) = cached.as_ref()
            && at.elapsed() < HISTORY_TTL
        {
            return Ok(runs.clone());
        }
        let listed = tokio::task::spawn_blocking(move || crate::state::list_runs(&dir))
            .await
            .map_err(|e| format!("could not list runs: {e}"))?
            .map_err(|e| format!("could not list runs: {}", crate::error_chain(&e)))?;
        let runs: Vec<RunRecord> = listed.runs.into_iter().take(HISTORY_LIMIT).collect();
        *cached = Some((Instant::now(), runs.clone()));
        Ok(runs)
    }
}

impl std::fmt::Debug for UiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiState")
            .field("tasks", &self.graph.len())
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// The page itself: `/`, `/ui` and its script and style. They are the same bytes in every
/// sykli binary and carry no data, so they need no token (a browser could not send one for
/// `<script src>` anyway); everything with data is in [`api`].
pub fn assets() -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route(
            "/ui",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
}

/// The page's data: runs, graph, event streams, history and logs (the caller adds the token
/// check).
pub fn api(state: UiState) -> Router {
    Router::new()
        .route("/api/runs", get(runs))
        .route("/api/graph", get(graph))
        .route("/api/runs/{id}/events", get(events))
        .route("/api/history/{id}", get(history_run))
        .route("/api/history/{id}/log/{task}", get(history_log))
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding failed: {e}"),
        ),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, format!("{message}\n")).into_response()
}

async fn runs(State(ui): State<UiState>) -> Response {
    let live = ui.hub.runs();
    match ui.history().await {
        Ok(history) => json(&serde_json::json!({ "live": live, "history": history })),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn graph(State(ui): State<UiState>) -> Response {
    json(&*ui.graph)
}

/// `?from=SEQ` of the events route.
#[derive(Debug, serde::Deserialize)]
struct From {
    from: Option<u64>,
}

async fn events(
    State(ui): State<UiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<From>,
) -> Response {
    // EventSource sends the id of the last event it got when it reconnects.
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let from = match (last, query.from) {
        (Some(last), _) => last + 1,
        (None, Some(from)) => from,
        (None, None) => 1,
    };
    let subscription = match ui.hub.subscribe(&id, None, from) {
        Ok(s) => s,
        Err(e @ HubError::NoSuchRun { .. }) => return error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => return error(StatusCode::GONE, e.to_string()),
    };
    let events = subscription.map(|item| {
        Ok::<_, Infallible>(match item {
            Ok(envelope) => match serde_json::to_string(&*envelope) {
                Ok(data) => SseEvent::default().id(envelope.seq.to_string()).data(data),
                Err(e) => SseEvent::default()
                    .event("failure")
                    .data(format!("event #{} could not be encoded: {e}", envelope.seq)),
            },
            Err(e) => SseEvent::default().event("failure").data(e.to_string()),
        })
    });
    let end = futures::stream::once(async { Ok(SseEvent::default().event("end").data("end")) });
    let stream = events
        .chain(end)
        .take_until(ui.shutdown.clone().cancelled_owned());
    sse(stream)
}

fn sse(stream: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static) -> Response {
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn history_run(State(ui): State<UiState>, Path(id): Path<String>) -> Response {
    let Some(dir) = ui.state_dir.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "this server keeps no run history".into(),
        );
    };
    let found = tokio::task::spawn_blocking(move || crate::state::find_run(&dir, &id)).await;
    match found {
        Ok(Ok(record)) => json(&record),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, crate::error_chain(&e)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn history_log(
    State(ui): State<UiState>,
    Path((id, task)): Path<(String, String)>,
) -> Response {
    let Some(dir) = ui.state_dir.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "this server keeps no run history".into(),
        );
    };
    let read = tokio::task::spawn_blocking(move || -> Result<String, (StatusCode, String)> {
        let not_found =
            |e: crate::state::StateError| (StatusCode::NOT_FOUND, crate::error_chain(&e));
        let record = crate::state::find_run(&dir, &id).map_err(not_found)?;
        let path = crate::state::task_log(&dir, &record, &task)
            .map_err(not_found)?
            .ok_or_else(|| {
                (
                    StatusCode::NOT_FOUND,
                    format!("task `{task}` of run {id} wrote no log"),
                )
            })?;
        std::fs::read_to_string(&path).map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not read {}: {e}", path.display()),
            )
        })
    })
    .await;
    match read {
        Ok(Ok(text)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Ok(Err((status, message))) => error(status, message),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
