//! The `--json` reporter and the envelope every `--json` command prints.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sykli_runtime::TaskStatus;
use sykli_runtime::events::{Event, EventSink, RunSummary, TaskReport};

/// The one JSON document a `--json` command prints:
/// `{"ok": bool, "version": "1", "data": ..., "error": null | {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<D = Value> {
    /// Whether the command succeeded.
    pub ok: bool,
    /// Envelope format version, "1".
    pub version: String,
    /// The command's result (null when it failed before producing one).
    pub data: D,
    /// What went wrong, when `ok` is false.
    pub error: Option<ErrorBody>,
}

/// The `error` member of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, snake_case code, e.g. `invalid_pipeline`, `tasks_failed`, `interrupted`.
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

    /// A failure, with whatever data there is (often `Value::Null`).
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
            format!(
                r#"{{"ok":false,"version":"1","data":null,"error":{{"code":"internal","message":"failed to serialise output: {e}"}}}}"#
            )
        });
        s.push('\n');
        s
    }
}

/// One task in `data.tasks` of a run's envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskJson {
    /// Task name.
    pub name: String,
    /// Final status.
    pub status: TaskStatus,
    /// Wall-clock time over all attempts.
    pub duration_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Exit code of the last attempt, if a command ran to completion.
    pub exit_code: Option<i32>,
    /// Why the task did not pass.
    pub message: Option<String>,
}

impl From<&TaskReport> for TaskJson {
    fn from(r: &TaskReport) -> Self {
        TaskJson {
            name: r.task.clone(),
            status: r.status,
            duration_ms: r.duration_ms,
            attempts: r.attempts,
            exit_code: r.exit_code,
            message: r.message.clone(),
        }
    }
}

/// `data` of a run's envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    /// The run id (`None` if the run never started).
    pub run_id: Option<String>,
    /// Every task that reached a status, in plan order.
    pub tasks: Vec<TaskJson>,
    /// Counts and timing (`None` if the run never finished).
    pub summary: Option<RunSummary>,
}

/// Collects a run's events; [`JsonReporter::envelope`] renders the `--json` document once the
/// run is over. Prints nothing by itself.
#[derive(Default)]
pub struct JsonReporter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    run_id: Option<String>,
    order: Vec<String>,
    reports: HashMap<String, TaskReport>,
    summary: Option<RunSummary>,
}

impl JsonReporter {
    /// An empty collector.
    pub fn new() -> Self {
        JsonReporter::default()
    }

    /// The run as `{run_id, tasks, summary}`, tasks in plan order.
    pub fn data(&self) -> RunData {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut tasks: Vec<TaskJson> = st
            .order
            .iter()
            .filter_map(|n| st.reports.get(n))
            .map(TaskJson::from)
            .collect();
        // Reports for names the run did not announce (should not happen) still appear.
        let mut extra: Vec<&TaskReport> = st
            .reports
            .values()
            .filter(|r| !st.order.contains(&r.task))
            .collect();
        extra.sort_by(|a, b| a.task.cmp(&b.task));
        tasks.extend(extra.into_iter().map(TaskJson::from));
        RunData {
            run_id: st.run_id.clone(),
            tasks,
            summary: st.summary.clone(),
        }
    }

    /// The final envelope: ok when the run finished with nothing failed, errored or
    /// interrupted; `error` explains otherwise. `error` overrides (the run itself broke).
    pub fn envelope(&self, error: Option<ErrorBody>) -> Envelope<RunData> {
        let data = self.data();
        if let Some(e) = error {
            return Envelope::failure(e.code, e.message, data);
        }
        let summary = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .summary
            .clone();
        match summary {
            None => Envelope::failure("internal", "the run ended without a summary", data),
            Some(s) if s.interrupted => {
                Envelope::failure("interrupted", "the run was interrupted", data)
            }
            Some(s) if !s.ok() => {
                let n = s.failed + s.errored;
                let noun = if n == 1 { "task" } else { "tasks" };
                Envelope::failure(
                    "tasks_failed",
                    format!("{n} {noun} failed or errored"),
                    data,
                )
            }
            Some(_) => Envelope::success(data),
        }
    }
}

impl EventSink for JsonReporter {
    fn emit(&self, event: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::RunStarted { run_id, tasks, .. } => {
                st.run_id = Some(run_id.clone());
                st.order = tasks.clone();
            }
            Event::TaskFinished(r) => {
                st.reports.insert(r.task.clone(), r.clone());
            }
            Event::RunFinished(s) => st.summary = Some(s.clone()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_of_a_failed_run() {
        let rep = JsonReporter::new();
        rep.emit(&Event::RunStarted {
            run_id: "r".into(),
            tasks: vec!["a".into(), "b".into()],
            jobs: 1,
            started_at_ms: 0,
        });
        for (t, s) in [("b", TaskStatus::Failed), ("a", TaskStatus::Passed)] {
            rep.emit(&Event::TaskFinished(TaskReport {
                task: t.into(),
                status: s,
                exit_code: Some(if s == TaskStatus::Failed { 1 } else { 0 }),
                duration_ms: 5,
                attempts: 1,
                message: None,
            }));
        }
        rep.emit(&Event::RunFinished(RunSummary {
            run_id: "r".into(),
            passed: 1,
            cached: 0,
            failed: 1,
            errored: 0,
            blocked: 0,
            skipped: 0,
            duration_ms: 9,
            interrupted: false,
        }));
        let v: Value = serde_json::from_str(&rep.envelope(None).to_line()).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["version"], "1");
        assert_eq!(v["error"]["code"], "tasks_failed");
        assert_eq!(v["data"]["tasks"][0]["name"], "a");
        assert_eq!(v["data"]["tasks"][1]["status"], "failed");
        assert_eq!(v["data"]["tasks"][1]["exit_code"], 1);
        assert_eq!(v["data"]["summary"]["failed"], 1);
    }
}
