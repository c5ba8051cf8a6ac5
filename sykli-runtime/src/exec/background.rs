//! Background tasks: run-scoped host services for the process executor.
//!
//! A background task's command is started in its own process group, like any shell task, but
//! the attempt ends as soon as its `ready` check exits 0: the task passes, its dependents
//! start, and the command keeps running. [`Services`] holds every such command of the run;
//! [`Executor::shutdown`](super::Executor::shutdown) stops them when the run ends (SIGTERM to
//! the group, the grace period, SIGKILL), and dropping [`Services`] SIGKILLs whatever is left,
//! so no process outlives the run.
//!
//! If `ready` passes before the command is started, the service is already running (started
//! outside this run): the command is not started and nothing is stopped at the end. A command
//! that exits before `ready` passes fails the task with its exit code; one that is still not
//! ready after `ready_timeout` is stopped and the task errors, showing the last check's output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::process::{ChildSpec, run_child, shell_command};
use super::{BackgroundSpec, ExecIo, ExecOutcome, ExecRequest, OutputSink, OutputStream};

/// First pause between two readiness checks; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);
/// How much of the last readiness check's output is kept to explain a timeout.
const PROBE_TAIL: usize = 4096;
/// A readiness wait longer than any run (used when `ready_timeout` overflows an `Instant`).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The background commands one run started, until [`Services::stop_all`].
#[derive(Default)]
pub(super) struct Services {
    running: Mutex<Vec<Running>>,
}

struct Running {
    task: String,
    started: Instant,
    stop: CancellationToken,
    done: JoinHandle<ExecOutcome>,
    output: Arc<dyn OutputSink>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_list()
            .entries(running.iter().map(|r| &r.task))
            .finish()
    }
}

impl Services {
    /// Stops every background command (SIGTERM, grace, SIGKILL; see [`run_child`]) and waits
    /// for them, noting in each task's log how it ended.
    pub(super) async fn stop_all(&self) {
        let running =
            std::mem::take(&mut *self.running.lock().unwrap_or_else(PoisonError::into_inner));
        for r in &running {
            r.stop.cancel();
        }
        for r in running {
            let lived =
                humantime::format_duration(Duration::from_secs(r.started.elapsed().as_secs()));
            let note = match r.done.await {
                Ok(ExecOutcome::Cancelled) => {
                    format!(
                        "sykli: stopped background task `{}` at the end of the run (it ran {lived})\n",
                        r.task
                    )
                }
                Ok(ExecOutcome::Exited { code }) => format!(
                    "sykli: background task `{}` had exited with code {code} before the run ended\n",
                    r.task
                ),
                Ok(other) => format!("sykli: background task `{}` ended: {other:?}\n", r.task),
                Err(e) => format!(
                    "sykli: background task `{}` ended abnormally: {e}\n",
                    r.task
                ),
            };
            r.output.write(OutputStream::Stderr, note.as_bytes());
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        // Not stopped through `stop_all` (the run was dropped): dropping each command's future
        // SIGKILLs its process group.
        let running = self
            .running
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for r in running.drain(..) {
            r.done.abort();
        }
    }
}

/// Starts `command` as a background task and waits for `spec.ready` to pass.
pub(super) async fn start(
    services: &Services,
    escalate: &CancellationToken,
    req: &ExecRequest,
    command: &str,
    spec: &BackgroundSpec,
    io: ExecIo,
) -> ExecOutcome {
    // A document may ask for any number of seconds: past what an `Instant` holds, no deadline.
    let deadline = Instant::now()
        .checked_add(spec.ready_timeout)
        .unwrap_or_else(|| Instant::now() + FOREVER);
    let probe = Probe {
        ready: &spec.ready,
        req,
        escalate,
        cancel: &io.cancel,
    };
    // Already running (started outside this run)?
    let first = probe.check(deadline).await;
    match first {
        Check::Ready => {
            let note = format!(
                "sykli: `{}` already passes: using the service that is running; `{command}` is not started\n",
                spec.ready
            );
            io.output.write(OutputStream::Stderr, note.as_bytes());
            return ExecOutcome::Exited { code: 0 };
        }
        Check::Cancelled => return ExecOutcome::Cancelled,
        Check::NotReady(_) => {}
    }

    let (mut cmd, program) = shell_command(command, req);
    let stop = CancellationToken::new();
    let env: BTreeMap<String, String> = req.env.clone();
    let workdir: PathBuf = req.workdir.clone();
    let (inherit_env, kill_grace) = (req.inherit_env, req.kill_grace);
    let output = io.output.clone();
    let (child_stop, child_escalate) = (stop.clone(), escalate.clone());
    cmd.kill_on_drop(true);
    let mut done = tokio::spawn(async move {
        let spec = ChildSpec {
            env: &env,
            inherit_env,
            workdir: &workdir,
            timeout: None,
            kill_grace,
            output,
            cancel: child_stop,
        };
        run_child(cmd, &program, spec, &child_escalate).await
    });
    let stop_now = |done: JoinHandle<ExecOutcome>, stop: CancellationToken| async move {
        stop.cancel();
        let _ = done.await;
    };

    let mut pause = FIRST_POLL;
    let mut last = match first {
        Check::NotReady(out) => out,
        _ => String::new(),
    };
    loop {
        let wait = pause.min(deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            ended = &mut done => {
                let message = match ended {
                    Ok(ExecOutcome::Exited { code }) => format!(
                        "`{command}` exited with code {code} before `{}` passed",
                        spec.ready
                    ),
                    Ok(ExecOutcome::Errored { message, .. }) => message,
                    Ok(other) => format!("`{command}` ended before it was ready: {other:?}"),
                    Err(e) => format!("`{command}` ended abnormally before it was ready: {e}"),
                };
                return ExecOutcome::errored("starting a background task", message);
            }
            () = io.cancel.cancelled() => {
                stop_now(done, stop).await;
                return ExecOutcome::Cancelled;
            }
            () = tokio::time::sleep(wait) => {}
        }
        if Instant::now() >= deadline {
            stop_now(done, stop).await;
            let mut message = format!(
                "`{}` did not pass within {}; stopped `{command}`",
                spec.ready,
                humantime::format_duration(spec.ready_timeout)
            );
            if !last.trim().is_empty() {
                message.push_str(&format!("; the last check printed: {}", last.trim()));
            }
            return ExecOutcome::errored("waiting for a background task to be ready", message);
        }
        match probe.check(deadline).await {
            Check::Ready => break,
            Check::Cancelled => {
                stop_now(done, stop).await;
                return ExecOutcome::Cancelled;
            }
            Check::NotReady(out) => last = out,
        }
        pause = (pause * 2).min(MAX_POLL);
    }
    if done.is_finished() {
        // Ready, but the command is gone: `ready` saw something else, or it forked away.
        let ended = done.await;
        return ExecOutcome::errored(
            "starting a background task",
            format!(
                "`{}` passed, but `{command}` had already ended ({ended:?})",
                spec.ready
            ),
        );
    }
    let note = format!(
        "sykli: `{}` passed: `{command}` runs in the background until the run ends\n",
        spec.ready
    );
    io.output.write(OutputStream::Stderr, note.as_bytes());
    services
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Running {
            task: req.task.clone(),
            started: Instant::now(),
            stop,
            done,
            output: io.output,
        });
    ExecOutcome::Exited { code: 0 }
}

