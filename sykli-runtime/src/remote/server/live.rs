//! Live output: while an action runs, its (masked) stdout and stderr can be read with
//! ByteStream `Read` under the names the operation's metadata gives
//! (`stdout_stream_name`, `stderr_stream_name`): `logs/{operation id}/stdout|stderr`. A
//! read follows the log as it grows and ends when the action does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bazel_remote_apis::google::bytestream::ReadResponse;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;
use tonic::Status;
use tonic::codegen::BoxStream;

/// Bytes per `ReadResponse`.
const CHUNK: u64 = 256 * 1024;

/// How far one log has been written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes written to the log file so far.
    pub len: u64,
    /// Whether the log is complete.
    pub done: bool,
}

/// The writer's side of one live log.
pub type ProgressTx = watch::Sender<Progress>;

/// The live logs of running actions, by stream name.
#[derive(Debug, Default)]
pub struct LiveLogs {
    logs: Mutex<HashMap<String, (PathBuf, watch::Receiver<Progress>)>>,
}

/// The stream name of one log of the operation with id `op`.
pub fn stream_name(op: &str, stream: &str) -> String {
    format!("logs/{op}/{stream}")
}

impl LiveLogs {
    fn logs(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (PathBuf, watch::Receiver<Progress>)>> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the log written to `path` under `name`; returns the writer's side.
    pub fn register(&self, name: String, path: PathBuf) -> ProgressTx {
        let (tx, rx) = watch::channel(Progress::default());
        self.logs().insert(name, (path, rx));
        tx
    }

    /// Forgets a log (its action is done and its directory going).
    pub fn remove(&self, name: &str) {
        self.logs().remove(name);
    }

    /// If `resource` names a live log (`[instance/]logs/{id}/{stream}`), the stream of its
    /// bytes from `offset`.
    pub fn read(
        &self,
        resource: &str,
        offset: u64,
    ) -> Option<Result<BoxStream<ReadResponse>, Status>> {
        let segs: Vec<&str> = resource.split('/').collect();
        let i = segs.iter().position(|s| *s == "logs")?;
        if segs.len() != i + 3 {
            return None;
        }
        let name = segs[i..].join("/");
        let Some((path, rx)) = self.logs().get(&name).cloned() else {
            return Some(Err(Status::not_found(format!(
                "no running action has the log \"{}\" (it finished, or never ran here): read \
                 the log from the ActionResult",
                resource.escape_default()
            ))));
        };
        Some(Ok(follow(path, rx, offset)))
    }
}

fn follow(path: PathBuf, rx: watch::Receiver<Progress>, offset: u64) -> BoxStream<ReadResponse> {
    let state = (rx, path, None::<tokio::fs::File>, offset);
    Box::pin(futures::stream::unfold(Some(state), |state| async move {
        let (mut rx, path, mut file, offset) = state?;
        loop {
            let p = *rx.borrow_and_update();
            if offset < p.len {
                if file.is_none() {
                    let mut f = tokio::fs::File::open(&path).await.ok()?;
                    f.seek(std::io::SeekFrom::Start(offset)).await.ok()?;
                    file = Some(f);
                }
                let f = file.as_mut()?;
                let mut buf = vec![0u8; (p.len - offset).min(CHUNK) as usize];
                if let Err(e) = f.read_exact(&mut buf).await {
                    let status = Status::internal(format!("failed to read a live log: {e}"));
                    return Some((Err(status), None));
                }
                let next = offset + buf.len() as u64;
                return Some((Ok(ReadResponse { data: buf }), Some((rx, path, file, next))));
            }
            if p.done || rx.changed().await.is_err() {
                return None;
            }
        }
    }))
}

/// The live logs of one action: where its log sink reports progress, and the process
/// group its command started as (for resource samples of observers).
#[derive(Debug, Clone)]
pub struct LiveStreams {
    /// Stdout's progress.
    pub stdout: Arc<ProgressTx>,
    /// Stderr's progress.
    pub stderr: Arc<ProgressTx>,
    /// The process group of the action's command once it started (host actions).
    pub pgid: Arc<watch::Sender<Option<u32>>>,
}

impl LiveStreams {
    /// The live logs `stdout` and `stderr`, no process group yet.
    pub fn new(stdout: ProgressTx, stderr: ProgressTx) -> LiveStreams {
        LiveStreams {
            stdout: Arc::new(stdout),
            stderr: Arc::new(stderr),
            pgid: Arc::new(watch::Sender::new(None)),
        }
    }
}
