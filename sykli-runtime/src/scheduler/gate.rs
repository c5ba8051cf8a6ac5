//! Approval gates: `env` (a variable is set), `file` (a file appears; polled), `prompt` (a
//! person answers on the terminal), each bounded by the gate's timeout.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use super::task::Shared;
use crate::TaskStatus;
use crate::graph::{Gate, GateStrategy, Task};

/// Upstream default: an hour.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
const POLL: Duration = Duration::from_millis(200);

/// Waits for the gate; returns the task's status and why.
pub(super) async fn wait(
    shared: &Shared,
    task: &Task,
    gate: &Gate,
) -> (TaskStatus, Option<String>) {
    let timeout = gate.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let name = &task.name;
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
        () = tokio::time::sleep(timeout) => (
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
    let answer = tokio::task::spawn_blocking(move || {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\n{question}");
        let _ = err.flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await;
    match answer {
        Ok(Ok(a)) if matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes") => {
            (TaskStatus::Passed, None)
        }
        Ok(Ok(_)) => (
            TaskStatus::Failed,
            Some("not approved at the prompt".into()),
        ),
        Ok(Err(e)) => (
            TaskStatus::Errored,
            Some(format!("failed to read the answer: {e}")),
        ),
        Err(e) => (
            TaskStatus::Errored,
            Some(format!("failed to read the answer: {e}")),
        ),
    }
}
