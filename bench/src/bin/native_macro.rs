//! Native no-op tasks through the macro path (`#[sykli::task]`, collected with `inventory`)
//! against the same number through the builder path (wire tasks with `native` plus closures
//! registered in a `NativeRegistry`), each run in-process by the scheduler.
//!
//! `cargo run --release -p sykli-bench --bin native_macro [JOBS]`. The macro tasks are
//! generated at build time: `SYKLI_BENCH_MACRO_TASKS` (default 10,000).
//! Prints, for each path: collection time, run time and tasks/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sykli::runtime::events::{Event, EventSink};
use sykli::runtime::exec::native::NativeRegistry;
use sykli::runtime::graph::{Graph, Task, validate_owned};
use sykli::runtime::scheduler::{self, RunConfig, Signals};

#[allow(dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/macro_tasks.rs"));
}

struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, _event: &Event) {}
}

struct Figures {
    tasks: usize,
    collect: Duration,
    run: Duration,
}

async fn run_graph(graph: Graph, natives: NativeRegistry, jobs: usize) -> Result<Duration> {
    let tasks = graph.tasks.len();
    let valid = validate_owned(graph).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = tempfile::tempdir().context("failed to create a temporary project")?;
    let mut config = RunConfig::new(dir.path());
    config.jobs = jobs;
    config.signals = Signals::Noop;
    config.native = natives;
    let start = Instant::now();
    let summary = scheduler::run(&valid, config, Arc::new(Quiet))
        .await
        .context("the run failed")?;
    let took = start.elapsed();
    if summary.passed != tasks {
        bail!("expected {tasks} passed tasks, got {summary:?}");
    }
    Ok(took)
}

async fn macro_path(jobs: usize) -> Result<Figures> {
    let start = Instant::now();
    let declared = sykli::tasks::declared_tasks(|name| format!("pipeline --sykli-exec {name}"))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let natives = declared.registry();
    let mut graph = Graph::new();
    graph.tasks = declared.tasks;
    let collect = start.elapsed();
    let tasks = graph.tasks.len();
    let run = run_graph(graph, natives, jobs).await?;
    Ok(Figures {
        tasks,
        collect,
        run,
    })
}

async fn builder_path(tasks: usize, jobs: usize) -> Result<Figures> {
    let start = Instant::now();
    let mut natives = NativeRegistry::new();
    let mut graph = Graph::new();
    for i in 0..tasks {
        let name = format!("b{i:05}");
        natives.register(name.clone(), |_ctx| async { Ok(()) });
        graph.tasks.push(Task {
            command: Some(format!("pipeline --sykli-exec {name}")),
            native: Some(name.clone()),
            ..Task::named(name)
        });
    }
    let collect = start.elapsed();
    let run = run_graph(graph, natives, jobs).await?;
    Ok(Figures {
        tasks,
        collect,
        run,
    })
}

fn print(label: &str, f: &Figures) {
    println!(
        "{label:<8} {:>6} tasks  collect {:>8.2} ms  run {:>8.1} ms  {:>9.0} tasks/s",
        f.tasks,
        f.collect.as_secs_f64() * 1e3,
        f.run.as_secs_f64() * 1e3,
        f.tasks as f64 / f.run.as_secs_f64()
    );
}

fn main() -> Result<()> {
    let jobs: usize = match std::env::args().nth(1) {
        Some(j) => j.parse().context("JOBS must be a positive number")?,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(async {
        println!(
            "native no-op tasks, {} each, {jobs} jobs",
            generated::MACRO_TASKS
        );
        let m = macro_path(jobs).await?;
        let b = builder_path(generated::MACRO_TASKS, jobs).await?;
        print("macro", &m);
        print("builder", &b);
        println!(
            "macro/builder run time: {:.2}x",
            m.run.as_secs_f64() / b.run.as_secs_f64()
        );
        Ok(())
    })
}
