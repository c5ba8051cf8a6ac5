//! `sykli report [RUN]`: the summary of the last run (or of RUN) from `.sykli/runs/`: its
//! outcome, every task with its status and time, why failed tasks failed, where their logs
//! are, and the detail line. With `--json`, the same run as `sykli run --json` ended it (`RunData`).

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use sykli_runtime::TaskStatus;
use sykli_runtime::state;

use super::error::CliError;
use super::{ReportArgs, print_out};
use crate::report::{
    CollectedRun, Envelope, RunData, detail_line, format_duration, to_data, write_junit,
};

/// Runs `sykli report`: exit 0 whenever the run was found, whatever its outcome.
pub fn report(args: &ReportArgs, json: bool) -> Result<(), CliError> {
    let state_dir = args.project.project.join(".sykli");
    let run = args.run.as_deref().unwrap_or("last");
    let record = state::find_run(&state_dir, run)?;
    if let Some(path) = &args.junit {
        let run = CollectedRun::from_record(&state_dir, &record).map_err(|e| {
            CliError::failed(
                "state_unreadable",
                anyhow::Error::new(e).context(format!(
                    "cannot read the logs of run {} for the JUnit file",
                    record.run_id
                )),
            )
        })?;
        write_junit(path, &run).map_err(|e| {
            CliError::failed(
                "write_failed",
                anyhow::Error::new(e)
                    .context(format!("cannot write the JUnit file {}", path.display())),
            )
        })?;
    }
    let data = RunData::from(&record);
    if json {
        print_out(&Envelope::success(to_data(&data)).to_line());
    } else {
        print_out(&render(&data));
    }
    Ok(())
}

/// The text form: a header, one line per task, failure messages, the detail and final lines.
pub fn render(run: &RunData) -> String {
    let started =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(run.started_at_ms));
    let mut out = format!("run {} started {started}: {}\n", run.run_id, run.outcome);
    let width = run.tasks.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut failed = Vec::new();
    for t in &run.tasks {
        let status = t.status.map_or("unfinished", TaskStatus::as_str);
        let time = if t.attempts > 0 || t.cached {
            format_duration(Duration::from_millis(t.duration_ms))
        } else {
            String::new()
        };
        let retries = if t.attempts > 1 {
            format!(" ({} attempts)", t.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {status:<10} {:<width$}  {time}{retries}", t.name);
        if matches!(t.status, Some(TaskStatus::Failed | TaskStatus::Errored)) {
            failed.push(t);
        }
    }
    for t in &failed {
        let why = match (&t.message, t.exit_code) {
            (Some(m), _) => m.clone(),
            (None, Some(code)) => format!("exit code {code}"),
            (None, None) => "no reason recorded".to_string(),
        };
        let _ = writeln!(out, "{}: {why}", t.name);
        let _ = writeln!(out, "  log: sykli logs {} {}", run.run_id, t.name);
    }
    match &run.summary {
        Some(s) => {
            let _ = writeln!(out, "{}", detail_line(s));
        }
        None => out.push_str("the run did not finish (still going, or sykli was killed)\n"),
    }
    out
}
