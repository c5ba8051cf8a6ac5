//! `sykli history`: past runs, newest first.

use std::time::{Duration, UNIX_EPOCH};

use sykli_runtime::error_chain;
use sykli_runtime::state::{self, RunRecord};

use super::error::CliError;
use super::{HistoryArgs, print_out};
use crate::report::{Envelope, RunData, format_duration};

/// Runs `sykli history`.
pub fn history(args: &HistoryArgs, json: bool) -> Result<(), CliError> {
    let state_dir = args.project.project.join(".sykli");
    let list = state::list_runs(&state_dir).map_err(|e| CliError::failed("state_unreadable", e))?;
    for bad in &list.unreadable {
        eprintln!("warning: {}", error_chain(bad));
    }
    let runs: Vec<&RunRecord> = list.runs.iter().take(args.limit).collect();
    if json {
        let runs: Vec<RunData> = runs.into_iter().map(RunData::from).collect();
        let env = Envelope::success(serde_json::json!({ "runs": runs }));
        print_out(&env.to_line());
        return Ok(());
    }
    if runs.is_empty() {
        print_out(&format!(
            "no runs recorded yet in {}\n",
            state_dir.display()
        ));
        return Ok(());
    }
    let width = runs
        .iter()
        .map(|r| r.run_id.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let mut out = format!(
        "{:<width$}  {:<20}  {:>8}  {:<11}  TASKS\n",
        "RUN", "STARTED", "DURATION", "RESULT"
    );
    for r in runs {
        let started =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(r.started_at_ms));
        let (duration, counts) = match &r.summary {
            Some(s) => (
                format_duration(Duration::from_millis(s.duration_ms)),
                crate::report::detail_line(s)
                    .rsplit_once(" in ")
                    .map(|(c, _)| c.to_string())
                    .unwrap_or_default(),
            ),
            None => ("-".into(), format!("{} tasks", r.tasks.len())),
        };
        out.push_str(&format!(
            "{:<width$}  {:<20}  {:>8}  {:<11}  {counts}\n",
            r.run_id,
            started.to_string(),
            duration,
            r.outcome()
        ));
    }
    print_out(&out);
    Ok(())
}
