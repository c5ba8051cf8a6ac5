//! Collecting a run for the reports written after it (JUnit XML, the GitHub Actions job
//! summary): every task's final report, the tail of its output and, for tasks that declare a
//! test output format, the output to parse.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::Mutex;

use sykli_runtime::events::{Event, EventSink, RunSummary, TaskReport};
use sykli_runtime::exec::OutputStream;
use sykli_runtime::graph::ValidGraph;
use sykli_runtime::state::RunRecord;
use sykli_runtime::testreport::{TestCase, TestFormat};

use super::tails::Tails;

/// Lines of each task's output kept for the reports (the tail shown with a failure).
pub const TAIL_LINES: usize = 50;

/// Output kept per task to parse its tests, in bytes; past it the rest is not parsed and the
/// report says so.
pub const MAX_TEST_OUTPUT: usize = 64 * 1024 * 1024;

/// One finished (or unfinished) run, as the reports show it.
#[derive(Debug, Clone, Default)]
pub struct CollectedRun {
    /// Run id.
    pub run_id: String,
    /// Start, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// The counts, when the run finished.
    pub summary: Option<RunSummary>,
    /// Every task of the run, in plan order.
    pub tasks: Vec<CollectedTask>,
}

/// One task of a [`CollectedRun`].
#[derive(Debug, Clone, Default)]
pub struct CollectedTask {
    /// Task name.
    pub name: String,
    /// Its final report; `None` when it never finished (the run was interrupted).
    pub report: Option<TaskReport>,
    /// The test output format it declares.
    pub format: Option<TestFormat>,
    /// The last [`TAIL_LINES`] lines of its output.
    pub tail: Vec<String>,
    /// How many lines it printed in all.
    pub total_lines: u64,
    /// Standard output of its last attempt, kept only when it declares a format. Only
    /// stdout: stderr is read from another pipe, so its lines are not in order with it
    /// (`cargo test 2>&1` puts cargo's `Running` lines in order with the results).
    pub test_output: Vec<String>,
    /// Whether `test_output` was cut at [`MAX_TEST_OUTPUT`].
    pub test_output_cut: bool,
}

impl CollectedTask {
    /// Its tests, parsed from its output (empty without a format, or when it did not run).
    pub fn tests(&self) -> Vec<TestCase> {
        match self.format {
            Some(f) if self.report.as_ref().is_some_and(|r| r.attempts > 0) => {
                f.parse(self.test_output.iter().map(String::as_str))
            }
            _ => Vec::new(),
        }
    }
}

/// The file in a run's directory naming the test output format of each task that declares
/// one (`{"unit": "cargo"}`), so `sykli report --junit` can parse a recorded run's tests.
pub const FORMATS_FILE: &str = "tests.json";

/// Records the test output formats of `valid` beside the run's journal, once the run has
/// its directory (nothing when no task declares one, or the run left no directory).
pub fn record_formats(valid: &ValidGraph, state_dir: &Path, run_id: &str) -> io::Result<()> {
    let formats: BTreeMap<&str, &str> = (0..valid.len())
        .map(|i| valid.task(i))
        .filter_map(|t| Some((t.name.as_str(), t.tests.as_deref()?)))
        .collect();
    if formats.is_empty() {
        return Ok(());
    }
    let dir = sykli_runtime::state::journal::run_dir(state_dir, run_id);
    if !dir.is_dir() {
        return Ok(());
    }
    let json = serde_json::to_vec_pretty(&formats).map_err(io::Error::other)?;
    std::fs::write(dir.join(FORMATS_FILE), json)
}

