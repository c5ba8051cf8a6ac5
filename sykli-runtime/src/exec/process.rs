//! The process executor: shell tasks as host processes.
//!
//! Each task runs as `/bin/sh -c <command>` in its own process group, stdin null, stdout and
//! stderr streamed in chunks to the [`OutputSink`]. Stopping a task (timeout, cancellation)
//! sends SIGTERM to the whole group, waits the grace period, then SIGKILLs the group. When
//! the shell exits on its own, whatever it left running in its group is SIGKILLed: no task
//! leaves an orphan behind. (A grandchild that moves itself into a new session with `setsid`
//! escapes the group; catching those needs a cgroup, which this executor does not use.)
//! When the process running the executor dies (even by SIGKILL), the groups of the tasks it
//! was running are SIGKILLed by its [orphan reaper](super::reaper).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::background::{self, Services};
use super::simple_command::direct_argv;
use super::{Action, ExecIo, ExecOutcome, ExecRequest, Executor, OutputSink, OutputStream};

/// How long the output pipes may stay open after the task's group was killed (held by a
/// process that escaped the group) before the executor stops reading them.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
const READ_CHUNK: usize = 64 * 1024;

/// Runs [`Action::Shell`] tasks as host processes, and background tasks as run-scoped host
/// services (see [`super::background`]). Clones share the run's background services.
#[derive(Debug, Clone, Default)]
pub struct ProcessExecutor {
    escalate: CancellationToken,
    services: Arc<Services>,
}

impl ProcessExecutor {
    /// A process executor.
    pub fn new() -> Self {
        ProcessExecutor::default()
    }

    /// Uses `token` to cut grace periods short: once it is cancelled, stopping a task
    /// SIGKILLs its group at once (the scheduler cancels it on a second Ctrl-C).
    pub fn with_escalation(mut self, token: CancellationToken) -> Self {
        self.escalate = token;
        self
    }

    /// The escalation token (see [`ProcessExecutor::with_escalation`]).
    pub fn escalation(&self) -> &CancellationToken {
        &self.escalate
    }

    /// Runs one program (not through a shell) the way shell tasks run: own process group,
    /// streamed output, timeout and cancellation with grace, no orphans.
    pub async fn run_program(
        &self,
        program: &OsStr,
        args: &[&OsStr],
        spec: ChildSpec<'_>,
    ) -> ExecOutcome {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args);
        run_child(cmd, &program.to_string_lossy(), spec, &self.escalate).await
    }
}

/// Where and how a child runs.
pub struct ChildSpec<'a> {
    /// Environment set over the inherited one (or the only one, see `inherit_env`).
    pub env: &'a BTreeMap<String, String>,
    /// Whether the runtime's own environment is passed through beneath `env`.
    pub inherit_env: bool,
    /// Working directory.
    pub workdir: &'a Path,
    /// Wall-clock limit.
    pub timeout: Option<Duration>,
    /// SIGTERM-to-SIGKILL grace.
    pub kill_grace: Duration,
    /// Output destination.
    pub output: Arc<dyn OutputSink>,
    /// Stops the child when cancelled.
    pub cancel: CancellationToken,
}

impl Executor for ProcessExecutor {
    fn name(&self) -> &str {
        "process"
    }

    fn execute<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, ExecOutcome> {
        Box::pin(async move {
            let command = match &req.action {
                Action::Shell(c) => c,
                Action::Native(f) => {
                    return ExecOutcome::errored(
                        "selecting an executor",
                        format!("the process executor cannot run native function `{f}`"),
                    );
                }
            };
            if let Some(spec) = &req.background {
                return background::start(&self.services, &self.escalate, req, command, spec, io)
                    .await;
            }
            let (cmd, program) = shell_command(command, req);
            let spec = ChildSpec {
                env: &req.env,
                inherit_env: req.inherit_env,
                workdir: &req.workdir,
                timeout: req.timeout,
                kill_grace: req.kill_grace,
                output: io.output,
                cancel: io.cancel,
            };
            run_child(cmd, &program, spec, &self.escalate).await
        })
    }

    /// Stops the run's background tasks.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.services.stop_all())
    }
}

/// The command for a shell task's `command` as [`ProcessExecutor`] runs it: simple commands
/// exec'd directly (found on the task's PATH), anything else through `/bin/sh -c`. Returns
/// the command and the program's name for messages.
pub(super) fn shell_command(command: &str, req: &ExecRequest) -> (tokio::process::Command, String) {
    // The PATH the task sees: its own env, else the runtime's when inherited.
    let path = req
        .env
        .get("PATH")
        .map(std::ffi::OsString::from)
        .or_else(|| req.inherit_env.then(|| std::env::var_os("PATH")).flatten());
    match direct_argv(command, path.as_ref()) {
        Some((program, args)) => {
            let mut cmd = tokio::process::Command::new(&program);
            cmd.args(args);
            (cmd, program.display().to_string())
        }
        None => {
            let mut cmd = tokio::process::Command::new("/bin/sh");
            cmd.arg("-c").arg(command);
            (cmd, "/bin/sh".to_owned())
        }
    }
}

/// Kills the group if the future running the child is dropped before it finished.
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
        // The group is dead (killed here or before the guard was disarmed): the reaper
        // must not kill it, nor a later group reusing its id.
        super::reaper::unregister(self.pgid.as_raw());
    }
}

