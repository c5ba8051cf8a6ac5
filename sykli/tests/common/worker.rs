//! Test support for `sykli worker`: starts the real binary on 127.0.0.1:0, reads the port
//! from its listen line (with a deadline), and can kill -9 it or start it again on the same
//! store.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a worker may take to print its listen line.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running `sykli worker` process.
pub struct Worker {
    child: Option<Child>,
    /// The endpoint it printed (`grpc://127.0.0.1:PORT` or `grpcs://...`).
    pub url: String,
    /// The store directory.
    pub store: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Worker {
    /// Starts `sykli worker --listen 127.0.0.1:0 --store STORE ARGS...`.
    pub fn start(store: &Path, args: &[&str]) -> Worker {
        Worker::start_with_env(store, args, &[])
    }

    /// Like [`Worker::start`], with extra environment variables.
    pub fn start_with_env(store: &Path, args: &[&str], env: &[(&str, &str)]) -> Worker {
        let mut w = Worker {
            child: None,
            url: String::new(),
            store: store.to_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: store.with_extension("worker-stderr.log"),
        };
        w.spawn();
        w
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the worker's stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sykli"));
        cmd.arg("worker")
            .args(["--listen", "127.0.0.1:0", "--store"])
            .arg(&self.store)
            .args(&self.args)
            .env_remove("SYKLI_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sykli worker");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the worker never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_DEADLINE) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sykli worker printed no listen line within {START_DEADLINE:?}; stderr:\n{}",
                    self.stderr()
                );
            }
        };
        let url = line
            .strip_prefix("sykli worker: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from sykli worker: {line:?}"))
            .to_owned();
        self.url = url;
        self.child = Some(child);
    }

    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT` with TLS) for a tonic channel.
    pub fn http_url(&self) -> String {
        if let Some(rest) = self.url.strip_prefix("grpcs://") {
            let port = rest.rsplit(':').next().expect("a port");
            format!("https://localhost:{port}")
        } else {
            self.url.replacen("grpc://", "http://", 1)
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the worker wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILLs the worker and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the worker (-9) and starts it again on the same store (on a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERMs the worker and waits (bounded) for it to exit.
    pub fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        self.sigterm();
        self.wait_exit(deadline)
    }

    /// Sends SIGTERM to the worker.
    pub fn sigterm(&self) {
        let child = self.child.as_ref().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM the worker");
    }

    /// Waits (bounded) for the worker to exit; kills it and panics past the deadline.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the worker") {
                return status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sykli worker did not exit within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}
