//! The one JSON document every `--json` command prints, and the run data it carries for
//! `sykli run`, `sykli report` and `sykli history` (see `docs/json.md`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sykli_runtime::TaskStatus;
use sykli_runtime::events::RunSummary;
use sykli_runtime::state::{RunRecord, TaskRecord};

/// Every `error.code` an [`Envelope`] may carry, documented in `docs/json.md`. Scripts can
/// rely on this list: a code is never renamed, only added.
pub const ERROR_CODES: &[&str] = &[
    "usage",
    "not_found",
    "load_failed",
    "invalid_pipeline",
    "unknown_filter",
    "run_failed",
    "interrupted",
    "no_runs",
    "unknown_run",
    "unknown_task",
    "no_log",
    "state_unreadable",
    "cache_failed",
    "clean_failed",
    "pipeline_exists",
    "write_failed",
    "invalid_config",
    "remote_failed",
    "worker_failed",
    "serve_failed",
    "workers_failed",
    "observe_failed",
    "journal_format",
    "not_resumable",
    "plan_changed",
    "gate_failed",
    "unknown_ref",
    "not_a_repository",
    "invalid_inputs",
    "git_failed",
    "watch_failed",
    "import_failed",
    "ui_failed",
    "internal",
];

/// The one JSON document a `--json` command prints:
/// `{"ok": bool, "version": "1", "data": ..., "error": null | {"code", "message"}}`.
///
/// `ok` says whether the command itself did its job: a run whose tasks failed is `ok: true`
/// (the failures are in `data`, the exit code is 1), and so is `validate` of an invalid
/// pipeline (`data.valid` is false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<D = Value> {
    /// Whether the command did its job.
    pub ok: bool,
    /// Envelope format version, "1".
    pub version: String,
    /// The command's result (null when it failed before producing one).
    pub data: D,
    /// What went wrong, when `ok` is false; null otherwise.
    pub error: Option<ErrorBody>,
}

/// The `error` member of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// One of [`ERROR_CODES`], e.g. `not_found`, `invalid_pipeline`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

impl<D: Serialize> Envelope<D> {
    /// A successful result.
    pub fn success(data: D) -> Self {
        Envelope {
            ok: true,
            version: "1".into(),
            data,
            error: None,
        }
    }

    /// A failure, with whatever data there is (often `Value::Null`). `code` must be one of
    /// [`ERROR_CODES`] (`sykli/tests/cli_json.rs` checks every code written in the source).
    pub fn failure(code: impl Into<String>, message: impl Into<String>, data: D) -> Self {
        Envelope {
            ok: false,
            version: "1".into(),
            data,
            error: Some(ErrorBody {
                code: code.into(),
                message: message.into(),
            }),
        }
    }

    /// Compact JSON plus a newline (no ANSI codes, ever).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|e| {
            let message = serde_json::to_string(&format!("failed to serialise output: {e}"))
                .unwrap_or_else(|_| "\"failed to serialise output\"".into());
            format!(
                r#"{{"ok":false,"version":"1","data":null,"error":{{"code":"internal","message":{message}}}}}"#
            )
        });
        s.push('\n');
        s
    }
}

/// One task in `data.tasks` of a run's envelope (`sykli run`, `sykli report`, `sykli
/// history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskJson {
    /// Task name.
    pub name: String,
    /// Final status; null when the run ended before the task did.
    pub status: Option<TaskStatus>,
    /// Whether the result came from the cache (the status is then `cached`).
    pub cached: bool,
    /// Wall-clock time over all attempts.
    pub duration_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Exit code of the last attempt, if a command ran to completion.
    pub exit_code: Option<i32>,
    /// Why the task did not pass.
    pub message: Option<String>,
    /// When its first attempt started, milliseconds since the Unix epoch.
    pub started_at_ms: Option<u64>,
    /// The executor that ran it (`process`, `docker`, `native`, ...).
    pub executor: Option<String>,
    /// The remote operation of its last attempt (absent for tasks that did not run on a
    /// remote executor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

impl From<&TaskRecord> for TaskJson {
    fn from(t: &TaskRecord) -> Self {
        TaskJson {
            name: t.name.clone(),
            status: t.status,
            cached: t.status == Some(TaskStatus::Cached),
            duration_ms: t.duration_ms,
            attempts: t.attempts,
            exit_code: t.exit_code,
            message: t.message.clone(),
            started_at_ms: t.started_at_ms,
            executor: t.executor.clone(),
            operation: t.operation.clone(),
        }
    }
}

