//! Reading and writing run records and locating logs.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::StateError;
use super::journal::{fold, journal_path, read_journal};
use super::paths::{is_plain_id, log_path, record_path, runs_dir};
use super::record::RunRecord;
use crate::TaskStatus;

/// Writes `record` to `.sykli/runs/<run_id>.json` atomically (a temporary file in the same
/// directory, then a rename), creating the directories it needs. Returns the record's path.
pub fn write_record(state_dir: &Path, record: &RunRecord) -> Result<PathBuf, StateError> {
    let dir = runs_dir(state_dir);
    fs::create_dir_all(&dir).map_err(|source| StateError::Io {
        action: "create directory",
        path: dir.clone(),
        source,
    })?;
    let path = record_path(state_dir, &record.run_id);
    let io = |source| StateError::Io {
        action: "write run record",
        path: path.clone(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    let json = serde_json::to_vec_pretty(record).map_err(|e| io(std::io::Error::other(e)))?;
    tmp.write_all(&json).map_err(io)?;
    tmp.write_all(b"\n").map_err(io)?;
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(path)
}

/// Reads one run record by id: from its journal (`runs/<id>/journal`), or for runs before
/// the journal, from `runs/<id>.json`.
pub fn read_record(state_dir: &Path, run_id: &str) -> Result<RunRecord, StateError> {
    let journal = journal_path(state_dir, run_id);
    if journal.is_file() {
        return read_journal_record(&journal);
    }
    read_path(&record_path(state_dir, run_id))
}

/// The record a journal folds to.
fn read_journal_record(path: &Path) -> Result<RunRecord, StateError> {
    let read = read_journal(path)?;
    fold(&read.records).ok_or_else(|| StateError::JournalCorrupt {
        path: path.to_path_buf(),
        offset: read.valid_len,
        reason: "no run started in it".into(),
    })
}

/// The record at `path`: a run directory's journal or a `.json` record; `None` for other
/// files (temporary files of a write in progress).
fn read_entry(path: &Path) -> Option<Result<RunRecord, StateError>> {
    let journal = path.join("journal");
    if journal.is_file() {
        return Some(read_journal_record(&journal));
    }
    if path.extension().is_some_and(|e| e == "json") && path.is_file() {
        return Some(read_path(path));
    }
    None
}

fn read_path(path: &Path) -> Result<RunRecord, StateError> {
    let text = fs::read_to_string(path).map_err(|source| StateError::Io {
        action: "read run record",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| StateError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The recorded runs of a project, newest first, and the records that could not be read.
#[derive(Debug, Default)]
pub struct RunList {
    /// Readable records, newest first.
    pub runs: Vec<RunRecord>,
    /// Records that could not be read or parsed (reported, not hidden).
    pub unreadable: Vec<StateError>,
}

/// Every run recorded under `state_dir`, newest first. A missing state directory is an empty
/// history, not an error.
pub fn list_runs(state_dir: &Path) -> Result<RunList, StateError> {
    let dir = runs_dir(state_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunList::default()),
        Err(source) => {
            return Err(StateError::Io {
                action: "list run records in",
                path: dir,
                source,
            });
        }
    };
    let mut list = RunList::default();
    for entry in entries {
        let entry = entry.map_err(|source| StateError::Io {
            action: "list run records in",
            path: dir.clone(),
            source,
        })?;
        match read_entry(&entry.path()) {
            Some(Ok(r)) => list.runs.push(r),
            Some(Err(e)) => list.unreadable.push(e),
            None => {}
        }
    }
    list.runs.sort_by(|a, b| {
        b.started_at_ms
            .cmp(&a.started_at_ms)
            .then_with(|| b.run_id.cmp(&a.run_id))
    });
    Ok(list)
}

/// A run by id, or the newest one for `last`. An unknown id lists the runs that exist.
pub fn find_run(state_dir: &Path, run: &str) -> Result<RunRecord, StateError> {
    if run != "last" && is_plain_id(run) {
        // A journal that exists but cannot be read (an unknown format) says so.
        if journal_path(state_dir, run).is_file() {
            return read_record(state_dir, run);
        }
        if let Ok(r) = read_record(state_dir, run) {
            return Ok(r);
        }
    }
    let list = list_runs(state_dir)?;
    if run == "last" {
        return list.runs.into_iter().next().ok_or(StateError::NoRuns {
            state_dir: state_dir.to_path_buf(),
        });
    }
    if list.runs.is_empty() {
        return Err(StateError::NoRuns {
            state_dir: state_dir.to_path_buf(),
        });
    }
    // A unique prefix of a run id is enough.
    let matches: Vec<&RunRecord> = list
        .runs
        .iter()
        .filter(|r| r.run_id.starts_with(run))
        .collect();
    if matches.len() == 1 {
        return Ok(matches[0].clone());
    }
    Err(StateError::UnknownRun {
        run: run.to_string(),
        known: list
            .runs
            .iter()
            .take(10)
            .map(|r| r.run_id.clone())
            .collect(),
    })
}

/// The log file of `task` in `record`, checked to exist; `None` when the task ran but printed
/// nothing (logs are created on the first byte). Unknown tasks list the run's tasks; tasks
/// that never ran say why they have no log.
pub fn task_log(
    state_dir: &Path,
    record: &RunRecord,
    task: &str,
) -> Result<Option<PathBuf>, StateError> {
    let Some(t) = record.task(task) else {
        return Err(StateError::UnknownTask {
            run: record.run_id.clone(),
            task: task.to_string(),
            known: record.tasks.iter().map(|t| t.name.clone()).collect(),
        });
    };
    let path = log_path(state_dir, &record.run_id, task);
    if path.is_file() {
        return Ok(Some(path));
    }
    if t.attempts > 0 {
        return Ok(None);
    }
    let reason = match t.status {
        Some(TaskStatus::Blocked) => "was blocked by a failed dependency".to_string(),
        Some(TaskStatus::Skipped) => "was skipped (its condition was false)".to_string(),
        Some(TaskStatus::Cached) => "was restored from the cache".to_string(),
        Some(TaskStatus::Errored) => format!(
            "could not start ({})",
            t.message.as_deref().unwrap_or("no reason recorded")
        ),
        _ => "never started".to_string(),
    };
    Err(StateError::NoLog {
        run: record.run_id.clone(),
        task: task.to_string(),
        reason,
    })
}

/// How long each task took when it last ran (passed or failed) in one of the ten newest
/// runs, newest first wins. The scheduler uses it to start long tasks first. This is a hint:
/// an unreadable history gives an empty map.
pub fn previous_durations(state_dir: &Path) -> HashMap<String, Duration> {
    const RUNS: usize = 10;
    let mut out = HashMap::new();
    for record in newest_records(state_dir, RUNS) {
        for t in &record.tasks {
            if matches!(t.status, Some(TaskStatus::Passed | TaskStatus::Failed)) {
                out.entry(t.name.clone())
                    .or_insert(Duration::from_millis(t.duration_ms));
            }
        }
    }
    out
}

/// The newest `n` readable records by file name (run ids sort by start time), newest first,
/// reading only as many files as needed; unreadable ones are passed over.
fn newest_records(state_dir: &Path, n: usize) -> Vec<RunRecord> {
    let Ok(entries) = fs::read_dir(runs_dir(state_dir)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort_unstable_by(|a, b| {
        b.file_stem()
            .cmp(&a.file_stem())
            .then_with(|| b.file_name().cmp(&a.file_name()))
    });
    paths
        .iter()
        .filter_map(|p| read_entry(p).and_then(Result::ok))
        .take(n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventSink, RunSummary, TaskReport};
    use crate::state::RunRecorder;

    fn run(state: &Path, id: &str, start: u64, build_ms: u64, test: TaskStatus) {
        let rec = RunRecorder::new(state);
        rec.emit(&Event::RunStarted {
            run_id: id.into(),
            tasks: vec!["build".into(), "test".into(), "deploy".into()],
            jobs: 2,
            started_at_ms: start,
            plan_digest: None,
            resumed: false,
        });
        rec.emit(&Event::TaskStarted {
            task: "build".into(),
            attempt: 1,
            executor: "process".into(),
        });
        let report = |task: &str, status, ms, attempts| {
            Event::TaskFinished(TaskReport {
                task: task.into(),
                status,
                exit_code: (attempts > 0).then_some(if status == TaskStatus::Failed {
                    1
                } else {
                    0
                }),
                duration_ms: ms,
                attempts,
                message: None,
            })
        };
        rec.emit(&report("build", TaskStatus::Passed, build_ms, 1));
        rec.emit(&report("test", test, 7, 1));
        rec.emit(&report("deploy", TaskStatus::Blocked, 0, 0));
        rec.emit(&Event::RunFinished(RunSummary {
            run_id: id.into(),
            passed: 1,
            cached: 0,
            failed: 1,
            errored: 0,
            blocked: 1,
            skipped: 0,
            duration_ms: 20,
            interrupted: false,
        }));
        assert!(rec.take_error().is_none());
    }

    #[test]
    fn records_round_trip_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".sykli");
        run(&state, "run-a", 1000, 50, TaskStatus::Failed);
        run(&state, "run-b", 2000, 80, TaskStatus::Passed);
        // Leftover temp files and unrelated files do not confuse the listing.
        fs::write(runs_dir(&state).join(".tmpXYZ"), "partial").unwrap();
        fs::write(runs_dir(&state).join("broken.json"), "{").unwrap();

        let list = list_runs(&state).unwrap();
        let ids: Vec<_> = list.runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["run-b", "run-a"]);
        assert_eq!(list.unreadable.len(), 1);
        assert!(list.unreadable[0].to_string().contains("broken.json"));

        let a = read_record(&state, "run-a").unwrap();
        assert_eq!(a.outcome(), "failed");
        let build = a.task("build").unwrap();
        assert_eq!(build.status, Some(TaskStatus::Passed));
        assert_eq!(build.duration_ms, 50);
        assert_eq!(build.executor.as_deref(), Some("process"));
        assert!(build.started_at_ms.is_some());
        assert_eq!(a.task("deploy").unwrap().attempts, 0);

        assert_eq!(find_run(&state, "last").unwrap().run_id, "run-b");
        assert_eq!(find_run(&state, "run-a").unwrap().run_id, "run-a");
        let err = find_run(&state, "run-zzz").unwrap_err().to_string();
        assert!(err.contains("run-b, run-a"), "{err}");

        let d = previous_durations(&state);
        assert_eq!(d["build"], Duration::from_millis(80));
        assert_eq!(d["test"], Duration::from_millis(7));
        assert!(!d.contains_key("deploy"));
    }

    #[test]
    fn logs_are_found_or_explained() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_path_buf();
        run(&state, "r", 1, 5, TaskStatus::Failed);
        let record = read_record(&state, "r").unwrap();
        let p = log_path(&state, "r", "build");
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, "hello\n").unwrap();
        assert_eq!(task_log(&state, &record, "build").unwrap(), Some(p));
        // Ran, printed nothing: no file, no error.
        assert_eq!(task_log(&state, &record, "test").unwrap(), None);
        let e = task_log(&state, &record, "nope").unwrap_err().to_string();
        assert!(e.contains("build, test, deploy"), "{e}");
        let e = task_log(&state, &record, "deploy").unwrap_err().to_string();
        assert!(e.contains("blocked"), "{e}");
    }

    #[test]
    fn empty_history() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_runs(dir.path()).unwrap().runs.is_empty());
        assert!(matches!(
            find_run(dir.path(), "last"),
            Err(StateError::NoRuns { .. })
        ));
        assert!(previous_durations(dir.path()).is_empty());
    }
}
