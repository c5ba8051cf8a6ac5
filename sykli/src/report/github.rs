//! GitHub Actions (`GITHUB_ACTIONS=true`): an `::error` annotation for every task that failed
//! or errored, and a Markdown job summary appended to the file `$GITHUB_STEP_SUMMARY` names.
//!
//! Annotations are workflow commands (`::error title=T::message`), escaped by GitHub's rules:
//! `%`, CR and LF in the message; also `:` and `,` in properties.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sykli_runtime::TaskStatus;
use sykli_runtime::testreport::TestOutcome;

use super::collect::{CollectedRun, CollectedTask};
use super::format::{detail_line, format_duration};

/// Lines of a failed task's output shown in its annotation and in the summary.
pub const FAILURE_LINES: usize = 20;

/// The job summary's size limit: GitHub refuses a step summary over 1 MiB.
const SUMMARY_LIMIT: usize = 1000 * 1024;

/// Past this size the task table stops (with a note), leaving room for the failures.
const TABLE_LIMIT: usize = 512 * 1024;

/// Failed tests named in a task's annotation.
const NAMED_TESTS: usize = 10;

/// What GitHub Actions gives a step, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubActions {
    /// The job summary file (`GITHUB_STEP_SUMMARY`), when set.
    pub step_summary: Option<PathBuf>,
}

impl GithubActions {
    /// `Some` when running under GitHub Actions (`GITHUB_ACTIONS=true`).
    pub fn from_env() -> Option<Self> {
        if std::env::var("GITHUB_ACTIONS").ok().as_deref() != Some("true") {
            return None;
        }
        Some(GithubActions {
            step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        })
    }

    /// Prints the annotations of `run` to `out` and appends its summary to the summary file
    /// (when there is one). The error is the summary file's.
    pub fn report(&self, run: &CollectedRun, out: &mut dyn Write) -> io::Result<()> {
        let _ = out.write_all(annotations(run).as_bytes());
        let _ = out.flush();
        match &self.step_summary {
            Some(path) => append_summary(path, run),
            None => Ok(()),
        }
    }
}

/// Escapes a workflow command's message: `%`, CR, LF.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value: as [`escape_data`], plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One `::error` line for every task that failed or errored (or never finished).
pub fn annotations(run: &CollectedRun) -> String {
    let mut out = String::new();
    for t in &run.tasks {
        let Some(verb) = failure_verb(t) else {
            continue;
        };
        let title = format!("sykli: task {} {verb}", t.name);
        let mut message = why(t);
        let failed: Vec<String> = t
            .tests()
            .into_iter()
            .filter(|c| c.outcome == TestOutcome::Failed)
            .map(|c| c.name)
            .collect();
        if !failed.is_empty() {
            let shown = failed.iter().take(NAMED_TESTS).cloned().collect::<Vec<_>>();
            let more = failed.len().saturating_sub(NAMED_TESTS);
            let _ = write!(
                message,
                "\n{} failed test(s): {}{}",
                failed.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        let tail = last(&t.tail, FAILURE_LINES);
        if !tail.is_empty() {
            message.push_str("\n\n");
            message.push_str(&tail.join("\n"));
        }
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property(&clean(&title)),
            escape_data(&clean(&message))
        );
    }
    out
}

/// "failed" / "errored" / "did not finish" for a task that did not succeed; `None` otherwise.
fn failure_verb(t: &CollectedTask) -> Option<&'static str> {
    match t.report.as_ref().map(|r| r.status) {
        Some(TaskStatus::Failed) => Some("failed"),
        Some(TaskStatus::Errored) => Some("errored"),
        None => Some("did not finish"),
        _ => None,
    }
}

fn why(t: &CollectedTask) -> String {
    match &t.report {
        Some(r) => match (&r.message, r.exit_code) {
            (Some(m), _) => m.clone(),
            (None, Some(code)) => format!("exit code {code}"),
            (None, None) => r.status.as_str().to_string(),
        },
        None => "the run ended before the task finished".to_string(),
    }
}