impl CollectedRun {
    /// A recorded run (`sykli report`), each task's output read back from its log, and test
    /// formats from the run's [`FORMATS_FILE`] (none when it has none). A log holds stdout
    /// and stderr as they arrived, so unlike a live run the tests are parsed from both.
    pub fn from_record(state_dir: &Path, record: &RunRecord) -> io::Result<CollectedRun> {
        let dir = sykli_runtime::state::journal::run_dir(state_dir, &record.run_id);
        let formats: BTreeMap<String, String> = match std::fs::read(dir.join(FORMATS_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", dir.join(FORMATS_FILE).display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let mut tasks = Vec::with_capacity(record.tasks.len());
        for t in &record.tasks {
            let report = t.status.map(|status| TaskReport {
                task: t.name.clone(),
                status,
                exit_code: t.exit_code,
                duration_ms: t.duration_ms,
                attempts: t.attempts,
                message: t.message.clone(),
            });
            let format = formats.get(&t.name).and_then(|f| f.parse().ok());
            let log = sykli_runtime::state::log_path(state_dir, &record.run_id, &t.name);
            let lines = match std::fs::read(&log) {
                Ok(bytes) => log_lines(&bytes),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            let total_lines = lines.len() as u64;
            let tail = lines[lines.len().saturating_sub(TAIL_LINES)..]
                .iter()
                .map(|l| Tails::cut(l))
                .collect();
            let (test_output, test_output_cut) = match format {
                Some(_) => capped(last_attempt(&lines)),
                None => (Vec::new(), false),
            };
            tasks.push(CollectedTask {
                name: t.name.clone(),
                report,
                format,
                tail,
                total_lines,
                test_output,
                test_output_cut,
            });
        }
        Ok(CollectedRun {
            run_id: record.run_id.clone(),
            started_at_ms: record.started_at_ms,
            summary: record.summary.clone(),
            tasks,
        })
    }
}

/// The lines of a log (lossy UTF-8, without CR).
fn log_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect()
}

/// The lines of the last attempt (after the last `=== sykli: attempt N ===` header).
fn last_attempt(lines: &[String]) -> &[String] {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("=== sykli: attempt ") && l.ends_with(" ==="))
        .map_or(0, |i| i + 1);
    &lines[start..]
}

/// The first lines of `lines` that fit in [`MAX_TEST_OUTPUT`], and whether any were left out.
fn capped(lines: &[String]) -> (Vec<String>, bool) {
    let mut used = 0;
    let mut out = Vec::new();
    for l in lines {
        used += l.len() + 1;
        if used > MAX_TEST_OUTPUT {
            return (out, true);
        }
        out.push(l.clone());
    }
    (out, false)
}

/// An [`EventSink`] that collects a run into a [`CollectedRun`].
pub struct RunCollector {
    formats: HashMap<String, TestFormat>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    run: CollectedRun,
    /// Reports of tasks a resumed run finished before it stopped.
    before: HashMap<String, TaskReport>,
    index: HashMap<String, usize>,
    bytes: HashMap<String, usize>,
}

impl RunCollector {
    /// A collector for runs of `valid`, knowing which tasks declare a test output format.
    pub fn new(valid: &ValidGraph) -> Self {
        let formats = (0..valid.len())
            .map(|i| valid.task(i))
            .filter_map(|t| {
                let f = t.tests.as_deref()?.parse().ok()?;
                Some((t.name.clone(), f))
            })
            .collect();
        RunCollector {
            formats,
            state: Mutex::new(State::default()),
        }
    }

    /// Reports of the tasks a resumed run finished before (`sykli run --resume`): the run
    /// does not report them again.
    pub fn finished_before(&self, reports: impl IntoIterator<Item = TaskReport>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.before
            .extend(reports.into_iter().map(|r| (r.task.clone(), r)));
    }

    /// What was collected so far (all of it once the run is over).
    pub fn run(&self) -> CollectedRun {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.run.clone()
    }

    fn task<'a>(&self, st: &'a mut State, name: &str) -> &'a mut CollectedTask {
        let i = match st.index.get(name) {
            Some(&i) => i,
            None => {
                st.run.tasks.push(CollectedTask {
                    name: name.to_string(),
                    format: self.formats.get(name).copied(),
                    ..Default::default()
                });
                st.index.insert(name.to_string(), st.run.tasks.len() - 1);
                st.run.tasks.len() - 1
            }
        };
        &mut st.run.tasks[i]
    }
}