/// `data` of a run's envelope: one run, as `sykli run --json` ends it and as `sykli report`
/// and `sykli history` read it back from `.sykli/runs/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    /// The run id.
    pub run_id: String,
    /// `passed` (nothing failed or errored), `failed`, `interrupted`, or `running` (no
    /// summary: still going, or it crashed).
    pub outcome: String,
    /// Start time, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// End time, when the run finished.
    pub finished_at_ms: Option<u64>,
    /// Maximum number of tasks run at once.
    pub jobs: usize,
    /// Counts and timing; null when the run did not finish.
    pub summary: Option<RunSummary>,
    /// Every task of the plan, in plan order.
    pub tasks: Vec<TaskJson>,
}

impl From<&RunRecord> for RunData {
    fn from(r: &RunRecord) -> Self {
        RunData {
            run_id: r.run_id.clone(),
            outcome: r.outcome().to_string(),
            started_at_ms: r.started_at_ms,
            finished_at_ms: r.finished_at_ms,
            jobs: r.jobs,
            summary: r.summary.clone(),
            tasks: r.tasks.iter().map(TaskJson::from).collect(),
        }
    }
}

/// The envelope that ends `sykli run --json`: `ok` unless the run was interrupted or never
/// finished; failed tasks are `ok: true` with the failures in `data.tasks` (exit code 1).
pub fn run_envelope(record: Option<&RunRecord>) -> Envelope {
    let Some(record) = record else {
        return Envelope::failure("internal", "the run did not start", Value::Null);
    };
    let data = to_data(&RunData::from(record));
    match &record.summary {
        None => Envelope::failure("internal", "the run ended without a summary", data),
        Some(s) if s.interrupted => {
            Envelope::failure("interrupted", "the run was interrupted", data)
        }
        Some(_) => Envelope::success(data),
    }
}

/// `data` as a JSON value; a value that cannot be serialised (never expected) becomes null.
pub fn to_data<T: Serialize>(data: &T) -> Value {
    serde_json::to_value(data).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(failed: usize, interrupted: bool) -> RunRecord {
        let task = |name: &str, status| TaskRecord {
            name: name.into(),
            status,
            duration_ms: 5,
            attempts: 1,
            exit_code: Some(if status == Some(TaskStatus::Failed) {
                1
            } else {
                0
            }),
            message: None,
            started_at_ms: Some(1),
            executor: Some("process".into()),
            operation: None,
        };
        RunRecord {
            format: 1,
            run_id: "r".into(),
            started_at_ms: 1,
            finished_at_ms: Some(10),
            jobs: 2,
            summary: Some(RunSummary {
                run_id: "r".into(),
                passed: 0,
                cached: 1,
                failed,
                errored: 0,
                blocked: 0,
                skipped: 0,
                duration_ms: 9,
                interrupted,
            }),
            tasks: vec![
                task("a", Some(TaskStatus::Cached)),
                task("b", Some(TaskStatus::Failed)),
            ],
            parked: false,
        }
    }

    #[test]
    fn a_failed_run_is_ok_with_the_failures_in_data() {
        let line = run_envelope(Some(&record(1, false))).to_line();
        let v: Envelope<RunData> = serde_json::from_str(&line).unwrap();
        assert!(v.ok);
        assert_eq!(v.error, None);
        assert_eq!(v.data.outcome, "failed");
        assert!(v.data.tasks[0].cached);
        assert_eq!(v.data.tasks[1].status, Some(TaskStatus::Failed));
        assert!(!v.data.tasks[1].cached);
        assert_eq!(v.data.tasks[1].exit_code, Some(1));
    }

    #[test]
    fn an_interrupted_run_is_not_ok_and_keeps_its_data() {
        let v = run_envelope(Some(&record(0, true)));
        assert!(!v.ok);
        assert_eq!(v.error.unwrap().code, "interrupted");
        assert_eq!(v.data["outcome"], "interrupted");
    }

    #[test]
    fn every_error_code_is_documented() {
        let doc = include_str!("../../../docs/json.md");
        for code in ERROR_CODES {
            assert!(
                doc.contains(&format!("| `{code}` |")),
                "docs/json.md has no row for error code `{code}`"
            );
        }
    }
}
