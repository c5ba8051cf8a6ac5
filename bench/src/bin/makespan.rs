//! Makespan of sleep-task DAGs under 2 jobs against the lower bound
//! max(critical path, total work / jobs). Target: within 1.1x.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sykli_runtime::graph::{ConditionContext, Graph, Task, validate};
use sykli_runtime::{Event, EventSink, RunConfig, Signals};

struct Quiet;
impl EventSink for Quiet {
    fn emit(&self, _: &Event) {}
}

fn sleep_task(name: &str, secs: f64, deps: &[String]) -> Task {
    Task {
        command: Some(format!("sleep {secs}")),
        depends_on: deps.to_vec(),
        ..Task::named(name)
    }
}

/// A scenario: tasks with their durations, in document order.
struct Scenario {
    name: &'static str,
    tasks: Vec<(Task, f64)>,
    /// Give the scheduler the durations, as a previous run would.
    history: bool,
}

fn chain_and_shorts(history: bool) -> Scenario {
    // The short independent tasks come first in the document, so a scheduler without
    // critical-path priority would delay the chain.
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push((sleep_task(&format!("short{i}"), 0.15, &[]), 0.15));
    }
    let mut prev: Vec<String> = Vec::new();
    for i in 0..6 {
        let name = format!("chain{i}");
        tasks.push((sleep_task(&name, 0.5, &prev), 0.5));
        prev = vec![name];
    }
    Scenario {
        name: "chain 6x0.5s + 20x0.15s independent",
        tasks,
        history,
    }
}

fn long_pair_vs_short_chain(history: bool) -> Scenario {
    // By task count the 4-chain looks critical; by duration the 2-chain is.
    let mut tasks = Vec::new();
    let mut prev: Vec<String> = Vec::new();
    for i in 0..4 {
        let name = format!("quick{i}");
        tasks.push((sleep_task(&name, 0.1, &prev), 0.1));
        prev = vec![name];
    }
    for i in 0..6 {
        tasks.push((sleep_task(&format!("filler{i}"), 0.3, &[]), 0.3));
    }
    prev.clear();
    for i in 0..2 {
        let name = format!("slow{i}");
        tasks.push((sleep_task(&name, 1.0, &prev), 1.0));
        prev = vec![name];
    }
    Scenario {
        name: "chain 2x1s vs chain 4x0.1s + 6x0.3s",
        tasks,
        history,
    }
}

fn lower_bound(s: &Scenario, jobs: usize) -> f64 {
    let index: HashMap<&str, usize> = s
        .tasks
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (t.name.as_str(), i))
        .collect();
    // Longest path ending at each task (tasks are in topological order by construction).
    let mut finish = vec![0f64; s.tasks.len()];
    for (i, (t, d)) in s.tasks.iter().enumerate() {
        let start = t
            .depends_on
            .iter()
            .map(|n| finish[index[n.as_str()]])
            .fold(0.0, f64::max);
        finish[i] = start + d;
    }
    let critical = finish.iter().copied().fold(0.0, f64::max);
    let work: f64 = s.tasks.iter().map(|(_, d)| d).sum();
    critical.max(work / jobs as f64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs = 2;
    println!(
        "makespan under {jobs} jobs vs lower bound max(critical path, work/jobs); target <= 1.10x"
    );
    for s in [
        chain_and_shorts(false),
        long_pair_vs_short_chain(false),
        long_pair_vs_short_chain(true),
    ] {
        let mut graph = Graph::new();
        graph.tasks = s.tasks.iter().map(|(t, _)| t.clone()).collect();
        let valid = validate(&graph)?;
        let dir = tempfile::tempdir()?;
        let mut c = RunConfig::new(dir.path());
        c.signals = Signals::Noop;
        c.context = Some(ConditionContext::default());
        c.jobs = jobs;
        if s.history {
            c.history = s
                .tasks
                .iter()
                .map(|(t, d)| (t.name.clone(), Duration::from_secs_f64(*d)))
                .collect();
        }
        let t0 = Instant::now();
        let summary = sykli_runtime::run(&valid, c, Arc::new(Quiet)).await?;
        let took = t0.elapsed().as_secs_f64();
        anyhow::ensure!(summary.ok(), "run failed: {summary:?}");
        let lb = lower_bound(&s, jobs);
        println!(
            "{:<40} history {:<5} makespan {took:6.3}s  bound {lb:6.3}s  ratio {:.3}",
            s.name,
            s.history,
            took / lb
        );
    }
    // Per-task overhead: a chain of `true` tasks, compared with the same commands spawned
    // back to back by a plain loop.
    let n = 50;
    let mut graph = Graph::new();
    let mut prev: Vec<String> = Vec::new();
    for i in 0..n {
        let name = format!("t{i}");
        graph.tasks.push(Task {
            command: Some("true".into()),
            depends_on: prev.clone(),
            ..Task::named(&name)
        });
        prev = vec![name];
    }
    let valid = validate(&graph)?;
    let dir = tempfile::tempdir()?;
    let mut c = RunConfig::new(dir.path());
    c.signals = Signals::Noop;
    c.context = Some(ConditionContext::default());
    let t0 = Instant::now();
    sykli_runtime::run(&valid, c, Arc::new(Quiet)).await?;
    let chain = t0.elapsed().as_secs_f64() / n as f64;
    let t0 = Instant::now();
    for _ in 0..n {
        std::process::Command::new("/bin/sh")
            .args(["-c", "true"])
            .status()?;
    }
    let plain = t0.elapsed().as_secs_f64() / n as f64;
    println!(
        "chain of {n} `true` tasks: {:.2} ms per task (plain sh -c loop: {:.2} ms)",
        chain * 1e3,
        plain * 1e3
    );
    Ok(())
}
