//! Test support for `sykli serve` pools: the real binary as serve and as joined workers
//! (first stdout line read with a deadline, stderr kept in a file), signals, and a REAPI
//! client that executes shell actions.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use prost::Message;
use sykli_runtime::remote::client::execute::{ExecuteOptions, Execution};
use sykli_runtime::remote::client::{Blob, BlobData, ClientOptions, RemoteClient};
use sykli_runtime::remote::endpoint::Endpoint;
use sykli_runtime::remote::server::digests::BlobDigest;
use tokio_util::sync::CancellationToken;

/// How long a process may take to print its first line.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running `sykli` process (serve or a joined worker).
pub struct Proc {
    child: Option<Child>,
    /// Its first stdout line.
    pub line: String,
    args: Vec<String>,
    log: PathBuf,
}

impl Proc {
    /// Starts `sykli ARGS...`, its stderr appended to `log`, and waits for its first line.
    pub fn start(args: &[String], log: &Path) -> Proc {
        let mut p = Proc {
            child: None,
            line: String::new(),
            args: args.to_vec(),
            log: log.to_owned(),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the stderr log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sykli"))
            .args(&self.args)
            .env_remove("SYKLI_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sykli");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        match rx.recv_timeout(START_DEADLINE) {
            Ok(l) => self.line = l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sykli {} printed no first line within {START_DEADLINE:?}; stderr:\n{}",
                    self.args.join(" "),
                    self.stderr()
                );
            }
        }
        self.child = Some(child);
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `sig`.
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("signal the process");
    }

    /// SIGKILLs and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again with the same arguments.
    pub fn respawn(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Whether it has exited (reaping it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten();
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Waits (bounded) for it to exit.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let until = Instant::now() + deadline;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < until,
                "the process did not exit within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until its stderr satisfies `pred`; panics with the log past the
    /// deadline.
    pub fn wait_log(&self, what: &str, deadline: Duration, pred: impl Fn(&str) -> bool) {
        let until = Instant::now() + deadline;
        loop {
            if pred(&self.stderr()) {
                return;
            }
            assert!(
                Instant::now() < until,
                "no {what} within {deadline:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A stopped process must run again to die cleanly.
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
        }
        self.kill9();
    }
}

/// A serve and the directory holding its store and logs.
pub struct Pool {
    /// The serve process.
    pub serve: Proc,
    /// Its URL.
    pub url: String,
    /// The test directory.
    pub dir: PathBuf,
    /// Joined workers.
    pub workers: Vec<Proc>,
    heartbeat: String,
}

impl Pool {
    /// Starts `sykli serve` on 127.0.0.1:0 with `--heartbeat HEARTBEAT` and `extra` flags.
    pub fn start(dir: &Path, heartbeat: &str, extra: &[&str]) -> Pool {
        let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--store"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(dir.join("serve-store").display().to_string());
        args.extend(["--heartbeat".to_string(), heartbeat.to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let serve = Proc::start(&args, &dir.join("serve.log"));
        let url = serve
            .line
            .strip_prefix("sykli serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from serve: {:?}", serve.line))
            .to_owned();
        Pool {
            serve,
            url,
            dir: dir.to_owned(),
            workers: Vec::new(),
            heartbeat: heartbeat.to_owned(),
        }
    }

    /// Starts serve again on its store and port after a kill -9.
    pub fn restart_serve(&mut self) {
        self.serve.kill9();
        let addr = self.url.trim_start_matches("grpc://").to_owned();
        let mut args = self.serve.args.clone();
        if let Some(i) = args.iter().position(|a| a == "127.0.0.1:0") {
            args[i] = addr;
        }
        self.serve.args = args;
        // The port was just freed; binding it again may race its release: bounded tries.
        for attempt in 0..50 {
            let log = self.serve.stderr();
            self.serve.spawn();
            if self.serve.line.starts_with("sykli serve: listening on ") {
                return;
            }
            let _ = log;
            assert!(
                attempt < 49,
                "serve did not restart: {}",
                self.serve.stderr()
            );
        }
    }

    /// Joins a worker with `jobs` slots; returns its index.
    pub fn add_worker(&mut self, jobs: usize, extra: &[&str]) -> usize {
        let i = self.workers.len();
        let mut args: Vec<String> = vec![
            "worker".into(),
            "--join".into(),
            self.url.clone(),
            "--store".into(),
            self.dir.join(format!("worker-{i}")).display().to_string(),
            "--jobs".into(),
            jobs.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let w = Proc::start(&args, &self.dir.join(format!("worker-{i}.log")));
        assert!(w.line.starts_with("sykli worker: joined"), "{}", w.line);
        self.workers.push(w);
        i
    }

    /// The index of the worker with process id `pid`.
    pub fn worker_of(&self, pid: i32) -> usize {
        self.workers
            .iter()
            .position(|w| w.child.as_ref().is_some_and(|c| c.id() as i32 == pid))
            .unwrap_or_else(|| panic!("no worker has pid {pid}"))
    }

    /// `sykli workers URL --json`'s data.
    pub fn status(&self) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_sykli"))
            .args(["workers", &self.url, "--json"])
            .env_remove("SYKLI_TOKEN")
            .output()
            .expect("run sykli workers");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "sykli workers printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(v["ok"], true, "{v}");
        v["data"].clone()
    }

    /// Waits (bounded) until the status satisfies `pred`.
    pub fn wait_status(
        &self,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let until = Instant::now() + deadline;
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < until, "no {what} within {deadline:?}: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A REAPI client of `url`.
pub async fn client(url: &str) -> RemoteClient {
    let opts = ClientOptions::new(Endpoint::parse(url).expect("endpoint"));
    RemoteClient::connect(&opts).await.expect("connect")
}

/// Uploads a `sh -c SCRIPT` action (empty input root, platform `props`) and returns its
/// digest.
pub async fn shell_action(
    client: &RemoteClient,
    script: &str,
    props: &[(&str, &str)],
    do_not_cache: bool,
) -> reapi::Digest {
    let f = client.function();
    let command = reapi::Command {
        arguments: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
    .encode_to_vec();
    let root = reapi::Directory::default().encode_to_vec();
    let command_digest = BlobDigest::of(f, &command).to_reapi();
    let root_digest = BlobDigest::of(f, &root).to_reapi();
    let action = reapi::Action {
        command_digest: Some(command_digest.clone()),
        input_root_digest: Some(root_digest.clone()),
        do_not_cache,
        platform: Some(reapi::Platform {
            properties: props
                .iter()
                .map(|(n, v)| reapi::platform::Property {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let action_digest = BlobDigest::of(f, &action).to_reapi();
    client
        .upload_missing(vec![
            Blob {
                digest: command_digest,
                data: BlobData::Bytes(command),
            },
            Blob {
                digest: root_digest,
                data: BlobData::Bytes(root),
            },
            Blob {
                digest: action_digest.clone(),
                data: BlobData::Bytes(action),
            },
        ])
        .await
        .expect("upload the action");
    action_digest
}

/// Executes `action` to its response (skipping the cache).
pub async fn execute(client: &RemoteClient, action: &reapi::Digest) -> reapi::ExecuteResponse {
    let opts = ExecuteOptions {
        attempt: 1,
        skip_cache_lookup: true,
        secrets: None,
        queue_timeout: Duration::from_secs(120),
        cancel: CancellationToken::new(),
        live: None,
        platform: String::new(),
        operations: None,
        metadata: None,
    };
    match client.execute(action, &opts).await.expect("execute") {
        Execution::Done { response, .. } => *response,
        Execution::Cancelled => panic!("cancelled"),
    }
}

/// The status code and exit code of a response.
pub fn outcome(r: &reapi::ExecuteResponse) -> (i32, Option<i32>, String) {
    let st = r.status.clone().unwrap_or_default();
    (st.code, r.result.as_ref().map(|r| r.exit_code), st.message)
}

/// Waits (bounded) until `path` exists; returns its trimmed content.
pub fn wait_file(path: &Path, deadline: Duration) -> String {
    let until = Instant::now() + deadline;
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s.trim().to_owned();
        }
        assert!(
            Instant::now() < until,
            "{} did not appear within {deadline:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Collects live output, and when the first bytes came.
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<(Vec<u8>, Option<Instant>)>);

impl sykli_runtime::exec::OutputSink for Collect {
    fn write(&self, _stream: sykli_runtime::exec::OutputStream, bytes: &[u8]) {
        let mut g = self.0.lock().unwrap();
        g.0.extend_from_slice(bytes);
        g.1.get_or_insert_with(Instant::now);
    }
}

/// Executes `action` following its live output: the response, the bytes seen live, and how
/// long before the response the first of them came.
pub async fn execute_live(
    client: &RemoteClient,
    action: &reapi::Digest,
) -> (reapi::ExecuteResponse, Vec<u8>, Duration) {
    let sink = std::sync::Arc::new(Collect::default());
    let opts = ExecuteOptions {
        attempt: 1,
        skip_cache_lookup: true,
        secrets: None,
        queue_timeout: Duration::from_secs(120),
        cancel: CancellationToken::new(),
        live: Some(sink.clone()),
        platform: String::new(),
        operations: None,
        metadata: None,
    };
    match client.execute(action, &opts).await.expect("execute") {
        Execution::Done { response, .. } => {
            let (seen, first) = sink.0.lock().unwrap().clone();
            let ahead = first.map_or(Duration::ZERO, |t| t.elapsed());
            (*response, seen, ahead)
        }
        Execution::Cancelled => panic!("cancelled"),
    }
}
