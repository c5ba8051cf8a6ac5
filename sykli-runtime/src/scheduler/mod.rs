//! The scheduler: runs a validated graph's [plan](crate::plan) on the executors of the run.
//!
//! [`run`] plans the graph ([`crate::plan::plan`]: selection, conditions, placement) and
//! then carries the plan out; it decides none of that itself. Each task goes to the
//! executor stack the plan chose (the executor with the result cache around it).
//!
//! One dispatcher loop ([`run`]) owns all ordering: it `select!`s over task completions,
//! cancellation and signals, and starts a task the moment its dependencies have succeeded and
//! a slot is free (a ready queue, not level barriers). Among ready tasks the one with the
//! longest remaining path to the end of the graph goes first (the critical path), weighted by
//! durations from earlier runs when known. Each task runs as its own tokio task and talks to
//! the dispatcher only through its result; its output goes through a [`TaskLog`] (masking,
//! full log file, line events).
//!
//! Fail-fast by default: after a task fails or errors, no new task starts, running ones
//! finish, and the rest are `blocked`. With `keep_going`, everything not downstream of a
//! failure runs.
//!
//! ```no_run
//! # async fn f(graph: sykli_runtime::graph::Graph) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use sykli_runtime::events::{Event, EventSink};
//! use sykli_runtime::scheduler::{RunConfig, run};
//!
//! struct Print;
//! impl EventSink for Print {
//!     fn emit(&self, e: &Event) { println!("{e:?}") }
//! }
//! let valid = sykli_runtime::graph::validate(&graph)?;
//! let summary = run(&valid, RunConfig::new("."), Arc::new(Print)).await?;
//! assert!(summary.ok());
//! # Ok(()) }
//! ```
//!
//! [`TaskLog`]: crate::logs::TaskLog

mod builder;
mod cache_hook;
mod cancel;
mod config;
mod dispatch;
mod gate;
mod resume;
mod stack;
mod task;

pub use builder::{BuiltRun, CacheChoice, RunBuilder, native_identity};
pub use cache_hook::{CacheHit, CacheLookup, CacheQuery, TaskCache};
pub use cancel::TaskCancels;
pub use config::{RunConfig, Signals, new_run_id};
pub use dispatch::{run, run_planned};
pub use task::task_env;

use std::path::PathBuf;

/// Why a run could not be carried out at all (task failures are statuses, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A `--filter` name matches no task.
    #[error("unknown task `{name}` in filter{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownFilter {
        /// The name given.
        name: String,
        /// The closest task name, if any is close.
        suggestion: Option<String>,
    },
    /// The state directory (logs) could not be created.
    #[error("failed to create state directory {}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Ctrl-C / SIGTERM handlers could not be installed.
    #[error("failed to install signal handlers")]
    Signals(#[source] std::io::Error),
    /// A resumed run's pipeline is not the one its journal recorded.
    #[error(
        "cannot resume run {run}: the pipeline changed (journalled plan {journalled}, this plan {now}); start a new run"
    )]
    PlanChanged {
        /// The run.
        run: String,
        /// The plan digest in the journal.
        journalled: String,
        /// The digest of the plan now.
        now: String,
    },
    /// The run only waits on gates or long retry backoffs and was parked (not a failure):
    /// decide the gates, then resume it.
    #[error("run {run_id} is parked, waiting on {}", waiting.join(", "))]
    Parked {
        /// The run.
        run_id: String,
        /// The gates and backing-off tasks it waits on.
        waiting: Vec<String>,
        /// When the first backoff it waits out is over (ms since the epoch), if any: the
        /// time to wake it.
        wake_at_ms: Option<u64>,
    },
    /// [`run_planned`] got a plan made for another graph or other executors.
    #[error(
        "failed to run the plan: it was made for executors [{}], the run has [{}] (or for another graph)",
        planned_on.join(", "),
        registered.join(", ")
    )]
    PlanMismatch {
        /// The executors the plan placed tasks on.
        planned_on: Vec<String>,
        /// The run's executors.
        registered: Vec<String>,
    },
}
