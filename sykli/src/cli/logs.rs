//! `sykli logs RUN [TASK]`: the full log of a past run's tasks.

use std::fs::File;
use std::io::{self, Write};

use sykli_runtime::state;

use super::LogsArgs;
use super::error::CliError;

/// Runs `sykli logs`.
pub fn logs(args: &LogsArgs) -> Result<(), CliError> {
    let state_dir = args.project.project.join(".sykli");
    let record = state::find_run(&state_dir, &args.run).map_err(|e| match e {
        state::StateError::Io { .. } | state::StateError::Parse { .. } => {
            CliError::failed("state_unreadable", e)
        }
        _ => CliError::usage("unknown_run", e),
    })?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let tasks: Vec<&str> = match &args.task {
        Some(t) => vec![t.as_str()],
        None => record.tasks.iter().map(|t| t.name.as_str()).collect(),
    };
    let single = args.task.is_some();
    for task in tasks {
        let path = match state::task_log(&state_dir, &record, task) {
            Ok(Some(p)) => p,
            Ok(None) => {
                // The task ran and printed nothing.
                if !single {
                    let _ = writeln!(out, "==> {task} <==\n(no output)\n");
                }
                continue;
            }
            Err(e @ state::StateError::UnknownTask { .. }) => {
                return Err(CliError::usage("unknown_task", e));
            }
            Err(e @ state::StateError::NoLog { .. }) if single => {
                return Err(CliError::failed("no_log", e));
            }
            Err(e @ state::StateError::NoLog { .. }) => {
                let _ = writeln!(out, "==> {task} <==\n({e})\n");
                continue;
            }
            Err(e) => return Err(CliError::failed("state_unreadable", e)),
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
