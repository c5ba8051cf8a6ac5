//! Scheduler throughput: 10,000 native no-op tasks in one wide graph, printed as tasks per
//! second for a few job counts. Usage: `native [TASKS]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sykli_runtime::graph::{ConditionContext, Graph, Task, validate};
use sykli_runtime::{Event, EventSink, NativeRegistry, RunConfig, Signals, TaskCtx};

/// Counts events, as a cheap reporter would.
#[derive(Default)]
struct Count(AtomicUsize);

impl EventSink for Count {
    fn emit(&self, _: &Event) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// CPU time (user + system) this process has used, in seconds (from /proc, 10 ms ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() -> anyhow::Result<()> {
    println!("== tokio multi-thread runtime ==");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())?;
    println!("== tokio current-thread runtime ==");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let mut graph = Graph::new();
    graph.tasks = (0..n)
        .map(|i| Task {
            native: Some("noop".into()),
            ..Task::named(format!("t{i}"))
        })
        .collect();
    let valid = validate(&graph)?;
    let mut registry = NativeRegistry::new();
    registry.register("noop", |_ctx: TaskCtx| async { Ok(()) });
    let dir = tempfile::tempdir()?;
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());

    println!("{n} native no-op tasks, wide graph, {cpus} CPUs");
    for jobs in [cpus, 64, 1024] {
        let mut rates = Vec::new();
        let cpu0 = cpu_seconds();
        for _ in 0..5 {
            let mut c = RunConfig::new(dir.path());
            c.signals = Signals::Noop;
            c.context = Some(ConditionContext::default());
            c.native = registry.clone();
            c.jobs = jobs;
            let events = Arc::new(Count::default());
            let t0 = Instant::now();
            let summary = sykli_runtime::run(&valid, c, events.clone()).await?;
            let secs = t0.elapsed().as_secs_f64();
            anyhow::ensure!(summary.passed == n, "not all tasks passed: {summary:?}");
            rates.push(n as f64 / secs);
        }
        let cpu = cpu_seconds() - cpu0;
        rates.sort_by(f64::total_cmp);
        println!(
            "jobs {jobs:>5}: median {:>9.0} tasks/s, best {:>9.0} tasks/s wall; {:>9.0} tasks per CPU-second (5 runs; target > 50000/s)",
            rates[rates.len() / 2],
            rates[rates.len() - 1],
            (5 * n) as f64 / cpu.max(0.01),
        );
    }
    Ok(())
}
