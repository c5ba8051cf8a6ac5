//! Run state under the project's `.sykli/` directory: run records and task logs.
//!
//! ```text
//! .sykli/
//!   runs/<run_id>/journal       the run's events, framed and checksummed (see [`journal`])
//!   runs/<run_id>/gates/*.json  decisions of `sykli gate approve|reject`
//!   runs/<run_id>.json          one RunRecord per run, before the journal (still read)
//!   logs/<run_id>/<task>.log    the full, masked output of each task
//! ```
//!
//! [`RunRecorder`] is an [`EventSink`](crate::events::EventSink) that writes the record of the
//! current run; [`list_runs`], [`find_run`], [`task_log`] and [`previous_durations`] read them
//! back for `sykli history`, `sykli logs` and the scheduler's priorities.

mod error;
pub mod journal;
mod paths;
mod record;
mod store;

pub use error::StateError;
pub use journal::{Journal, ResumePoint};
pub use paths::{log_path, logs_dir, record_path, runs_dir};
pub use record::{RecordFold, RunRecord, RunRecorder, TaskRecord};
pub use store::{
    RunList, find_run, list_runs, previous_durations, read_record, task_log, write_record,
};
