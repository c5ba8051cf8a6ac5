//! Approval gates: `env` (a variable is set), `file` (a file appears; polled), `prompt` (a
//! person answers on the terminal), each bounded by the gate's timeout and ended by Ctrl-C.
//! The terminal is read on a thread of its own, so a prompt that gave up never holds up
//! sykli's exit.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use super::task::Shared;
use crate::TaskStatus;
use crate::graph::{Gate, GateStrategy, Task};
use crate::state::journal;

/// Upstream default: an hour.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
const POLL: Duration = Duration::from_millis(200);

/// Waits for the gate (task `i`); returns the task's status and why. A decision recorded
/// by `sykli gate approve|reject` (in the run's directory) settles any gate, from another
/// process, and survives restarts; a resumed gate's timeout counts from when it opened.
pub(super) async fn wait(
    shared: &Shared,
    i: usize,
    task: &Task,
    gate: &Gate,
) -> (TaskStatus, Option<String>) {
    let timeout = gate.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let name = &task.name;
    let waited = shared.gate_opened[i].map_or(Duration::ZERO, |at| {
        Duration::from_millis(crate::events::now_ms().saturating_sub(at))
    });
    let left = timeout.saturating_sub(waited);
    let decided = || journal::gate_decision(&shared.state_dir, &shared.run_id, name);
    if let Some(d) = decided() {
        return journal::decision_status(&d);
    }
    let recorded = async {
        loop {
            tokio::time::sleep(POLL).await;
            if let Some(d) = decided() {
                return journal::decision_status(&d);
            }
        }
    };
    let approval = async {
        match gate.strategy {
            GateStrategy::Env => env_gate(gate),
            GateStrategy::File => file_gate(gate, &shared.project_root).await,
            GateStrategy::Prompt => prompt_gate(shared, task, gate).await,
            GateStrategy::Webhook => (
                TaskStatus::Errored,
                Some(
                    "webhook gates need a sykli server; a local run cannot receive the approval"
                        .into(),
                ),
            ),
        }
    };
    tokio::select! {
        r = approval => r,
        r = recorded => r,
        () = tokio::time::sleep(left) => (
            TaskStatus::Errored,
            Some(format!("gate `{name}` was not approved within {}", humantime::format_duration(timeout))),
        ),
        () = shared.cancel.cancelled() => (
            TaskStatus::Errored,
            Some("cancelled: the run was interrupted".into()),
        ),
    }
}

fn env_gate(gate: &Gate) -> (TaskStatus, Option<String>) {
    let var = gate.env_var.as_deref().unwrap_or_default();
    match std::env::var(var) {
        Ok(v)
            if !v.is_empty()
                && !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no") =>
        {
            (TaskStatus::Passed, None)
        }
        Ok(v) if !v.is_empty() => (
            TaskStatus::Failed,
            Some(format!("not approved: ${var} is `{v}`")),
        ),
        _ => (
            TaskStatus::Failed,
            Some(format!("not approved: ${var} is not set")),
        ),
    }
}

async fn file_gate(gate: &Gate, root: &Path) -> (TaskStatus, Option<String>) {
    let rel = gate.file_path.as_deref().unwrap_or_default();
    let path = root.join(rel);
    loop {
        if path.exists() {
            return (TaskStatus::Passed, None);
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn prompt_gate(shared: &Shared, task: &Task, gate: &Gate) -> (TaskStatus, Option<String>) {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return (
            TaskStatus::Errored,
            Some("gate needs an answer on a terminal (strategy prompt), but stdin is not a terminal; use an env or file gate in CI".into()),
        );
    }
    let _one_at_a_time = shared.prompt_lock.lock().await;
    let question = format!(
        "{} [y/N] ",
        gate.message
            .clone()
            .unwrap_or_else(|| format!("Approve `{}`?", task.name))
    );
    {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\n{question}");
        let _ = err.flush();
    }
    // Ends the question's line if the gate times out or the run is cancelled meanwhile.
    let mut open_line = OpenLine(true);
    let answer = read_stdin_line().await;
    open_line.0 = false;
    match answer {
        Ok(Some(a)) if matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes") => {
            (TaskStatus::Passed, None)
        }
        Ok(Some(_)) => (
            TaskStatus::Failed,
            Some("not approved at the prompt".into()),
        ),
        Ok(None) => (
            TaskStatus::Errored,
            Some("stdin was closed before the prompt was answered".into()),
        ),
        Err(e) => (
            TaskStatus::Errored,
            Some(format!("failed to read the answer: {e}")),
        ),
    }
}

/// Writes a line ending to stderr when dropped while `.0` is set.
struct OpenLine(bool);

impl Drop for OpenLine {
    fn drop(&mut self) {
        if self.0 {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// A request for the next line of stdin, answered on the channel (`None` at end of input).
type LineRequest = oneshot::Sender<std::io::Result<Option<String>>>;

/// The stdin reader thread's request queue, once it is started.
static STDIN_READER: OnceLock<mpsc::Sender<LineRequest>> = OnceLock::new();

/// The next line of stdin, read on a dedicated thread. Not `spawn_blocking`: a blocking
/// read there keeps the tokio runtime from shutting down until someone types a line, so a
/// cancelled or timed-out prompt would hang sykli on exit. A plain thread blocked in
/// `read_line` does not keep the process from exiting. Dropping the returned future (a
/// timeout, Ctrl-C) gives up the request; a line typed after that goes to the next prompt.
async fn read_stdin_line() -> std::io::Result<Option<String>> {
    let requests = match STDIN_READER.get() {
        Some(r) => r,
        None => {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("sykli-stdin".into())
                .spawn(move || serve_stdin_lines(&rx))?;
            // Another prompt may have started one first; ours then ends, its queue closed.
            let _ = STDIN_READER.set(tx);
            STDIN_READER
                .get()
                .ok_or_else(|| std::io::Error::other("stdin reader not started"))?
        }
    };
    let (tx, rx) = oneshot::channel();
    requests
        .send(tx)
        .map_err(|_| std::io::Error::other("the stdin reader thread has stopped"))?;
    rx.await
        .map_err(|_| std::io::Error::other("the stdin reader thread has stopped"))?
}

/// The stdin reader thread: reads one line per live request and hands it to the first
/// requester still waiting. A line nobody is waiting for any more (its asker gave up while
/// it was typed, and the next prompt has not asked yet) is kept for the next request, never
/// dropped: a prompt printed just before it asks still gets an answer typed at once.
fn serve_stdin_lines(requests: &mpsc::Receiver<LineRequest>) {
    let stdin = std::io::stdin();
    let mut kept: Option<std::io::Result<Option<String>>> = None;
    while let Ok(mut request) = requests.recv() {
        if request.is_closed() {
            continue;
        }
        let mut answer = match kept.take() {
            Some(answer) => answer,
            None => {
                let mut line = String::new();
                match stdin.lock().read_line(&mut line) {
                    Ok(0) => Ok(None),
                    Ok(_) => Ok(Some(line)),
                    Err(e) => Err(e),
                }
            }
        };
        // The asker may have given up while we read: the next one waiting gets the line.
        while let Err(back) = request.send(answer) {
            match requests.try_recv() {
                Ok(next) => {
                    request = next;
                    answer = back;
                }
                Err(_) => {
                    kept = Some(back);
                    break;
                }
            }
        }
    }
}
