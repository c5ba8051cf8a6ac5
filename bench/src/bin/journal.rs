//! The journal's cost: 1,000 tasks of `true` in a wide graph with 2 jobs, run in-process by
//! the scheduler with and without the run journal (framed records, fsynced at every task
//! boundary), alternating, median of the rounds. Target: journal <= 10% wall time.
//!
//! `cargo build --release -p sykli-bench --bin journal`, then
//! `target/release/journal [TASKS] [ROUNDS]`. The journal goes to a temporary directory (on
//! the file system of `$TMPDIR`: its fsync cost is part of the figure).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sykli_runtime::events::{Event, EventSink};
use sykli_runtime::graph::{Graph, validate};
use sykli_runtime::scheduler::{CacheChoice, RunBuilder, Signals, run};
use sykli_runtime::state::Journal;

/// Drops every event.
struct Null;

impl EventSink for Null {
    fn emit(&self, _: &Event) {}
}

async fn once(
    graph: &sykli_runtime::graph::ValidGraph,
    root: &std::path::Path,
    journal: bool,
) -> Result<Duration> {
    let config = RunBuilder::new(root)
        .jobs(2)
        .cache(CacheChoice::Off)
        .containers(false)
        .history(false)
        .signals(Signals::Noop)
        .build()
        .config;
    let start = Instant::now();
    let sink: Arc<dyn EventSink> = if journal {
        Arc::new(Journal::create(&config.state_dir, &config.run_id)?)
    } else {
        Arc::new(Null)
    };
    let summary = run(graph, config, sink).await?;
    let took = start.elapsed();
    if summary.passed == 0 || !summary.ok() {
        bail!("the run did not pass: {summary:?}");
    }
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let graph = serde_json::json!({
        "version": "1",
        "tasks": (0..tasks).map(|i| serde_json::json!({"name": format!("t{i:04}"), "command": "true"})).collect::<Vec<_>>(),
    });
    let graph = Graph::from_json(&graph.to_string()).context("bench graph")?;
    let valid = validate(&graph).map_err(|e| anyhow::anyhow!("bench graph invalid: {e:?}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        without.push(rt.block_on(once(&valid, dir.path(), false))?);
        with.push(rt.block_on(once(&valid, dir.path(), true))?);
    }
    let (a, b) = (median(without.clone()), median(with.clone()));
    println!("journal: {tasks} tasks of `true`, wide graph, 2 jobs, median of {rounds} rounds");
    println!(
        "  without journal  {:>8.1} ms  (all: {:?})",
        ms(a),
        all(&without)
    );
    println!(
        "  with journal     {:>8.1} ms  (all: {:?})",
        ms(b),
        all(&with)
    );
    println!(
        "  journal cost     {:>+8.1} %  (target <= 10%)",
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
