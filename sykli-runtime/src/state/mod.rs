//! Run state under the project's `.sykli/` directory: run records and task logs.
//!
//! ```text
//! .sykli/
//!   runs/<run_id>.json        one RunRecord per run, written atomically
//!   logs/<run_id>/<task>.log  the full, masked output of each task
//! ```
//!
//! [`RunRecorder`] is an [`EventSink`](crate::events::EventSink) that writes the record of the
//! current run; [`list_runs`], [`find_run`], [`task_log`] and [`previous_durations`] read them
//! back for `sykli history`, `sykli logs` and the scheduler's priorities.

mod error;
mod paths;
mod record;
mod store;

pub use error::StateError;
pub use paths::{log_path, logs_dir, record_path, runs_dir};
pub use record::{RunRecord, RunRecorder, TaskRecord};
pub use store::{
    RunList, find_run, list_runs, previous_durations, read_record, task_log, write_record,
};