fn last(lines: &[String], n: usize) -> &[String] {
    &lines[lines.len().saturating_sub(n)..]
}

/// The Markdown job summary of `run`: outcome, a table of tasks (status, duration, and test
/// counts for tasks that declare a test format), then each failure with its last lines.
pub fn summary(run: &CollectedRun) -> String {
    let outcome = match &run.summary {
        Some(s) if s.ok() => "passed",
        Some(s) if s.interrupted => "interrupted",
        Some(_) => "failed",
        None => "did not finish",
    };
    let mut md = format!("### sykli run `{}`: {outcome}\n\n", run.run_id);
    if let Some(s) = &run.summary {
        let _ = writeln!(md, "{}\n", detail_line(s));
    }
    let with_tests = run.tasks.iter().any(|t| t.format.is_some());
    md.push_str(if with_tests {
        "| Task | Status | Duration | Tests |\n|---|---|---|---|\n"
    } else {
        "| Task | Status | Duration |\n|---|---|---|\n"
    });
    for (i, t) in run.tasks.iter().enumerate() {
        if md.len() > TABLE_LIMIT {
            let _ = writeln!(
                md,
                "\n... and {} more tasks (`sykli report {}` lists them all)",
                run.tasks.len() - i,
                run.run_id
            );
            break;
        }
        let (status, time) = match &t.report {
            Some(r) => (
                r.status.as_str(),
                if r.attempts > 0 || r.status == TaskStatus::Cached {
                    format_duration(Duration::from_millis(r.duration_ms))
                } else {
                    String::new()
                },
            ),
            None => ("unfinished", String::new()),
        };
        let icon = match t.report.as_ref().map(|r| r.status) {
            Some(TaskStatus::Passed | TaskStatus::Cached) => "✅",
            Some(TaskStatus::Failed | TaskStatus::Errored) | None => "❌",
            Some(TaskStatus::Blocked | TaskStatus::Skipped) => "⏭️",
        };
        let _ = write!(md, "| {} | {icon} {status} | {time} |", cell(&t.name));
        if with_tests {
            let _ = write!(md, " {} |", test_counts(t));
        }
        md.push('\n');
    }
    let failures: Vec<&CollectedTask> = run
        .tasks
        .iter()
        .filter(|t| failure_verb(t).is_some())
        .collect();
    for (i, t) in failures.iter().enumerate() {
        let section = failure_section(t);
        if md.len() + section.len() > SUMMARY_LIMIT {
            let _ = writeln!(
                md,
                "\n... and {} more failures (the summary is kept under GitHub's 1 MiB limit; \
                 `sykli report {}` lists them all)",
                failures.len() - i,
                run.run_id
            );
            break;
        }
        md.push_str(&section);
    }
    md
}

/// A failed task's part of the summary: its reason, failed tests and last lines.
fn failure_section(t: &CollectedTask) -> String {
    let mut md = String::new();
    let _ = write!(
        md,
        "\n#### `{}`: {}\n\n",
        clean(&t.name).replace('`', "'"),
        cell(&why(t))
    );
    let failed: Vec<_> = t
        .tests()
        .into_iter()
        .filter(|c| c.outcome == TestOutcome::Failed)
        .collect();
    for c in &failed {
        let _ = writeln!(
            md,
            "- failed test `{}`{}",
            clean(&c.name).replace('`', "'"),
            c.message
                .as_deref()
                .map(|m| format!(": {}", cell(m)))
                .unwrap_or_default()
        );
    }
    if !failed.is_empty() {
        md.push('\n');
    }
    let tail = last(&t.tail, FAILURE_LINES);
    if !tail.is_empty() {
        let body = clean(&tail.join("\n"));
        let fence = fence_for(&body);
        let _ = write!(md, "{fence}text\n{body}\n{fence}\n");
    }
    md
}