enum Check {
    Ready,
    NotReady(String),
    Cancelled,
}

/// One run of the readiness check, bounded by the deadline, its output kept for errors.
struct Probe<'a> {
    ready: &'a str,
    req: &'a ExecRequest,
    escalate: &'a CancellationToken,
    cancel: &'a CancellationToken,
}

impl Probe<'_> {
    async fn check(&self, deadline: Instant) -> Check {
        let tail = Arc::new(Tail::default());
        let (cmd, program) = shell_command(self.ready, self.req);
        let spec = ChildSpec {
            env: &self.req.env,
            inherit_env: self.req.inherit_env,
            workdir: &self.req.workdir,
            // At least a moment, so a check at the deadline still gets to run once.
            timeout: Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(100)),
            ),
            kill_grace: self.req.kill_grace.min(Duration::from_secs(1)),
            output: tail.clone(),
            cancel: self.cancel.clone(),
        };
        match run_child(cmd, &program, spec, self.escalate).await {
            ExecOutcome::Exited { code: 0 } => Check::Ready,
            ExecOutcome::Cancelled => Check::Cancelled,
            ExecOutcome::Exited { code } => {
                Check::NotReady(format!("(exit {code}) {}", tail.text()))
            }
            ExecOutcome::TimedOut => Check::NotReady("(the check itself timed out)".to_owned()),
            ExecOutcome::Errored { message, .. } => Check::NotReady(message),
        }
    }
}

/// Keeps the last [`PROBE_TAIL`] bytes written to it.
#[derive(Default)]
struct Tail(Mutex<Vec<u8>>);

impl Tail {
    fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl OutputSink for Tail {
    fn write(&self, _stream: OutputStream, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        buf.extend_from_slice(bytes);
        if buf.len() > PROBE_TAIL {
            let cut = buf.len() - PROBE_TAIL;
            buf.drain(..cut);
        }
    }
}
