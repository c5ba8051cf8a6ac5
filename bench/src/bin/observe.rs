//! The cost of observers: 1,000 tasks of `true` in a wide graph with 2 jobs, run in-process
//! by the scheduler (on one thread, as `sykli run` does) with its events in an observe hub
//! served over loopback gRPC from a thread of its own (as `sykli run --serve` does: the
//! same `ServerThread`), with 0 and then 10 observers
//! subscribed (real gRPC clients on a runtime of their own, each receiving every event),
//! alternating, median of the rounds. Target: 10 observers cost < 5% wall time.
//!
//! `cargo build --release -p sykli-bench --bin observe`, then
//! `target/release/observe [TASKS] [ROUNDS] [OBSERVERS]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use sykli_runtime::events::EventSink;
use sykli_runtime::graph::{Graph, ValidGraph, validate};
use sykli_runtime::observe::Hub;
use sykli_runtime::observe::grpc::{ObserveClient, ServerThread};
use sykli_runtime::remote::client::ClientOptions;
use sykli_runtime::remote::endpoint::Endpoint;
use sykli_runtime::scheduler::{CacheChoice, RunBuilder, Signals, run};

/// One run with `observers` subscribed: the run's wall time, and each observer's event count.
fn once(
    graph: &ValidGraph,
    root: &std::path::Path,
    observers: usize,
    clients: &tokio::runtime::Runtime,
) -> Result<(Duration, Vec<u64>)> {
    let config = RunBuilder::new(root)
        .jobs(2)
        .cache(CacheChoice::Off)
        .containers(false)
        .history(false)
        .signals(Signals::Noop)
        .build()
        .config;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let hub = Hub::new();
    let handle = hub.register(&config.run_id);
    let run_id = config.run_id.clone();
    let server = ServerThread::spawn(std::net::TcpListener::bind("127.0.0.1:0")?, hub, None)?;
    let addr = server.local_addr();
    rt.block_on(async {
        let opts = ClientOptions::new(Endpoint::parse(&format!("grpc://{addr}"))?);
        // Subscribe every observer before the run starts.
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(observers.max(1));
        let mut readers = Vec::new();
        for _ in 0..observers {
            let (opts, run_id, ready) = (opts.clone(), run_id.clone(), ready_tx.clone());
            readers.push(clients.spawn(async move {
                let mut c = ObserveClient::connect(&opts).await?;
                let mut events = Box::pin(c.subscribe(Some(&run_id), None, 1).await?);
                let _ = ready.send(()).await;
                let mut last = 0;
                while let Some(e) = events.next().await {
                    last = e?.seq;
                }
                Ok::<u64, anyhow::Error>(last)
            }));
        }
        for _ in 0..observers {
            ready_rx
                .recv()
                .await
                .context("an observer failed to subscribe")?;
        }
        let start = Instant::now();
        let summary = run(graph, config, Arc::new(handle) as Arc<dyn EventSink>).await?;
        let took = start.elapsed();
        if summary.passed == 0 || !summary.ok() {
            bail!("the run did not pass: {summary:?}");
        }
        let mut got = Vec::new();
        for r in readers {
            got.push(r.await??);
        }
        server
            .stop(Duration::from_secs(5))
            .await
            .map_err(anyhow::Error::msg)?;
        Ok((took, got))
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let observers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let dir = tempfile::tempdir()?;
    let graph = serde_json::json!({
        "version": "1",
        "tasks": (0..tasks).map(|i| serde_json::json!({"name": format!("t{i:04}"), "command": "true"})).collect::<Vec<_>>(),
    });
    let graph = Graph::from_json(&graph.to_string()).context("bench graph")?;
    let valid = validate(&graph).map_err(|e| anyhow::anyhow!("bench graph invalid: {e:?}"))?;
    // The observers' runtime: another thread, as another process would be.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut events = 0;
    for _ in 0..rounds {
        without.push(once(&valid, dir.path(), 0, &clients)?.0);
        let (took, got) = once(&valid, dir.path(), observers, &clients)?;
        events = got[0];
        if got.iter().any(|&n| n != events) || events < 2 * tasks as u64 {
            bail!("an observer missed events: last seqs {got:?}");
        }
        with.push(took);
    }
    let (a, b) = (median(without.clone()), median(with.clone()));
    println!(
        "observe: {tasks} tasks of `true`, wide graph, 2 jobs, served over loopback gRPC, median of {rounds} rounds"
    );
    println!(
        "  0 observers   {:>8.1} ms  (all: {:?})",
        ms(a),
        all(&without)
    );
    println!(
        "  {observers} observers  {:>8.1} ms  (all: {:?}; each received all {events} events)",
        ms(b),
        all(&with)
    );
    println!(
        "  overhead      {:>+8.1} %  (target < 5%)",
        (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn all(v: &[Duration]) -> Vec<u64> {
    v.iter().map(|d| d.as_millis() as u64).collect()
}
