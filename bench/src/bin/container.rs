//! Overhead of a container task: `true` in a small image through sykli (its `DockerExecutor`
//! in-process, and a whole `sykli run` of a one-task project) versus `docker run --rm` of the
//! same image and command.
//!
//! Needs a Docker engine and the test image: run `.ci/docker-setup.sh` first.
//!
//! ```text
//! cargo run --release -p sykli-bench --bin container -- [REPETITIONS] [IMAGE]
//! ```
//! Prints the mean and median wall time of each and the ratio (target: sykli no slower).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sykli_runtime::exec::container::DockerExecutor;
use sykli_runtime::exec::{
    Action, ContainerSpec, ExecIo, ExecOutcome, ExecRequest, Executor, OutputSink, OutputStream,
};
use tokio_util::sync::CancellationToken;

struct Discard;

impl OutputSink for Discard {
    fn write(&self, _stream: OutputStream, _bytes: &[u8]) {}
}

fn stats(samples: &[Duration]) -> (Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let mean = sorted.iter().sum::<Duration>() / sorted.len() as u32;
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2
    } else {
        sorted[mid]
    };
    (mean, median)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A whole `sykli run` (process start, graph load, validation, run record, container) of a
/// project whose one task runs `true` in `image`.
fn sykli_cli_run(sykli: &std::path::Path, project: &std::path::Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = Command::new(sykli)
        .args(["run", "--no-cache"])
        .arg(project)
        .stdin(Stdio::null())
        .output()
        .context("failed to run sykli")?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "sykli run failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(took)
}

fn docker_run(image: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = Command::new("docker")
        .args(["run", "--rm", image, "/bin/sh", "-c", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .context("failed to run the docker CLI")?;
    let took = start.elapsed();
    if !status.success() {
        bail!("docker run --rm {image} failed: {status}; run .ci/docker-setup.sh");
    }
    Ok(took)
}

async fn sykli_run(exec: &DockerExecutor, req: &ExecRequest) -> anyhow::Result<Duration> {
    let io = ExecIo {
        attempt: 1,
        output: Arc::new(Discard),
        cancel: CancellationToken::new(),
        operations: None,
    };
    let start = Instant::now();
    let outcome = exec.execute(req, io).await;
    let took = start.elapsed();
    if outcome != (ExecOutcome::Exited { code: 0 }) {
        bail!("sykli container task ended {outcome:?}; run .ci/docker-setup.sh");
    }
    Ok(took)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let reps: usize = match args.next() {
        Some(n) => n.parse().context("REPETITIONS must be a number")?,
        None => 30,
    };
    if reps == 0 {
        bail!("REPETITIONS must be at least 1");
    }
    let image = args
        .next()
        .unwrap_or_else(|| "sykli-test/busybox:latest".to_owned());

    let exec = DockerExecutor::connect()?;
    exec.ping().await?;
    let req = ExecRequest {
        task: "bench".to_owned(),
        action: Action::Shell("true".to_owned()),
        env: BTreeMap::new(),
        inherit_env: false,
        workdir: std::env::temp_dir(),
        container: Some(ContainerSpec {
            image: image.clone(),
            workdir: None,
            mounts: Vec::new(),
            services: Vec::new(),
        }),
        timeout: Some(Duration::from_secs(60)),
        kill_grace: Duration::from_secs(5),
        run_id: format!("bench-{}", std::process::id()),
        background: None,
        sandbox: None,
    };

    let sykli_bin = sykli_bench::sykli_bin()?;
    let project = tempfile::tempdir().context("failed to make a project directory")?;
    let graph = serde_json::json!({"version": "2", "tasks": [
        {"name": "bench", "container": image, "command": "true"}
    ]});
    std::fs::write(project.path().join("sykli.json"), graph.to_string())
        .context("failed to write sykli.json")?;

    // Warm up every path (image cache, engine, page cache).
    for _ in 0..2 {
        sykli_run(&exec, &req).await?;
        sykli_cli_run(&sykli_bin, project.path())?;
        docker_run(&image)?;
    }
    let mut sykli = Vec::with_capacity(reps);
    let mut whole = Vec::with_capacity(reps);
    let mut cli = Vec::with_capacity(reps);
    // Interleaved, so drift in engine load hits all alike.
    for _ in 0..reps {
        sykli.push(sykli_run(&exec, &req).await?);
        whole.push(sykli_cli_run(&sykli_bin, project.path())?);
        cli.push(docker_run(&image)?);
    }
    let (s_mean, s_median) = stats(&sykli);
    let (w_mean, w_median) = stats(&whole);
    let (c_mean, c_median) = stats(&cli);
    println!(
        "container task `true` in {image}, {reps} repetitions (engine {})",
        exec.host()
    );
    println!(
        "  sykli DockerExecutor : mean {:8.1} ms   median {:8.1} ms",
        ms(s_mean),
        ms(s_median)
    );
    println!(
        "  sykli run (whole CLI): mean {:8.1} ms   median {:8.1} ms",
        ms(w_mean),
        ms(w_median)
    );
    println!(
        "  docker run --rm      : mean {:8.1} ms   median {:8.1} ms",
        ms(c_mean),
        ms(c_median)
    );
    println!(
        "  ratio executor/docker: mean {:8.2}      median {:8.2}   (target <= 1.00)",
        ms(s_mean) / ms(c_mean),
        ms(s_median) / ms(c_median)
    );
    println!(
        "  ratio sykli run/docker: mean {:7.2}      median {:8.2}   (target <= 1.00)",
        ms(w_mean) / ms(c_mean),
        ms(w_median) / ms(c_median)
    );
    Ok(())
}