/// "3 passed, 1 failed, 2 skipped", or "" when the task has no test format or did not run.
fn test_counts(t: &CollectedTask) -> String {
    if t.format.is_none() {
        return String::new();
    }
    let cases = t.tests();
    if cases.is_empty() {
        return String::new();
    }
    let n = |o| cases.iter().filter(|c| c.outcome == o).count();
    format!(
        "{} passed, {} failed, {} skipped",
        n(TestOutcome::Passed),
        n(TestOutcome::Failed),
        n(TestOutcome::Skipped)
    )
}

/// Text safe in a Markdown table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    clean(s).replace(['\n', '\r'], " ").replace('|', "\\|")
}

/// `s` without ANSI colour sequences, other control characters shown as `\u{..}` (the same
/// cleaning as the JUnit report's).
fn clean(s: &str) -> String {
    super::junit::text(s)
}

/// A code fence longer than any run of backticks in `body`.
fn fence_for(body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// Appends the summary of `run` to `path` (created if missing).
pub fn append_summary(path: &Path, run: &CollectedRun) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(summary(run).as_bytes())?;
    f.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sykli_runtime::TaskReport;

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(escape_data("50% a\r\nb:c,d"), "50%25 a%0D%0Ab:c,d");
        assert_eq!(escape_property("t: a,b%\n"), "t%3A a%2Cb%25%0A");
    }

    #[test]
    fn annotations_for_failed_and_errored_tasks_only() {
        let t = |name: &str, status, message: Option<&str>| CollectedTask {
            name: name.into(),
            report: Some(TaskReport {
                task: name.into(),
                status,
                exit_code: Some(1),
                duration_ms: 1,
                attempts: 1,
                message: message.map(str::to_string),
            }),
            tail: vec!["line: 1".into(), "100% done".into()],
            ..Default::default()
        };
        let run = CollectedRun {
            run_id: "r".into(),
            tasks: vec![
                t("ok", TaskStatus::Passed, None),
                t("lint, fmt", TaskStatus::Failed, None),
                t("deploy", TaskStatus::Errored, Some("missing secret TOKEN")),
            ],
            ..Default::default()
        };
        assert_eq!(
            annotations(&run),
            "::error title=sykli%3A task lint%2C fmt failed::exit code 1%0A%0Aline: 1%0A100%25 done\n\
             ::error title=sykli%3A task deploy errored::missing secret TOKEN%0A%0Aline: 1%0A100%25 done\n"
        );
        let md = summary(&run);
        assert!(md.contains("| lint, fmt | ❌ failed | 0.001s |"), "{md}");
        assert!(md.contains("#### `deploy`: missing secret TOKEN"), "{md}");
        assert!(md.contains("```text\nline: 1\n100% done\n```"), "{md}");
        assert_eq!(fence_for("a ```` b"), "`````");
    }

    #[test]
    fn a_summary_of_a_huge_run_stays_under_githubs_limit() {
        let big = "x".repeat(2000);
        // 10,000 rows overflow the table; 100 failures with 40 KB tails overflow the rest.
        let tasks = (0..10_000)
            .map(|i| CollectedTask {
                name: format!("task-{i}-{}", "n".repeat(40)),
                report: Some(TaskReport {
                    task: format!("task-{i}"),
                    status: TaskStatus::Failed,
                    exit_code: Some(1),
                    duration_ms: 1,
                    attempts: 1,
                    message: None,
                }),
                tail: if i < 100 {
                    vec![big.clone(); 20]
                } else {
                    Vec::new()
                },
                ..Default::default()
            })
            .collect();
        let run = CollectedRun {
            run_id: "r".into(),
            tasks,
            ..Default::default()
        };
        let md = summary(&run);
        assert!(md.len() <= SUMMARY_LIMIT + 1024, "{}", md.len());
        assert!(md.contains("more tasks (`sykli report r` lists them all)"));
        assert!(md.contains("more failures (the summary is kept under GitHub's 1 MiB limit"));
    }
}
