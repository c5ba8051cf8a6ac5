//! Graph validation and planning benchmark: random DAGs of 1k, 10k, 100k and 1M tasks
//! (average fan-in 3).
//!
//! `cargo run --release -p sykli-bench --bin graph` runs every size, each in its own process
//! so the peak memory (VmHWM) is per size. `graph <n>` runs one size; `graph --write-json <n>
//! <file>` writes a graph of `n` tasks as JSON (for timing `sykli validate`).
//! Targets: 100k tasks parsed-and-validated in under 1 s and under 300 MB peak; validate +
//! plan (selection, conditions, placement on the run's executor registry) of 100k tasks
//! under 0.5 s and of 1M tasks under 5 s.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sykli_runtime::RunConfig;
use sykli_runtime::graph::{ConditionContext, Graph, Limits, Task, validate_owned};
use sykli_runtime::plan::{PlanOptions, plan};

fn random_graph(n: usize, seed: u64) -> Graph {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let mut t = Task::named(format!("task-{i}"));
        t.command = Some(format!("echo {i}"));
        t.inputs = vec![format!("src/mod{}/**/*.rs", i % 97)];
        // A mix the plan has to decide on: conditions, preferences, labels, containers.
        match i % 10 {
            0 => t.when = Some("branch == 'main' || ci".to_owned()),
            1 => t.prefer = Some(sykli_runtime::graph::Placement::Remote),
            2 => t.requires = vec![std::env::consts::OS.to_owned()],
            3 => t.container = Some("busybox".to_owned()),
            _ => {}
        }
        // Fan-in 0..=6, mean 3, from earlier tasks: a DAG by construction.
        let k = if i == 0 {
            0
        } else {
            rng.random_range(0..=6usize).min(i)
        };
        while t.depends_on.len() < k {
            let d = format!("task-{}", rng.random_range(0..i));
            if !t.depends_on.contains(&d) {
                t.depends_on.push(d);
            }
        }
        tasks.push(t);
    }
    // Shuffle document order so the validator cannot rely on it being topological.
    for i in (1..tasks.len()).rev() {
        let j = rng.random_range(0..=i);
        tasks.swap(i, j);
    }
    let mut g = Graph {
        tasks,
        ..Graph::new()
    };
    g.normalize_version();
    g
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system) of this process so far, in ms: unlike wall time, not inflated
/// when other processes compete for the cores.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn one(n: usize) -> anyhow::Result<()> {
    let g = random_graph(n, 42);
    let edges: usize = g.tasks.iter().map(|t| t.depends_on.len()).sum();
    let json = g.to_json_pretty();
    drop(g);

    let c0 = cpu_ms();
    let t0 = Instant::now();
    // Past 100k tasks the JSON outgrows the document limit a `sykli.json` gets (64 MiB); the
    // bench times parsing itself, so it lifts the document limits (graph limits still apply).
    let g = Graph::from_json_with(&json, &Limits::UNLIMITED)?;
    let parse = t0.elapsed();
    let c1 = cpu_ms();
    let t1 = Instant::now();
    let v = validate_owned(g).map_err(|e| anyhow::anyhow!("{e}"))?;
    let validate = t1.elapsed();
    let c2 = cpu_ms();
    let t2 = Instant::now();
    let order = v.topological_order();
    let topo = t2.elapsed();
    anyhow::ensure!(order.len() == n, "topological order lost tasks");
    // The run's executors (process, native, and a container engine as `sykli run` has).
    let mut config = RunConfig::new(".");
    config
        .executors
        .replace(sykli_runtime::exec::ExecutorEntry::local(
            // Connecting is lazy: no engine is contacted.
            std::sync::Arc::new(sykli_runtime::exec::container::DockerExecutor::connect()?),
            &[sykli_runtime::exec::WorkKind::Container],
            ["container"],
        ));
    let executors = config.registry();
    let ctx = ConditionContext {
        branch: Some("main".into()),
        ..Default::default()
    };
    let c3 = cpu_ms();
    let t3 = Instant::now();
    let p = plan(&v, &PlanOptions::new(&ctx, &executors, &config.native))?;
    let planning = t3.elapsed();
    let c4 = cpu_ms();
    anyhow::ensure!(p.len() == n, "the plan lost tasks");
    println!(
        "{n:>7} tasks {edges:>7} edges | wall: parse {:>6.1} ms, validate+index {:>6.1} ms, plan {:>6.1} ms, validate+plan {:>6.1} ms | cpu: parse {:>6.1} ms, validate {:>6.1} ms, plan {:>6.1} ms | topo {:>5.1} ms | JSON {:>5.1} MB | peak RSS {:>6.1} MB",
        parse.as_secs_f64() * 1e3,
        validate.as_secs_f64() * 1e3,
        planning.as_secs_f64() * 1e3,
        (validate + planning).as_secs_f64() * 1e3,
        c1 - c0,
        c2 - c1,
        c4 - c3,
        topo.as_secs_f64() * 1e3,
        json.len() as f64 / 1e6,
        peak_rss_mb()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, n, file] if flag == "--write-json" => {
            std::fs::write(file, random_graph(n.parse()?, 7).to_json_pretty())?;
            Ok(())
        }
        [n] => one(n.parse()?),
        [] => {
            let exe = std::env::current_exe()?;
            for n in [1_000, 10_000, 100_000, 1_000_000] {
                let status = std::process::Command::new(&exe)
                    .arg(n.to_string())
                    .status()?;
                anyhow::ensure!(status.success(), "size {n} failed");
            }
            Ok(())
        }
        _ => anyhow::bail!("usage: graph [N | --write-json N FILE]"),
    }
}
