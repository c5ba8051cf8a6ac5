//! `sykli logs RUN [TASK]`: the full log of a past run's tasks.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::Serialize;
use sykli_runtime::TaskStatus;
use sykli_runtime::state::{self, RunRecord, StateError};

use super::error::CliError;
use super::{LogsArgs, print_out};
use crate::report::{Envelope, to_data};

/// One task's log in `data.tasks` of `sykli logs --json`.
#[derive(Debug, Clone, Serialize)]
struct TaskLog {
    /// Task name.
    name: String,
    /// Its final status (null when the run ended before it did).
    status: Option<TaskStatus>,
    /// The full, masked log (lossy UTF-8); `""` when it printed nothing, null when it has none.
    log: Option<String>,
    /// Why there is no log, when `log` is null.
    note: Option<String>,
}

/// Runs `sykli logs`.
pub fn logs(args: &LogsArgs, json: bool) -> Result<(), CliError> {
    let state_dir = args.project.project.join(".sykli");
    let record = state::find_run(&state_dir, &args.run)?;
    let tasks: Vec<&str> = match &args.task {
        Some(t) => vec![t.as_str()],
        None => record.tasks.iter().map(|t| t.name.as_str()).collect(),
    };
    let single = args.task.is_some();
    if json {
        let mut logs = Vec::new();
        for task in tasks {
            let (log, note) = match state::task_log(&state_dir, &record, task) {
                Ok(Some(path)) => (Some(read_log(&path)?), None),
                Ok(None) => (Some(String::new()), None),
                Err(e @ StateError::NoLog { .. }) if !single => (None, Some(e.to_string())),
                Err(e) => return Err(e.into()),
            };
            logs.push(TaskLog {
                name: task.to_string(),
                status: record.task(task).and_then(|t| t.status),
                log,
                note,
            });
        }
        let data = serde_json::json!({ "run_id": record.run_id, "tasks": to_data(&logs) });
        print_out(&Envelope::success(data).to_line());
        return Ok(());
    }
    print_text(&state_dir, &record, &tasks, single)
}

/// Reads a whole log file (lossy UTF-8).
fn read_log(path: &Path) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| {
            CliError::failed(
                "state_unreadable",
                anyhow::Error::new(e).context(format!("failed to read {}", path.display())),
            )
        })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The text form: each log under a `==> task <==` header (no header for a single task).
fn print_text(
    state_dir: &Path,
    record: &RunRecord,
    tasks: &[&str],
    single: bool,
) -> Result<(), CliError> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for &task in tasks {
        let path = match state::task_log(state_dir, record, task) {
            Ok(Some(p)) => p,
            Ok(None) => {
                // The task ran and printed nothing.
                if !single {
                    let _ = writeln!(out, "==> {task} <==\n(no output)\n");
                }
                continue;
            }
            Err(e @ StateError::NoLog { .. }) if !single => {
                let _ = writeln!(out, "==> {task} <==\n({e})\n");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !single {
            let _ = writeln!(out, "==> {task} <==");
        }
        let mut file = File::open(&path).map_err(|e| {
            CliError::failed(
                "state_unreadable",
                anyhow::Error::new(e).context(format!("failed to open {}", path.display())),
            )
        })?;
        match io::copy(&mut file, &mut out) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => {
                return Err(CliError::failed(
                    "state_unreadable",
                    anyhow::Error::new(e).context(format!("failed to read {}", path.display())),
                ));
            }
        }
        if !single {
            let _ = writeln!(out);
        }
    }
    let _ = out.flush();
    Ok(())
}
