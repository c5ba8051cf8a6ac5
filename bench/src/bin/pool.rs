//! A `sykli serve` pool over loopback with joined `sykli worker --join` processes:
//!
//! 1. throughput: ACTIONS (default 1,000) distinct short actions (`sh -c true`) through
//!    serve with 1, 2 and 3 workers (JOBS slots each, default 2), CONCURRENCY (64) in
//!    flight from one client;
//! 2. failover: the time from a worker's death to its action running on another worker:
//!    kill -9 (the stream breaks at once) and SIGSTOP (a hang: found by missed heartbeats,
//!    with `--misses 1` and the default 3), heartbeat 500 ms, five times each.
//!
//! Build first: `cargo build --release -p sykli -p sykli-bench`, then
//! `target/release/pool [ACTIONS] [JOBS]`. The `sykli` binary is `$SYKLI_BIN` or the one
//! next to this benchmark.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use prost::Message;
use sykli_bench::sykli_bin;
use sykli_runtime::remote::client::execute::{ExecuteOptions, Execution};
use sykli_runtime::remote::client::{Blob, BlobData, ClientOptions, RemoteClient};
use sykli_runtime::remote::endpoint::Endpoint;
use sykli_runtime::remote::server::digests::BlobDigest;
use tokio_util::sync::CancellationToken;

const CONCURRENCY: usize = 64;
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A child process killed on drop; its first stdout line read with a deadline.
struct Proc {
    child: Child,
    line: String,
}

impl Proc {
    fn start(sykli: &Path, args: &[String]) -> Result<Proc> {
        let mut child = Command::new(sykli)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to start sykli")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {}
        });
        match rx.recv_timeout(START_DEADLINE) {
            Ok(line) => Ok(Proc { child, line }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "sykli {} printed nothing within {START_DEADLINE:?}",
                    args.join(" ")
                )
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child this process started and has not reaped.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Pool {
    /// Kept to stop serve on drop.
    _serve: Proc,
    url: String,
    workers: Vec<Proc>,
    dir: PathBuf,
    sykli: PathBuf,
}

impl Pool {
    fn start(sykli: &Path, dir: &Path, serve_args: &[&str]) -> Result<Pool> {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--store".into(),
            dir.join("serve").display().to_string(),
        ];
        args.extend(serve_args.iter().map(|s| s.to_string()));
        let serve = Proc::start(sykli, &args)?;
        let url = serve
            .line
            .strip_prefix("sykli serve: listening on ")
            .context("unexpected first line from serve")?
            .to_owned();
        Ok(Pool {
            _serve: serve,
            url,
            workers: Vec::new(),
            dir: dir.to_owned(),
            sykli: sykli.to_owned(),
        })
    }

    fn add_worker(&mut self, jobs: usize) -> Result<()> {
        let i = self.workers.len();
        let args: Vec<String> = vec![
            "worker".into(),
            "--join".into(),
            self.url.clone(),
            "--store".into(),
            self.dir.join(format!("w{i}")).display().to_string(),
            "--jobs".into(),
            jobs.to_string(),
        ];
        let w = Proc::start(&self.sykli, &args)?;
        if !w.line.starts_with("sykli worker: joined") {
            bail!("unexpected first line from a worker: {}", w.line);
        }
        self.workers.push(w);
        Ok(())
    }
}