impl EventSink for RunCollector {
    fn emit(&self, event: &Event) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *guard;
        match event {
            Event::RunStarted {
                run_id,
                tasks,
                started_at_ms,
                ..
            } => {
                st.run.run_id = run_id.clone();
                st.run.started_at_ms = *started_at_ms;
                for t in tasks {
                    let before = st.before.remove(t);
                    let task = self.task(st, t);
                    if task.report.is_none() {
                        task.report = before;
                    }
                }
            }
            Event::TaskStarted { task, .. } => {
                st.bytes.remove(task);
                let t = self.task(st, task);
                t.test_output.clear();
                t.test_output_cut = false;
            }
            Event::TaskOutput { task, line, stream } => {
                let used = st.bytes.get(task).copied().unwrap_or(0);
                let t = self.task(st, task);
                t.total_lines += 1;
                if t.tail.len() == TAIL_LINES {
                    t.tail.remove(0);
                }
                t.tail.push(Tails::cut(line));
                if t.format.is_some() && *stream == OutputStream::Stdout {
                    if used + line.len() > MAX_TEST_OUTPUT {
                        t.test_output_cut = true;
                    } else if !t.test_output_cut {
                        t.test_output.push(line.clone());
                        st.bytes.insert(task.clone(), used + line.len() + 1);
                    }
                }
            }
            Event::TaskFinished(r) => {
                self.task(st, &r.task).report = Some(r.clone());
            }
            Event::RunFinished(s) => st.run.summary = Some(s.clone()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sykli_runtime::TaskStatus;
    use sykli_runtime::graph::{Graph, validate};

    #[test]
    fn keeps_the_last_attempts_test_output_and_a_bounded_tail() {
        let g = Graph::from_json(
            r#"{"version": "1", "tasks": [{"name": "t", "command": "x", "tests": "tap"},
            {"name": "u", "command": "y"}]}"#,
        )
        .unwrap();
        let c = RunCollector::new(&validate(&g).unwrap());
        let out = |task: &str, line: &str| Event::TaskOutput {
            task: task.into(),
            stream: OutputStream::Stdout,
            line: line.into(),
        };
        let start = |n| Event::TaskStarted {
            task: "t".into(),
            attempt: n,
            executor: "process".into(),
        };
        c.emit(&Event::RunStarted {
            run_id: "r".into(),
            tasks: vec!["t".into(), "u".into()],
            jobs: 1,
            started_at_ms: 7,
            plan_digest: None,
            resumed: false,
        });
        c.emit(&start(1));
        c.emit(&out("t", "not ok 1 - first try"));
        c.emit(&start(2));
        c.emit(&Event::TaskOutput {
            task: "t".into(),
            stream: OutputStream::Stderr,
            line: "not ok 9 - on stderr, out of order with stdout".into(),
        });
        for l in ["1..1", "ok 1 - second try"] {
            c.emit(&out("t", l));
        }
        for i in 0..(TAIL_LINES + 5) {
            c.emit(&out("u", &i.to_string()));
        }
        c.emit(&Event::TaskFinished(TaskReport {
            task: "t".into(),
            status: TaskStatus::Passed,
            exit_code: Some(0),
            duration_ms: 5,
            attempts: 2,
            message: None,
        }));
        let run = c.run();
        assert_eq!(run.run_id, "r");
        assert_eq!(run.tasks[0].format, Some(TestFormat::Tap));
        let tests = run.tasks[0].tests();
        assert_eq!(tests.len(), 1);
        assert_eq!(tests[0].name, "second try");
        assert_eq!(
            run.tasks[0].tail.len(),
            4,
            "the tail spans attempts and streams"
        );
        assert_eq!(run.tasks[1].tail.len(), TAIL_LINES);
        assert_eq!(run.tasks[1].tail[0], "5");
        assert_eq!(run.tasks[1].total_lines, TAIL_LINES as u64 + 5);
        assert!(run.tasks[1].test_output.is_empty());
        assert!(run.tasks[1].report.is_none());
    }
}
