//! The run journal: every event of a run (but its output lines, which are in the task logs)
//! appended to `.sykli/runs/<run_id>/journal` as framed records, so a run survives the
//! process that ran it (`sykli run --resume`) and `history`, `logs`, `report` read it back.
//!
//! ```text
//! header   b"SYKLIJNL"  format: u32 LE (1)
//! record   length: u32 LE   checksum: u64 LE (first 8 bytes of blake3(payload))   payload
//! payload  one Envelope as JSON
//! ```
//!
//! Records are written with one `write` each and the file is fsynced at task boundaries
//! (a task finished or will retry, the run started, finished or parked), not per line. A
//! last record cut short (length past the end, or a checksum that does not match the
//! bytes to the end) is a torn write: it is ignored and cut off when the run resumes. A bad
//! record followed by more data is damage, and an error.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::StateError;
use super::paths::{is_plain_id, runs_dir};
use super::record::{RecordFold, RunRecord};
use crate::TaskStatus;
use crate::events::{Envelope, Event, EventSink, OutputDigest, TaskReport, now_ms};

/// The journal format this build writes and reads.
pub const JOURNAL_FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"SYKLIJNL";
const HEADER_LEN: u64 = 12;
const FRAME_LEN: usize = 12;
/// Largest record accepted when reading (a length beyond it is damage, not a record).
const MAX_RECORD: u32 = 64 << 20;

/// `<state_dir>/runs/<run_id>`: the run's directory (journal, gate decisions).
pub fn run_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir(state_dir).join(run_id)
}

/// `<state_dir>/runs/<run_id>/journal`.
pub fn journal_path(state_dir: &Path, run_id: &str) -> PathBuf {
    run_dir(state_dir, run_id).join("journal")
}

/// `<state_dir>/runs/<run_id>/gates`: decisions of `sykli gate approve|reject`.
pub fn gates_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    run_dir(state_dir, run_id).join("gates")
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The checksum of a payload.
fn checksum(payload: &[u8]) -> u64 {
    let h = blake3::hash(payload);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

/// One framed record of `envelope`.
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    let payload = serde_json::to_vec(envelope).unwrap_or_default();
    let mut out = Vec::with_capacity(FRAME_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// A journal as read: its records in order, where the good part ends, and what was cut
/// off at the end, if anything.
#[derive(Debug, Clone)]
pub struct JournalRead {
    /// The records, in order.
    pub records: Vec<Envelope>,
    /// Bytes of header and whole records; a resumed run appends from here.
    pub valid_len: u64,
    /// Why the bytes after `valid_len` were ignored (a torn last record).
    pub torn: Option<String>,
}

/// Reads the journal at `path`. An unknown format version or damage before the last record
/// is an error; a torn last record is reported in [`JournalRead::torn`].
pub fn read_journal(path: &Path) -> Result<JournalRead, StateError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io("read journal", path))?;
    if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
        return Err(StateError::JournalFormat {
            path: path.to_path_buf(),
            found: 0,
            supported: JOURNAL_FORMAT,
        });
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != JOURNAL_FORMAT {
        return Err(StateError::JournalFormat {
            path: path.to_path_buf(),
            found: version,
            supported: JOURNAL_FORMAT,
        });
    }
    let mut pos = HEADER_LEN as usize;
    let mut records = Vec::new();
    let mut torn = None;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < FRAME_LEN {
            torn = Some(format!(
                "a record header cut short at byte {pos} ({} of {FRAME_LEN} bytes)",
                rest.len()
            ));
            break;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&rest[4..12]);
        let sum = u64::from_le_bytes(sum);
        let corrupt = |reason: String| StateError::JournalCorrupt {
            path: path.to_path_buf(),
            offset: pos as u64,
            reason,
        };
        if len > MAX_RECORD {
            return Err(corrupt(format!("record length {len} is implausible")));
        }
        let end = FRAME_LEN + len as usize;
        if rest.len() < end {
            torn = Some(format!(
                "the last record, at byte {pos}, is cut short ({} of {len} bytes)",
                rest.len() - FRAME_LEN
            ));
            break;
        }
        let payload = &rest[FRAME_LEN..end];
        let last = rest.len() == end;
        if checksum(payload) != sum {
            if last {
                torn = Some(format!(
                    "the last record, at byte {pos}, does not match its checksum"
                ));
                break;
            }
            return Err(corrupt("checksum mismatch".into()));
        }
        let envelope: Envelope = serde_json::from_slice(payload)
            .map_err(|e| corrupt(format!("record is not an event: {e}")))?;
        records.push(envelope);
        pos += end;
    }
    Ok(JournalRead {
        valid_len: pos as u64,
        records,
        torn,
    })
}

