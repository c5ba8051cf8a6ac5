//! Start-up overhead of the sandbox executor: `true` tasks through the plain process executor
//! and through the sandbox executor (namespaces, PID 1, mounts), one after another, and
//! `docker run --rm IMAGE true` for scale.
//!
//! ```text
//! cargo run --release -p sykli-bench --bin sandbox -- [TASKS] [DOCKER_RUNS] [IMAGE]
//! ```
//! Defaults: 1,000 tasks, 20 `docker run`s of `sykli-test/busybox` (0 skips Docker; run
//! `.ci/docker-setup.sh` first). Prints per-task mean and median of each and the sandbox's
//! overhead per task (target: <= 5 ms). Linux only; needs the rights to create namespaces.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sykli_runtime::exec::process::ProcessExecutor;
use sykli_runtime::exec::sandbox::{SandboxConfig, SandboxExecutor, SandboxRequest};
use sykli_runtime::exec::{
    Action, ExecIo, ExecOutcome, ExecRequest, Executor, OutputSink, OutputStream,
};
use sykli_runtime::graph::Sandbox;
use tokio_util::sync::CancellationToken;

struct Discard;

impl OutputSink for Discard {
    fn write(&self, _stream: OutputStream, _bytes: &[u8]) {}
}

fn stats(samples: &[Duration]) -> (Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let mean = sorted.iter().sum::<Duration>() / sorted.len().max(1) as u32;
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    (mean, median)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn request(workdir: &Path, sandbox: Option<Sandbox>) -> ExecRequest {
    ExecRequest {
        task: "true".into(),
        action: Action::Shell("true".into()),
        env: BTreeMap::new(),
        inherit_env: true,
        workdir: workdir.to_path_buf(),
        container: None,
        timeout: Some(Duration::from_secs(30)),
        kill_grace: Duration::from_secs(1),
        run_id: "bench".into(),
        background: None,
        sandbox: sandbox.map(|settings| SandboxRequest {
            settings,
            project_root: workdir.to_path_buf(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            visible: Vec::new(),
        }),
    }
}

async fn time_tasks(
    executor: &dyn Executor,
    req: &ExecRequest,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let io = ExecIo {
            attempt: 1,
            output: Arc::new(Discard),
            cancel: CancellationToken::new(),
            operations: None,
        };
        let start = Instant::now();
        let outcome = executor.execute(req, io).await;
        samples.push(start.elapsed());
        if outcome != (ExecOutcome::Exited { code: 0 }) {
            bail!("{}: `true` ended {outcome:?}", executor.name());
        }
    }
    Ok(samples)
}

fn docker_runs(image: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let out = Command::new("docker")
            .args(["run", "--rm", image, "true"])
            .stdin(Stdio::null())
            .output()
            .context("failed to run docker")?;
        samples.push(start.elapsed());
        if !out.status.success() {
            bail!(
                "docker run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(samples)
}

fn main() -> anyhow::Result<()> {
    // This binary is also the sandbox's init.
    sykli_runtime::exec::sandbox::run_init_if_requested();
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let docker: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let image = args
        .next()
        .unwrap_or_else(|| "sykli-test/busybox".to_owned());
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let process = ProcessExecutor::new();
    let sandbox = SandboxExecutor::default();
    let (plain, boxed, net, bare) = rt.block_on(async {
        // Warm up both (page cache, first exec of the init).
        let offline = Some(Sandbox::default());
        let online = Some(Sandbox {
            network: true,
            ..Sandbox::default()
        });
        time_tasks(&process, &request(dir.path(), None), 10).await?;
        time_tasks(&sandbox, &request(dir.path(), offline.clone()), 10).await?;
        let plain = time_tasks(&process, &request(dir.path(), None), tasks).await?;
        let boxed = time_tasks(&sandbox, &request(dir.path(), offline), tasks).await?;
        let net = time_tasks(&sandbox, &request(dir.path(), online), tasks / 4).await?;
        // Only /usr and the /bin, /lib links: what the per-file /etc mounts cost.
        let few = SandboxExecutor::new(SandboxConfig {
            host_paths: ["/usr", "/bin", "/lib", "/lib64"].map(Into::into).to_vec(),
            ..SandboxConfig::default()
        });
        let bare = time_tasks(
            &few,
            &request(dir.path(), Some(Sandbox::default())),
            tasks / 4,
        )
        .await?;
        anyhow::Ok((plain, boxed, net, bare))
    })?;
    let (pm, pmed) = stats(&plain);
    let (sm, smed) = stats(&boxed);
    println!("{tasks} `true` tasks, one at a time:");
    println!(
        "  process executor: mean {:.2} ms, median {:.2} ms",
        ms(pm),
        ms(pmed)
    );
    println!(
        "  sandbox executor: mean {:.2} ms, median {:.2} ms",
        ms(sm),
        ms(smed)
    );
    println!(
        "  sandbox overhead per task: {:.2} ms mean, {:.2} ms median (target <= 5 ms)",
        ms(sm.saturating_sub(pm)),
        ms(smed.saturating_sub(pmed))
    );
    let (nm, nmed) = stats(&net);
    println!(
        "  sandbox with `network: true` ({} tasks, no network namespace): mean {:.2} ms, median {:.2} ms",
        tasks / 4,
        ms(nm),
        ms(nmed)
    );
    let (bm, bmed) = stats(&bare);
    println!(
        "  sandbox with only /usr, /bin, /lib, /lib64 ({} tasks): mean {:.2} ms, median {:.2} ms",
        tasks / 4,
        ms(bm),
        ms(bmed)
    );
    if docker > 0 {
        let d = docker_runs(&image, docker)?;
        let (dm, dmed) = stats(&d);
        println!(
            "  docker run --rm {image} true ({docker} runs): mean {:.1} ms, median {:.1} ms ({:.0}x the sandbox's mean)",
            ms(dm),
            ms(dmed),
            dm.as_secs_f64() / sm.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
