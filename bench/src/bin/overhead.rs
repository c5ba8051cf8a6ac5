//! Scheduling overhead: 1,000 tasks of `true` in a wide graph with 2 jobs, through the real
//! `sykli run` binary, against the same 1,000 commands through `make -j2`.
//!
//! Build both first: `cargo build --release -p sykli -p sykli-bench`, then
//! `target/release/overhead [TASKS] [ROUNDS]`. The `sykli` binary is taken from `$SYKLI_BIN`,
//! else from next to this benchmark's executable. Target: sykli <= 1.2x make.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sykli_bench::sykli_bin;

fn write_project(dir: &Path, tasks: usize) -> Result<()> {
    let names: Vec<String> = (0..tasks).map(|i| format!("t{i:04}")).collect();
    let graph = serde_json::json!({
        "version": "1",
        "tasks": names.iter().map(|n| serde_json::json!({"name": n, "command": "true"})).collect::<Vec<_>>(),
    });
    std::fs::write(
        dir.join("sykli.json"),
        serde_json::to_string_pretty(&graph)?,
    )?;
    let mut make = format!(
        ".PHONY: all {}\nall: {}\n",
        names.join(" "),
        names.join(" ")
    );
    for n in &names {
        make.push_str(&format!("{n}:\n\ttrue\n"));
    }
    std::fs::write(dir.join("Makefile"), make)?;
    Ok(())
}

fn time(mut cmd: Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
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
    let sykli = sykli_bin()?;
    let dir = tempfile::tempdir()?;
    write_project(dir.path(), tasks)?;

    let mut make_times = Vec::new();
    let mut sykli_times = Vec::new();
    for _ in 0..rounds {
        let mut make = Command::new("make");
        make.arg("-s").arg("-j2").arg("-C").arg(dir.path());
        make_times.push(time(make)?);
        let mut run = Command::new(&sykli);
        run.arg("run").arg("--jobs").arg("2").arg(dir.path());
        run.env_remove("CI");
        sykli_times.push(time(run)?);
    }
    let (m, s) = (median(make_times.clone()), median(sykli_times.clone()));
    println!("overhead: {tasks} tasks of `true`, wide graph, 2 jobs, median of {rounds} rounds");
    println!(
        "  make -j2          {:>8.1} ms  (all: {:?})",
        ms(m),
        all(&make_times)
    );
    println!(
        "  sykli run -j2     {:>8.1} ms  (all: {:?})",
        ms(s),
        all(&sykli_times)
    );
    println!(
        "  per task: make {:.3} ms, sykli {:.3} ms",
        ms(m) / tasks as f64,
        ms(s) / tasks as f64
    );
    println!(
        "  ratio sykli/make  {:>8.2}x  (target <= 1.20x)",
        s.as_secs_f64() / m.as_secs_f64()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn all(v: &[Duration]) -> Vec<u64> {
    v.iter().map(|d| d.as_millis() as u64).collect()
}