/// The [`RunRecord`] of a journal's records.
pub fn fold(records: &[Envelope]) -> Option<RunRecord> {
    let mut f = RecordFold::default();
    for r in records {
        f.apply(&r.event, r.at_ms);
    }
    f.into_record()
}

/// The journal of the running run: an [`EventSink`] that appends every envelope (but output
/// lines) and fsyncs at task boundaries. Keeps the run's [`RunRecord`] for the `--json`
/// envelope. A write error never disturbs the run; the first is kept for
/// [`Journal::take_error`].
pub struct Journal {
    path: PathBuf,
    inner: Mutex<JournalInner>,
    syncer: Syncer,
}

/// Group commit: task boundaries are fsynced by a thread of the journal's own, which syncs
/// once for every boundary written since its last sync, so the scheduler never waits on the
/// disk and many boundaries share one fsync. The run's last record (finished or parked) is
/// synced before the run returns.
struct Syncer {
    shared: std::sync::Arc<(Mutex<SyncState>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct SyncState {
    /// Boundaries written and not yet synced.
    dirty: bool,
    /// The journal is dropped: sync what is dirty and stop.
    stop: bool,
    /// The first sync error.
    error: Option<std::io::Error>,
}

impl Syncer {
    fn start(file: File) -> Syncer {
        let shared =
            std::sync::Arc::new((Mutex::new(SyncState::default()), std::sync::Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sykli-journal-sync".into())
            .spawn(move || {
                let (lock, cond) = &*theirs;
                let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    while !st.dirty && !st.stop {
                        st = cond.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                    if !st.dirty {
                        return;
                    }
                    st.dirty = false;
                    drop(st);
                    let r = file.sync_data();
                    st = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if let Err(e) = r {
                        st.error.get_or_insert(e);
                    }
                }
            })
            .ok();
        Syncer { shared, thread }
    }

    /// Asks for a sync of everything written so far; `false` when there is no thread.
    fn request(&self) -> bool {
        if self.thread.is_none() {
            return false;
        }
        let (lock, cond) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).dirty = true;
        cond.notify_one();
        true
    }

    fn take_error(&self) -> Option<std::io::Error> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .error
            .take()
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let (lock, cond) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cond.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct JournalInner {
    file: File,
    fold: RecordFold,
    error: Option<StateError>,
}

impl Journal {
    /// Starts the journal of a new run: creates `runs/<run_id>/` (an existing directory is
    /// an error: a run id is never reused) and writes the header, fsynced.
    pub fn create(state_dir: &Path, run_id: &str) -> Result<Journal, StateError> {
        let runs = runs_dir(state_dir);
        fs::create_dir_all(&runs).map_err(io("create directory", &runs))?;
        let dir = run_dir(state_dir, run_id);
        fs::create_dir(&dir).map_err(io("create run directory", &dir))?;
        let path = journal_path(state_dir, run_id);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io("create journal", &path))?;
        lock(&path, &file)?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&JOURNAL_FORMAT.to_le_bytes());
        file.write_all(&header)
            .and_then(|()| file.sync_all())
            .map_err(io("write journal", &path))?;
        sync_dir(&runs);
        Journal::with_file(path, file, RecordFold::default())
    }

    /// Reopens the journal of `point` to continue it: a torn last record is cut off first.
    pub fn reopen(state_dir: &Path, point: &ResumePoint) -> Result<Journal, StateError> {
        let path = journal_path(state_dir, &point.run_id);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io("open journal", &path))?;
        lock(&path, &file)?;
        // Read before the lock: another process may have written since.
        let now = read_journal(&path)?;
        if now.valid_len != point.valid_len || now.records.len() != point.records.len() {
            return Err(StateError::NotResumable {
                run: point.run_id.clone(),
                reason: "its journal changed while it was being resumed (another process ran it); try again".into(),
            });
        }
        file.set_len(point.valid_len)
            .and_then(|()| file.sync_all())
            .map_err(io("cut the torn record off", &path))?;
        let mut fold = RecordFold::default();
        for r in &point.records {
            fold.apply(&r.event, r.at_ms);
        }
        Journal::with_file(path, file, fold)
    }

    fn with_file(path: PathBuf, file: File, fold: RecordFold) -> Result<Journal, StateError> {
        let syncer = Syncer::start(file.try_clone().map_err(io("open journal", &path))?);
        Ok(Journal {
            path,
            inner: Mutex::new(JournalInner {
                file,
                fold,
                error: None,
            }),
            syncer,
        })
    }

    /// Removes the run's directory when nothing was journalled (the run could not start:
    /// an unknown `--filter`, say), so it does not show up as a run; `true` if it did.
    pub fn discard_if_empty(&self) -> bool {
        let inner = self.lock();
        if inner.fold.record().is_some() {
            return false;
        }
        self.path
            .parent()
            .is_some_and(|dir| fs::remove_dir_all(dir).is_ok())
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's record as it stands.
    pub fn record(&self) -> Option<RunRecord> {
        self.lock().fold.record().cloned()
    }

    /// The first write error, if any happened.
    pub fn take_error(&self) -> Option<StateError> {
        let mut inner = self.lock();
        if inner.error.is_none()
            && let Some(e) = self.syncer.take_error()
        {
            inner.error = Some(StateError::Io {
                action: "fsync journal",
                path: self.path.clone(),
                source: e,
            });
        }
        inner.error.take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JournalInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EventSink for Journal {
    fn emit(&self, event: &Event) {
        // Without an envelope (not sent through the run's dispatcher): number nothing,
        // record nothing but the fold.
        self.lock().fold.apply(event, now_ms());
    }

    fn emit_envelope(&self, envelope: &Envelope) {
        let event = &envelope.event;
        let mut inner = self.lock();
        inner.fold.apply(event, envelope.at_ms);
        if matches!(event, Event::TaskOutput { .. }) {
            return; // in the task's log file
        }
        if matches!(event, Event::TaskResources { .. }) {
            return; // live only: a sample a second per task would swamp the journal
        }
        let boundary = matches!(event, Event::TaskFinished(_) | Event::TaskRetrying { .. });
        // The run's first and last records are synced in place: the run is on disk before
        // any task starts, and entirely on disk when it returns.
        let ends = matches!(
            event,
            Event::RunStarted { .. } | Event::RunFinished(_) | Event::RunParked { .. }
        );
        let bytes = encode(envelope);
        let mut result = inner.file.write_all(&bytes);
        if result.is_ok() && (ends || (boundary && !self.syncer.request())) {
            result = inner.file.sync_data();
        }
        if let Err(e) = result
            && inner.error.is_none()
        {
            inner.error = Some(StateError::Io {
                action: "append to journal",
                path: self.path.clone(),
                source: e,
            });
        }
    }
}

/// Locks the journal `file` for this process (released when the process ends, however):
/// one process at a time runs a run.
fn lock(path: &Path, file: &File) -> Result<(), StateError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::NotResumable {
            run: path
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            reason: "another sykli process is running it".into(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io("lock journal", path)(e)),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Where a run stands in its journal: what `sykli run --resume` continues from.
#[derive(Debug, Clone)]
pub struct ResumePoint {
    /// The run.
    pub run_id: String,
    /// The digest of the plan it ran.
    pub plan_digest: Option<String>,
    /// The journal's records.
    pub records: Vec<Envelope>,
    /// Where the good part of the journal ends.
    pub valid_len: u64,
    /// A torn last record that was ignored, and why.
    pub torn: Option<String>,
    /// The next sequence number.
    pub next_seq: u64,
    /// Final reports of finished tasks, with their output digests.
    pub finished: HashMap<String, (TaskReport, BTreeMap<String, OutputDigest>)>,
    /// Tasks waiting to retry: the attempt that failed and when the next one is due (ms
    /// since the epoch).
    pub retrying: HashMap<String, (u32, u64)>,
    /// Gates open when the run stopped, and since when (ms since the epoch).
    pub gates_open: HashMap<String, u64>,
    /// Remote operations of tasks that were running when the run stopped, to re-attach to.
    pub attached: HashMap<String, String>,
    /// Tasks (not gates) an earlier process of the run started, with their last attempt.
    pub started: HashMap<String, u32>,
    /// Wall time the run spent running in earlier processes, in milliseconds.
    pub active_ms: u64,
}

/// Reads the journal of `run_id` for resuming it: a finished run, or one recorded without a
/// journal, cannot be resumed.
pub fn resume_point(state_dir: &Path, run_id: &str) -> Result<ResumePoint, StateError> {
    let path = journal_path(state_dir, run_id);
    if !path.is_file() {
        return Err(StateError::NotResumable {
            run: run_id.to_owned(),
            reason: format!(
                "it has no journal ({} does not exist; runs before the journal cannot be resumed)",
                path.display()
            ),
        });
    }
    let read = read_journal(&path)?;
    let mut point = ResumePoint {
        run_id: run_id.to_owned(),
        plan_digest: None,
        records: Vec::new(),
        valid_len: read.valid_len,
        torn: read.torn,
        next_seq: 1,
        finished: HashMap::new(),
        retrying: HashMap::new(),
        gates_open: HashMap::new(),
        attached: HashMap::new(),
        started: HashMap::new(),
        active_ms: 0,
    };
    let mut segment: Option<(u64, u64)> = None;
    for r in &read.records {
        point.next_seq = r.seq + 1;
        if let Some((_, last)) = segment.as_mut() {
            *last = r.at_ms;
        }
        match &r.event {
            Event::RunStarted { plan_digest, .. } => {
                if let Some((a, b)) = segment.take() {
                    point.active_ms += b.saturating_sub(a);
                }
                segment = Some((r.at_ms, r.at_ms));
                if point.plan_digest.is_none() {
                    point.plan_digest = plan_digest.clone();
                }
            }
            Event::RunParked { .. } => {
                if let Some((a, b)) = segment.take() {
                    point.active_ms += b.saturating_sub(a);
                }
            }
            Event::TaskStarted {
                task,
                executor,
                attempt,
            } => {
                point.retrying.remove(task);
                if executor != "gate" {
                    point.started.insert(task.clone(), *attempt);
                }
                // An operation journalled before stays until the attempt ends (finished,
                // retrying) or a re-attach fails: a resume killed before it re-attached
                // still knows it.
                if executor == "gate" {
                    point.gates_open.entry(task.clone()).or_insert(r.at_ms);
                }
            }
            Event::TaskRetrying {
                task,
                attempt,
                delay_ms,
                ..
            } => {
                point.attached.remove(task);
                point
                    .retrying
                    .insert(task.clone(), (*attempt, r.at_ms + delay_ms));
            }
            Event::TaskAttached {
                task, operation, ..
            } => {
                point.attached.insert(task.clone(), operation.clone());
            }
            Event::TaskReattachFailed { task, .. } => {
                point.attached.remove(task);
            }
            Event::TaskFinished(report) => {
                point.retrying.remove(&report.task);
                point.attached.remove(&report.task);
                point.gates_open.remove(&report.task);
                point
                    .finished
                    .insert(report.task.clone(), (report.clone(), r.outputs.clone()));
            }
            Event::RunFinished(s) => {
                return Err(StateError::NotResumable {
                    run: run_id.to_owned(),
                    reason: format!(
                        "it has finished ({})",
                        if s.interrupted {
                            "interrupted; start a new run"
                        } else if s.ok() {
                            "passed"
                        } else {
                            "failed"
                        }
                    ),
                });
            }
            Event::TaskRerun { task, .. } => {
                point.finished.remove(task);
            }
            Event::TaskOutput { .. }
            | Event::TaskResources { .. }
            | Event::TaskPlaced { .. }
            | Event::TaskCacheMiss { .. } => {}
        }
    }
    if let Some((a, b)) = segment {
        point.active_ms += b.saturating_sub(a);
    }
    point.records = read.records;
    Ok(point)
}

/// The newest run that has a journal and no end (crashed, killed or parked). A journal that
/// cannot be read on the way is an error.
pub fn latest_unfinished(state_dir: &Path) -> Result<String, StateError> {
    let dir = runs_dir(state_dir);
    let mut ids: Vec<String> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("journal").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    ids.sort_unstable_by(|a, b| b.cmp(a));
    for id in ids {
        // The newest journal that cannot be read is an error, not passed over.
        let read = read_journal(&journal_path(state_dir, &id))?;
        if !read
            .records
            .iter()
            .any(|r| matches!(r.event, Event::RunFinished(_)))
        {
            return Ok(id);
        }
    }
    Err(StateError::NothingToResume {
        state_dir: state_dir.to_path_buf(),
    })
}

/// A decision of `sykli gate approve|reject`, in `runs/<run>/gates/<task>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateDecision {
    /// Approved (`true`) or rejected.
    pub approved: bool,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// Who (the `USER` of the deciding process), when known.
    pub by: Option<String>,
}

fn gate_file(state_dir: &Path, run_id: &str, task: &str) -> PathBuf {
    gates_dir(state_dir, run_id).join(format!("{}.json", crate::logs::log_file_name(task)))
}

/// The recorded decision on gate `task` of `run_id`, if there is one (an unreadable file
/// is no decision).
pub fn gate_decision(state_dir: &Path, run_id: &str, task: &str) -> Option<GateDecision> {
    let text = fs::read(gate_file(state_dir, run_id, task)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Records a decision on gate `task` of run `run_id` durably (a temporary file, fsynced,
/// renamed, directory fsynced). The run must be unfinished, the task a gate that has not
/// been decided yet.
pub fn decide_gate(
    state_dir: &Path,
    run_id: &str,
    task: &str,
    approved: bool,
) -> Result<PathBuf, StateError> {
    let fail = |reason: String| StateError::Gate {
        run: run_id.to_owned(),
        task: task.to_owned(),
        reason,
    };
    if !is_plain_id(run_id) {
        return Err(fail("not a run id".into()));
    }
    let path = journal_path(state_dir, run_id);
    let read = read_journal(&path)?;
    let record = fold(&read.records).ok_or_else(|| fail("its journal is empty".into()))?;
    if record.summary.is_some() {
        return Err(fail(format!("the run has finished ({})", record.outcome())));
    }
    let Some(t) = record.task(task) else {
        return Err(StateError::UnknownTask {
            run: run_id.to_owned(),
            task: task.to_owned(),
            known: record.tasks.iter().map(|t| t.name.clone()).collect(),
        });
    };
    if let Some(status) = t.status {
        return Err(fail(format!("it has finished ({status})")));
    }
    if let Some(e) = t.executor.as_deref().filter(|e| *e != "gate") {
        return Err(fail(format!("it is not a gate (it runs on {e})")));
    }
    let file = gate_file(state_dir, run_id, task);
    if let Some(d) = gate_decision(state_dir, run_id, task) {
        return Err(fail(format!(
            "it was already {}",
            if d.approved { "approved" } else { "rejected" }
        )));
    }
    let dir = gates_dir(state_dir, run_id);
    fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
    let decision = GateDecision {
        approved,
        at_ms: now_ms(),
        by: std::env::var("USER").ok(),
    };
    let json = serde_json::to_vec(&decision).unwrap_or_default();
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io("write gate decision", &dir))?;
    tmp.write_all(&json)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io("write gate decision", &file))?;
    tmp.persist_noclobber(&file)
        .map_err(|e| io("write gate decision", &file)(e.error))?;
    sync_dir(&dir);
    Ok(file)
}

/// The status a gate decision gives its task, and why.
pub fn decision_status(d: &GateDecision) -> (TaskStatus, Option<String>) {
    if d.approved {
        (TaskStatus::Passed, None)
    } else {
        (
            TaskStatus::Failed,
            Some(format!(
                "rejected with `sykli gate reject`{}",
                d.by.as_deref()
                    .map(|u| format!(" by {u}"))
                    .unwrap_or_default()
            )),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RunSummary;

    fn env(seq: u64, event: Event) -> Envelope {
        Envelope {
            run_id: "r".into(),
            seq,
            at_ms: 1000 + seq,
            task: None,
            attempt: None,
            cache_key: None,
            outputs: BTreeMap::new(),
            log: None,
            event,
        }
    }

    fn started() -> Event {
        Event::RunStarted {
            run_id: "r".into(),
            tasks: vec!["a".into(), "b".into()],
            jobs: 1,
            started_at_ms: 1,
            plan_digest: Some("blake3:x".into()),
            resumed: false,
        }
    }

    fn finished(task: &str) -> Event {
        Event::TaskFinished(TaskReport {
            task: task.into(),
            status: TaskStatus::Passed,
            exit_code: Some(0),
            duration_ms: 3,
            attempts: 1,
            message: None,
        })
    }

    #[test]
    fn records_round_trip_and_a_torn_last_record_is_ignored_never_misread() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), "r").unwrap();
        j.emit_envelope(&env(1, started()));
        j.emit_envelope(&env(2, finished("a")));
        assert!(j.take_error().is_none());
        let path = journal_path(dir.path(), "r");
        let good = fs::metadata(&path).unwrap().len();
        // A run id is never reused.
        assert!(Journal::create(dir.path(), "r").is_err());
        let read = read_journal(&path).unwrap();
        assert_eq!(read.records.len(), 2);
        assert!(read.torn.is_none());

        // Every cut inside the next record reads as the two good ones plus a torn tail.
        let next = encode(&env(3, finished("b")));
        for cut in 1..next.len() {
            let mut bytes = fs::read(&path).unwrap();
            bytes.truncate(good as usize);
            bytes.extend_from_slice(&next[..cut]);
            let p = dir.path().join("cut");
            fs::write(&p, &bytes).unwrap();
            let read = read_journal(&p).unwrap();
            assert_eq!(read.records.len(), 2, "cut at {cut}");
            assert_eq!(read.valid_len, good);
            assert!(read.torn.is_some(), "cut at {cut}");
        }
        // A flipped byte in the last record is torn; before the last, damage.
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0xff;
        fs::write(dir.path().join("flip"), &bytes).unwrap();
        let read = read_journal(&dir.path().join("flip")).unwrap();
        assert_eq!(read.records.len(), 1);
        bytes.extend_from_slice(&next);
        fs::write(dir.path().join("flip2"), &bytes).unwrap();
        let e = read_journal(&dir.path().join("flip2")).unwrap_err();
        assert!(matches!(e, StateError::JournalCorrupt { .. }), "{e}");
    }

    #[test]
    fn an_unknown_format_version_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&7u32.to_le_bytes());
        fs::write(&p, &bytes).unwrap();
        let e = read_journal(&p).unwrap_err().to_string();
        assert!(
            e.contains("format version 7") && e.contains("version 1"),
            "{e}"
        );
    }

    #[test]
    fn one_process_at_a_time_runs_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), "r").unwrap();
        j.emit_envelope(&env(1, started()));
        let point = resume_point(dir.path(), "r").unwrap();
        let e = Journal::reopen(dir.path(), &point)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("another sykli process is running it"), "{e}");
        drop(j);
        assert!(Journal::reopen(dir.path(), &point).is_ok());
    }

    #[test]
    fn resume_point_and_gate_decisions() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), "r").unwrap();
        j.emit_envelope(&env(1, started()));
        j.emit_envelope(&env(2, finished("a")));
        j.emit_envelope(&env(
            3,
            Event::TaskStarted {
                task: "b".into(),
                attempt: 1,
                executor: "gate".into(),
            },
        ));
        let p = resume_point(dir.path(), "r").unwrap();
        assert_eq!(p.next_seq, 4);
        assert_eq!(p.plan_digest.as_deref(), Some("blake3:x"));
        assert!(p.finished.contains_key("a"));
        assert_eq!(p.gates_open.get("b"), Some(&1003));
        assert_eq!(latest_unfinished(dir.path()).unwrap(), "r");

        let e = decide_gate(dir.path(), "r", "a", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("finished"), "{e}");
        decide_gate(dir.path(), "r", "b", true).unwrap();
        assert!(gate_decision(dir.path(), "r", "b").unwrap().approved);
        let e = decide_gate(dir.path(), "r", "b", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("already approved"), "{e}");

        j.emit_envelope(&env(
            4,
            Event::RunFinished(RunSummary {
                run_id: "r".into(),
                passed: 2,
                cached: 0,
                failed: 0,
                errored: 0,
                blocked: 0,
                skipped: 0,
                duration_ms: 1,
                interrupted: false,
            }),
        ));
        let e = resume_point(dir.path(), "r").unwrap_err().to_string();
        assert!(e.contains("has finished (passed)"), "{e}");
        assert!(latest_unfinished(dir.path()).is_err());
    }
}