async fn upload_action(client: &RemoteClient, script: &str) -> Result<reapi::Digest> {
    let f = client.function();
    let command = reapi::Command {
        arguments: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
    .encode_to_vec();
    let root = reapi::Directory::default().encode_to_vec();
    let cd = BlobDigest::of(f, &command).to_reapi();
    let rd = BlobDigest::of(f, &root).to_reapi();
    let action = reapi::Action {
        command_digest: Some(cd.clone()),
        input_root_digest: Some(rd.clone()),
        ..Default::default()
    }
    .encode_to_vec();
    let ad = BlobDigest::of(f, &action).to_reapi();
    client
        .upload_missing(vec![
            Blob {
                digest: cd,
                data: BlobData::Bytes(command),
            },
            Blob {
                digest: rd,
                data: BlobData::Bytes(root),
            },
            Blob {
                digest: ad.clone(),
                data: BlobData::Bytes(action),
            },
        ])
        .await?;
    Ok(ad)
}

async fn execute(client: &RemoteClient, action: &reapi::Digest) -> Result<i32> {
    let opts = ExecuteOptions {
        attempt: 1,
        skip_cache_lookup: true,
        secrets: None,
        queue_timeout: Duration::from_secs(600),
        cancel: CancellationToken::new(),
        live: None,
        platform: String::new(),
        operations: None,
        metadata: None,
    };
    match client.execute(action, &opts).await? {
        Execution::Done { response, .. } => {
            let st = response.status.clone().unwrap_or_default();
            if st.code != 0 {
                bail!("the action failed: {}", st.message);
            }
            Ok(response.result.map_or(-1, |r| r.exit_code))
        }
        Execution::Cancelled => bail!("cancelled"),
    }
}

async fn connect(url: &str) -> Result<RemoteClient> {
    Ok(RemoteClient::connect(&ClientOptions::new(Endpoint::parse(url)?)).await?)
}

async fn throughput(sykli: &Path, workers: usize, jobs: usize, actions: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut pool = Pool::start(sykli, dir.path(), &[])?;
    for _ in 0..workers {
        pool.add_worker(jobs)?;
    }
    let client = connect(&pool.url).await?;
    let tag: u64 = rand::random();
    let mut digests = Vec::with_capacity(actions);
    for i in 0..actions {
        digests.push(upload_action(&client, &format!("true {tag}-{i}")).await?);
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(actions);
    for d in digests {
        let (client, sem) = (client.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            execute(&client, &d).await
        }));
    }
    for t in tasks {
        let code = t.await??;
        if code != 0 {
            bail!("an action exited {code}");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(actions as f64 / secs)
}

/// Time from `kill_with` hitting the worker running a long action to that action starting on
/// another worker.
async fn failover(sykli: &Path, sig: i32, misses: &str) -> Result<Duration> {
    let dir = tempfile::tempdir()?;
    let mut pool = Pool::start(
        sykli,
        dir.path(),
        &["--heartbeat", "500ms", "--misses", misses],
    )?;
    pool.add_worker(1)?;
    pool.add_worker(1)?;
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks)?;
    let client = connect(&pool.url).await?;
    let tag: u64 = rand::random();
    let script = format!("touch {m}/$PPID; sleep 3; echo {tag}", m = marks.display());
    let action = upload_action(&client, &script).await?;
    let run = {
        let client = client.clone();
        tokio::spawn(async move { execute(&client, &action).await })
    };
    let pids = |n: usize| -> Result<Option<Vec<i32>>> {
        let v: Vec<i32> = std::fs::read_dir(&marks)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        Ok((v.len() >= n).then_some(v))
    };
    let until = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(v) = pids(1)? {
            break v[0];
        }
        if Instant::now() > until {
            bail!("the action never started");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let victim = pool
        .workers
        .iter()
        .find(|w| w.pid() == first)
        .context("no worker ran the action")?;
    victim.signal(sig);
    let hit = Instant::now();
    let until = hit + Duration::from_secs(30);
    loop {
        if pids(2)?.is_some() {
            break;
        }
        if Instant::now() > until {
            bail!("the action never ran elsewhere");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = hit.elapsed();
    run.abort();
    Ok(took)
}

fn stats(v: &mut [Duration]) -> String {
    v.sort();
    format!(
        "median {:.0} ms, max {:.0} ms",
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let actions: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let jobs: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let sykli = sykli_bin()?;
    println!(
        "pool throughput: {actions} short actions, {CONCURRENCY} in flight, {jobs} jobs per worker, {} CPUs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for workers in 1..=3 {
        let rate = throughput(&sykli, workers, jobs, actions).await?;
        println!("  {workers} worker(s): {rate:.0} actions/s");
    }
    println!("failover (heartbeat 500 ms; 5 runs each): death -> the action runs elsewhere");
    for (what, sig, misses) in [
        ("kill -9 (stream breaks)", libc::SIGKILL, "3"),
        ("SIGSTOP, --misses 1", libc::SIGSTOP, "1"),
        ("SIGSTOP, --misses 3", libc::SIGSTOP, "3"),
    ] {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(failover(&sykli, sig, misses).await?);
        }
        println!("  {what}: {}", stats(&mut v));
    }
    Ok(())
}
