//! `--ui [ADDR]` of `sykli run` (and pipeline binaries): while the run lasts, serve the live
//! web page, `/metrics`, `/healthz` and `/readyz` over HTTP at ADDR (default
//! `127.0.0.1:0`, a free port). Once it listens it prints `sykli run: web page at
//! http://IP:PORT/ui` to stderr. The page lives as long as the run: when the run ends, open
//! event streams get [`DRAIN`] to deliver the last events, then the server stops.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use sykli_runtime::events::EventSink;
use sykli_runtime::graph::ValidGraph;
use sykli_runtime::observe::http::{self, HttpConfig, ui::UiState};
use sykli_runtime::observe::hub::Hub;
use tokio_util::sync::CancellationToken;

use super::error::CliError;

/// How long open event streams get to deliver a finished run's last events.
const DRAIN: Duration = Duration::from_secs(2);

/// The web server of one run.
pub(crate) struct WebUi {
    /// Sinks to add to the run: the hub's entry for it (the caller adds the metrics).
    pub sinks: Vec<Arc<dyn EventSink>>,
    stop_server: CancellationToken,
    stop_streams: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), http::HttpError>>,
}

/// Parses `--ui ADDR` (HOST:PORT).
fn address(text: &str) -> anyhow::Result<SocketAddr> {
    text.to_socket_addrs()
        .with_context(|| format!("--ui {text}: not an address (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| anyhow!("--ui {text}: the name resolves to no address"))
}

/// Each task's dependencies by name, for the page's graph.
fn dependencies(valid: &ValidGraph) -> BTreeMap<String, Vec<String>> {
    (0..valid.len())
        .map(|i| {
            let deps = valid
                .deps(i)
                .iter()
                .map(|&d| valid.task(d).name.clone())
                .collect();
            (valid.task(i).name.clone(), deps)
        })
        .collect()
}

/// Binds `addr` and serves the page of run `run_id` of `valid` (history from
/// `state_dir`); exit 2 for a bad address, 1 when it cannot listen.
pub(crate) async fn start(
    addr: &str,
    valid: &ValidGraph,
    state_dir: &Path,
    run_id: &str,
) -> Result<WebUi, CliError> {
    let addr = address(addr).map_err(|e| CliError::usage("usage", e))?;
    let bound = http::bind(addr)
        .await
        .map_err(|e| CliError::failed("ui_failed", e))?;
    let hub = Hub::new();
    let run = hub.register(run_id);
    let stop_streams = CancellationToken::new();
    let config = HttpConfig {
        ui: Some(UiState::new(
            hub,
            dependencies(valid),
            Some(state_dir.to_path_buf()),
            stop_streams.clone(),
        )),
        ..HttpConfig::new()
    };
    let local = bound.local_addr();
    let stop_server = CancellationToken::new();
    let server = tokio::spawn(bound.serve(http::router(config), stop_server.clone()));
    eprintln!("sykli run: web page at http://{local}/ui");
    Ok(WebUi {
        sinks: vec![Arc::new(run)],
        stop_server,
        stop_streams,
        server,
    })
}

impl WebUi {
    /// Stops the server once open pages got the run's last events (at most [`DRAIN`] more).
    pub(crate) async fn stop(self) {
        // The hub's entry closes with the run: streams end once their browser has it all.
        drop(self.sinks);
        self.stop_server.cancel();
        let mut server = self.server;
        let finished = tokio::time::timeout(DRAIN, &mut server).await;
        if finished.is_err() {
            self.stop_streams.cancel();
            if tokio::time::timeout(DRAIN, &mut server).await.is_err() {
                server.abort();
            }
            return;
        }
        if let Ok(Ok(Err(e))) = finished {
            eprintln!(
                "warning: the web page server failed: {}",
                sykli_runtime::error_chain(&e)
            );
        }
    }
}
