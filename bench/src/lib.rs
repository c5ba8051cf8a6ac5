//! Helpers shared by the benchmarks (each benchmark is a binary under `src/bin/` that prints
//! its figures; none is a timed test).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The `sykli` binary to measure: `$SYKLI_BIN`, else the one built next to this benchmark
/// (`cargo build --release -p sykli`).
pub fn sykli_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SYKLI_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("failed to locate this benchmark's executable")?;
    let p = exe
        .parent()
        .map(|d| d.join("sykli"))
        .context("benchmark executable has no parent directory")?;
    if !p.is_file() {
        bail!(
            "no sykli binary at {}: build it (`cargo build --release -p sykli`) or set SYKLI_BIN",
            p.display()
        );
    }
    Ok(p)
}

/// A `sykli worker` on 127.0.0.1 (a free port), killed on drop.
pub struct Worker {
    child: Child,
    /// Its `grpc://127.0.0.1:PORT` from the listen line it printed.
    pub url: String,
}

impl Worker {
    /// Starts `sykli worker --listen 127.0.0.1:0 --store STORE ARGS` and waits (at most 60 s)
    /// for its listen line.
    pub fn start(sykli: &Path, store: &Path, args: &[&str]) -> Result<Worker> {
        let mut child = Command::new(sykli)
            .args(["worker", "--listen", "127.0.0.1:0", "--store"])
            .arg(store)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to start sykli worker")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {}
        });
        let mut worker = Worker {
            child,
            url: String::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .context("sykli worker printed no listen line within 60 s")?;
        worker.url = line
            .strip_prefix("sykli worker: listening on ")
            .with_context(|| format!("unexpected line from sykli worker: {line:?}"))?
            .to_owned();
        Ok(worker)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
