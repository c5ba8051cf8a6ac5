//! Errors of the state store.

use std::path::PathBuf;

/// A failure to read or write run state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory could not be read or written.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done, e.g. "write run record".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A run record is not valid JSON of the expected shape.
    #[error("failed to parse run record {}", path.display())]
    Parse {
        /// The record file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No run has been recorded in this project.
    #[error("no runs recorded yet in {}", state_dir.display())]
    NoRuns {
        /// The state directory searched.
        state_dir: PathBuf,
    },
    /// The requested run does not exist.
    #[error("unknown run \"{run}\"; recorded runs (newest first): {}", list(known))]
    UnknownRun {
        /// The run asked for.
        run: String,
        /// Runs that exist, newest first (at most 10).
        known: Vec<String>,
    },
    /// The run exists but has no such task.
    #[error("run {run} has no task \"{task}\"; its tasks: {}", list(known))]
    UnknownTask {
        /// The run.
        run: String,
        /// The task asked for.
        task: String,
        /// Tasks of that run.
        known: Vec<String>,
    },
    /// A journal written in a format this sykli does not read.
    #[error(
        "journal {} has format version {found}; this sykli reads version {supported} (use the sykli that wrote it)",
        path.display()
    )]
    JournalFormat {
        /// The journal.
        path: PathBuf,
        /// Its version (0 when the header itself is not a journal's).
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A journal damaged before its last record (a torn last record is not this: it is
    /// ignored).
    #[error("journal {} is damaged at byte {offset}: {reason}", path.display())]
    JournalCorrupt {
        /// The journal.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The run cannot be resumed (finished, or recorded without a journal).
    #[error("cannot resume run {run}: {reason}")]
    NotResumable {
        /// The run.
        run: String,
        /// Why.
        reason: String,
    },
    /// No unfinished run to resume.
    #[error("no unfinished run to resume in {}", state_dir.display())]
    NothingToResume {
        /// The state directory searched.
        state_dir: PathBuf,
    },
    /// A gate decision could not be recorded.
    #[error("cannot decide gate \"{task}\" of run {run}: {reason}")]
    Gate {
        /// The run.
        run: String,
        /// The gate task.
        task: String,
        /// Why.
        reason: String,
    },
    /// The task exists but never started, so it has no log.
    #[error("task \"{task}\" of run {run} has no log: it {reason}")]
    NoLog {
        /// The run.
        run: String,
        /// The task.
        task: String,
        /// Why, e.g. "was blocked" or "never started".
        reason: String,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