enum Stop {
    TimedOut,
    Cancelled,
}

/// Runs one child in its own process group to its end: output streamed to the sink, the
/// timeout and cancellation honoured with SIGTERM, grace and SIGKILL of the whole group.
pub(super) async fn run_child(
    mut cmd: tokio::process::Command,
    program: &str,
    spec: ChildSpec<'_>,
    escalate: &CancellationToken,
) -> ExecOutcome {
    if spec.cancel.is_cancelled() {
        return ExecOutcome::Cancelled;
    }
    cmd.current_dir(spec.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if !spec.inherit_env {
        cmd.env_clear();
    }
    cmd.envs(spec.env);
    if let Err(e) = super::reaper::ensure() {
        return ExecOutcome::errored(format!("spawning {program}"), e);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let stage = format!("spawning {program}");
            let msg = if !spec.workdir.is_dir() {
                format!(
                    "failed to start {program}: working directory {} does not exist",
                    spec.workdir.display()
                )
            } else {
                format!(
                    "failed to start {program} in {}: {e}",
                    spec.workdir.display()
                )
            };
            return ExecOutcome::errored(stage, msg);
        }
    };
    let Some(pid) = child.id() else {
        return ExecOutcome::errored(
            format!("spawning {program}"),
            "child exited before its pid was read",
        );
    };
    let pgid = Pid::from_raw(pid as i32);
    super::reaper::register(pgid.as_raw());
    let mut guard = GroupGuard { pgid, armed: true };
    spec.output.processes_started(pid);

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let pumps = async {
        tokio::join!(
            pump(stdout, OutputStream::Stdout, &*spec.output),
            pump(stderr, OutputStream::Stderr, &*spec.output),
        )
    };
    let mut pumps = pin!(pumps);
    let mut pumps_done = false;

    let waiter = async {
        let timeout = async {
            match spec.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let stop = tokio::select! {
            status = child.wait() => {
                // The shell is gone; anything it left in its group goes with it.
                let _ = killpg(pgid, Signal::SIGKILL);
                return Ok(status);
            }
            () = timeout => Stop::TimedOut,
            () = spec.cancel.cancelled() => Stop::Cancelled,
        };
        let _ = killpg(pgid, Signal::SIGTERM);
        let grace = async {
            // Wait for the shell, then for the rest of its group, up to the grace period.
            let _ = child.wait().await;
            while group_alive(pgid) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            () = grace => {}
            () = tokio::time::sleep(spec.kill_grace) => {}
            () = escalate.cancelled() => {}
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
        Err(stop)
    };
    let mut waiter = pin!(waiter);
    let result = loop {
        tokio::select! {
            r = &mut waiter => break r,
            _ = &mut pumps, if !pumps_done => pumps_done = true,
        }
    };
    guard.armed = false;
    if !pumps_done {
        // The group is dead; a pipe still open belongs to a process that left the group.
        let _ = tokio::time::timeout(DRAIN_LIMIT, &mut pumps).await;
    }
    match result {
        Ok(Ok(status)) => ExecOutcome::Exited {
            code: exit_code(status),
        },
        Ok(Err(e)) => ExecOutcome::errored(
            format!("waiting for {program}"),
            format!("failed to wait for {program}: {e}"),
        ),
        Err(Stop::TimedOut) => ExecOutcome::TimedOut,
        Err(Stop::Cancelled) => ExecOutcome::Cancelled,
    }
}

/// Whether any live process is left in the group. Zombies do not count: a killed grandchild
/// whose parent died is reparented to init and may stay a zombie until init reaps it, which
/// would otherwise stretch every stop by however long init takes.
fn group_alive(pgid: Pid) -> bool {
    if killpg(pgid, None).is_err() {
        return false;
    }
    live_members(pgid.as_raw()).unwrap_or(true)
}

/// Whether `/proc` shows a member of process group `pgid` that is not a zombie; `None` when
/// `/proc` cannot be read (then the caller assumes the group is alive).
fn live_members(pgid: i32) -> Option<bool> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // exited while we looked
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        if group == Some(pgid) && state != Some("Z") && state != Some("X") {
            return Some(true);
        }
    }
    Some(false)
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

async fn pump<R: AsyncRead + Unpin>(
    reader: Option<R>,
    stream: OutputStream,
    sink: &dyn OutputSink,
) {
    let Some(mut reader) = reader else { return };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => sink.write(stream, &buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    /// Regression: a killed task whose processes are only zombies (not yet reaped by their
    /// parent or by init) was taken for alive, so every timeout waited out the grace period.
    #[test]
    fn a_group_of_only_zombies_is_not_alive() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "exec sleep 30"])
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let pgid = Pid::from_raw(child.id() as i32);
        assert!(group_alive(pgid), "a sleeping group is alive");
        killpg(pgid, Signal::SIGKILL).expect("kill the group");
        // Unreaped, the killed leader is a zombie that still holds the group.
        while live_members(pgid.as_raw()) == Some(true) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            killpg(pgid, None).is_ok(),
            "the zombie still holds the group"
        );
        assert!(!group_alive(pgid), "a group of zombies is not alive");
        child.wait().expect("reap");
        assert!(!group_alive(pgid));
    }
}
