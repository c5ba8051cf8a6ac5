//! The host's `spawn`: a granted program run with only the environment the plugin gave it,
//! its output streamed live into the task's log, killed (its whole process group) at the
//! call's deadline or when the task is cancelled.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::exec::{OutputSink, OutputStream};

/// One program to run for a plugin, its grants already checked.
pub struct Spawn {
    /// The program (absolute).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Where its output goes.
    pub sink: Arc<dyn OutputSink>,
    /// Stops it when cancelled.
    pub cancel: CancellationToken,
    /// Stops it when reached.
    pub deadline: Instant,
}

impl Spawn {
    /// Runs it to completion: its exit code (128 + N when killed by signal N).
    pub async fn run(self) -> Result<i32, String> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.program.display()))?;
        let pid = child.id();
        let pumps = [
            child
                .stdout
                .take()
                .map(|r| pump(r, self.sink.clone(), OutputStream::Stdout)),
            child
                .stderr
                .take()
                .map(|r| pump(r, self.sink.clone(), OutputStream::Stderr)),
        ];
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let stopped = tokio::select! {
            status = child.wait() => Ok(status.map_err(|e| format!("waiting for it: {e}"))?),
            () = self.cancel.cancelled() => Err("the task was cancelled"),
            () = tokio::time::sleep_until(deadline) => Err("the call's deadline passed"),
        };
        let status = match stopped {
            Ok(status) => status,
            Err(why) => {
                if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.wait().await;
                finish(pumps).await;
                return Err(format!("killed: {why}"));
            }
        };
        finish(pumps).await;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1))
    }
}

fn pump(
    mut r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    sink: Arc<dyn OutputSink>,
    stream: OutputStream,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.write(stream, &buf[..n]);
        }
    })
}

/// Waits for the output pumps, at most a second (a grandchild outside the process group
/// may keep a pipe open).
async fn finish(pumps: [Option<tokio::task::JoinHandle<()>>; 2]) {
    for p in pumps.into_iter().flatten() {
        let abort = p.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), p)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
