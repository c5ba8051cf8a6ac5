//! Remote execution over loopback against a real `sykli worker`:
//!
//! 1. per-action overhead: ACTIONS (default 1,000) distinct no-op actions placed
//!    `remote: true`, through the real `sykli run --remote` binary, against the same tasks run
//!    locally (targets: <= 5 ms per action, >= 300 actions/s), on a worker running actions as
//!    plain processes (as a local run does) and on one sandboxing each (its default), beside
//!    a local run with `--sandbox`;
//! 2. incremental uploads: a task whose input tree holds 10,000 files runs remotely, one file
//!    changes, it runs again: the blobs and bytes the second run uploaded (target: that file
//!    and the changed `Directory` messages, plus the new `Action`).
//!
//! Build first: `cargo build --release -p sykli -p sykli-bench`, then
//! `target/release/remote [ACTIONS] [JOBS] [ROUNDS]` (defaults 1000, 16, 3). The `sykli`
//! binary is `$SYKLI_BIN` or the one next to this benchmark.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sykli_bench::{Worker, sykli_bin};
use sykli_runtime::events::{Event, EventSink};
use sykli_runtime::graph::{Graph, validate_owned};
use sykli_runtime::remote::client::{
    ClientOptions, RemoteClient, RemoteExecution, RemoteExecutorOptions, RemoteSetup,
};
use sykli_runtime::remote::endpoint::Endpoint;
use sykli_runtime::scheduler::{self, CacheChoice, RunBuilder, Signals};

struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, _event: &Event) {}
}

/// Times `sykli run` of `dir` (on `remote` when given; `sandbox`: `--sandbox`).
fn time_run(
    sykli: &Path,
    dir: &Path,
    jobs: usize,
    remote: Option<&str>,
    sandbox: bool,
) -> Result<Duration> {
    let mut cmd = Command::new(sykli);
    cmd.arg("run")
        .arg("--jobs")
        .arg(jobs.to_string())
        .arg(dir)
        .env_remove("CI")
        .env("SYKLI_CACHE_DIR", dir.with_extension("cache"));
    if let Some(url) = remote {
        cmd.arg("--remote").arg(url);
    }
    if sandbox {
        cmd.arg("--sandbox");
    }
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("failed to run sykli")?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("sykli run failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn overhead(sykli: &Path, actions: usize, jobs: usize, rounds: usize) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // The same actions on a worker running them as plain processes (what the local run
    // does: the protocol's overhead) and on one sandboxing them (its default).
    let plain = Worker::start(sykli, &tmp.path().join("store-plain"), &["--no-sandbox"])?;
    let sandboxed = Worker::start(sykli, &tmp.path().join("store-sandboxed"), &[])?;
    let project = |name: &str, remote: bool| -> Result<std::path::PathBuf> {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let tasks: Vec<serde_json::Value> = (0..actions)
            .map(|i| {
                serde_json::json!({"name": format!("t{i:04}"), "command": format!("true {i}"), "remote": remote})
            })
            .collect();
        std::fs::write(
            dir.join("sykli.json"),
            serde_json::json!({"version": "1", "tasks": tasks}).to_string(),
        )?;
        Ok(dir)
    };
    let local_dir = project("local", false)?;
    let local_sandboxed_dir = project("local-sandboxed", false)?;
    let remote_dir = project("remote", true)?;
    let sandboxed_dir = project("remote-sandboxed", true)?;
    let (mut locals, mut local_sandboxes, mut remotes, mut sandboxes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        locals.push(time_run(sykli, &local_dir, jobs, None, false)?);
        local_sandboxes.push(time_run(sykli, &local_sandboxed_dir, jobs, None, true)?);
        remotes.push(time_run(sykli, &remote_dir, jobs, Some(&plain.url), false)?);
        sandboxes.push(time_run(
            sykli,
            &sandboxed_dir,
            jobs,
            Some(&sandboxed.url),
            false,
        )?);
    }
    let (local, local_sandboxed, remote, sandboxed_run) = (
        median(locals),
        median(local_sandboxes),
        median(remotes),
        median(sandboxes),
    );
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / actions as f64;
    let rate = |d: Duration| actions as f64 / d.as_secs_f64();
    println!(
        "remote: {actions} no-op actions (`true N`, do_not_cache), {jobs} jobs, loopback sykli worker"
    );
    println!(
        "  local : {:>8.3} s  {:>6.2} ms/action  {:>7.0} actions/s",
        local.as_secs_f64(),
        per(local),
        rate(local)
    );
    println!(
        "  local : {:>8.3} s  {:>6.2} ms/action  {:>7.0} actions/s   sandboxed (`run --sandbox`)",
        local_sandboxed.as_secs_f64(),
        per(local_sandboxed),
        rate(local_sandboxed)
    );
    println!(
        "  remote: {:>8.3} s  {:>6.2} ms/action  {:>7.0} actions/s   worker --no-sandbox (target <= 5 ms/action, >= 300 actions/s: {})",
        remote.as_secs_f64(),
        per(remote),
        rate(remote),
        if per(remote) <= 5.0 && rate(remote) >= 300.0 {
            "met"
        } else {
            "missed"
        }
    );
    println!(
        "  remote: {:>8.3} s  {:>6.2} ms/action  {:>7.0} actions/s   worker sandboxing each action (its default)",
        sandboxed_run.as_secs_f64(),
        per(sandboxed_run),
        rate(sandboxed_run)
    );
    println!(
        "  remote overhead over local: {:+.2} ms/action (plain over plain), {:+.2} ms/action \
         (sandboxed over sandboxed)",
        per(remote) - per(local),
        per(sandboxed_run) - per(local_sandboxed)
    );
    Ok(())
}

async fn run_in_process(
    dir: &Path,
    graph: &serde_json::Value,
    client: &RemoteClient,
) -> Result<()> {
    let graph: Graph = serde_json::from_value(graph.clone())?;
    let valid = validate_owned(graph).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let setup = RemoteSetup {
        cache: None,
        cache_read_only: false,
        execution: Some(RemoteExecution::Ready {
            client: client.clone(),
            options: RemoteExecutorOptions::default(),
        }),
        labels: Vec::new(),
    };
    let built = RunBuilder::new(dir)
        .signals(Signals::Noop)
        .history(false)
        .containers(false)
        .cache(CacheChoice::Local)
        .remote(setup)
        .build();
    let summary = scheduler::run(&valid, built.config, Arc::new(Quiet))
        .await
        .context("the run failed")?;
    if summary.passed != 1 {
        bail!("the task did not pass: {summary:?}");
    }
    Ok(())
}

async fn incremental(sykli: &Path, files: usize) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let worker = Worker::start(sykli, &tmp.path().join("store"), &[])?;
    let dir = tmp.path().join("project");
    let dirs = files.div_ceil(100);
    for d in 0..dirs {
        let sub = dir.join(format!("tree/d{d:03}"));
        std::fs::create_dir_all(&sub)?;
        for f in 0..100.min(files - d * 100) {
            let i = d * 100 + f;
            std::fs::write(
                sub.join(format!("f{i:05}.txt")),
                format!("file {i}\n{}\n", "x".repeat(200)),
            )?;
        }
    }
    let graph = serde_json::json!({"version": "1", "tasks": [
        {"name": "scan", "command": "find tree -type f | wc -l", "inputs": ["tree/**"], "remote": true}
    ]});
    let client = RemoteClient::connect(&ClientOptions::new(Endpoint::parse(&worker.url)?)).await?;
    let start = Instant::now();
    run_in_process(&dir, &graph, &client).await?;
    let first_took = start.elapsed();
    let first = client.uploaded();
    let changed = dir.join("tree/d042/f04242.txt");
    std::fs::write(&changed, "changed\n")?;
    let start = Instant::now();
    run_in_process(&dir, &graph, &client).await?;
    let second_took = start.elapsed();
    let total = client.uploaded();
    let (blobs, bytes) = (total.blobs - first.blobs, total.bytes - first.bytes);
    println!("remote: a task over {files} input files in {dirs} directories, one file changed");
    println!(
        "  first run : {:>6} blobs {:>10} bytes uploaded in {:.3} s",
        first.blobs,
        first.bytes,
        first_took.as_secs_f64()
    );
    println!(
        "  second run: {blobs:>6} blobs {bytes:>10} bytes uploaded in {:.3} s (the file: 8 bytes; \
         expected blobs: the file, 3 Directory messages (d042, tree, root) and the Action = 5)",
        second_took.as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let actions: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let jobs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let sykli = sykli_bin()?;
    let cache = tempfile::tempdir()?;
    // SAFETY: set before any thread of this program starts; the runtime reads it.
    unsafe { std::env::set_var("SYKLI_CACHE_DIR", cache.path()) };
    overhead(&sykli, actions, jobs, rounds)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(incremental(&sykli, 10_000))
}
