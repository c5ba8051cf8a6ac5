//! [`RunConfig`]: everything a run needs besides the graph.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::TaskCache;
use crate::exec::native::{NativeExecutor, NativeRegistry};
use crate::exec::process::ProcessExecutor;
use crate::exec::{ExecutorEntry, ExecutorRegistry, WorkKind};
use crate::graph::{ConditionContext, ValidGraph};
use crate::plan::{Plan, PlanError, PlanOptions};

/// How the run reacts to Ctrl-C and SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signals {
    /// The first Ctrl-C or SIGTERM cancels the run gracefully (running tasks get SIGTERM, then
    /// SIGKILL after the grace period); a second one SIGKILLs them at once.
    #[default]
    Standard,
    /// Signals are left alone; cancel through [`RunConfig::cancel`] (tests, embedders).
    Noop,
}

/// Settings of one run. Build with [`RunConfig::new`] and adjust the public fields.
#[derive(Clone)]
pub struct RunConfig {
    /// Most tasks run at once (gates waiting for approval do not count). Default: CPUs.
    pub jobs: usize,
    /// Keep running everything not downstream of a failure.
    pub keep_going: bool,
    /// Run only these tasks and their dependencies (empty: all).
    pub filter: Vec<String>,
    /// Run only the tasks a change affects and their dependencies (`None`: no such
    /// restriction); see [`crate::plan::affected`].
    pub affected: Option<crate::plan::Affected>,
    /// The project directory: workdirs, outputs and secret files are relative to it.
    pub project_root: PathBuf,
    /// Where logs go (`<state_dir>/logs/<run_id>/<task>.log`). Default `<project_root>/.sykli`.
    pub state_dir: PathBuf,
    /// Unique, sortable id of this run. Default: [`new_run_id`].
    pub run_id: String,
    /// Grace between SIGTERM and SIGKILL when stopping a task. Default 5 s.
    pub kill_grace: Duration,
    /// Timeout of tasks that set none (`None` or zero: unlimited).
    pub default_timeout: Option<Duration>,
    /// Cancels the run (as a first Ctrl-C would): no new task starts, running ones get
    /// SIGTERM, then SIGKILL after `kill_grace`.
    pub cancel: CancellationToken,
    /// Stops the run at once (as a second Ctrl-C would): running tasks are SIGKILLed without
    /// a grace period. Implies `cancel`.
    pub kill: CancellationToken,
    /// Cancels single running tasks (an observer's `sykli cancel ADDR RUN TASK`): such a
    /// task is stopped like a cancelled run's and reported `errored`; the run goes on.
    pub task_cancels: super::TaskCancels,
    /// Signal handling.
    pub signals: Signals,
    /// What conditions are evaluated against; `None`: detected from CI variables and git
    /// ([`crate::context::RunContext::detect`]).
    pub context: Option<ConditionContext>,
    /// Task durations from earlier runs, to prioritise the critical path.
    pub history: HashMap<String, Duration>,
    /// Functions for `native` tasks.
    pub native: NativeRegistry,
    /// Executors tasks may be placed on besides the built-in `process` and `native` ones
    /// (a container engine, remote executors, plugins), in placement order after them.
    /// Without one that runs containers, tasks with a `container` are `errored`.
    pub executors: ExecutorRegistry,
    /// Delay before the first retry; each later retry waits twice as long. Default 1 s.
    pub retry_backoff: Duration,
    /// A result cache, stacked around every executor: consulted before a task runs and fed
    /// after it passes.
    pub cache: Option<Arc<dyn TaskCache>>,
    /// Continue this journalled run instead of starting a new one (`sykli run --resume`):
    /// `run_id` must be its id. Finished tasks keep their results; the plan must be the
    /// journalled one.
    pub resume: Option<Arc<crate::state::ResumePoint>>,
    /// Park the run when it only waits on gates: the dispatcher records `RunParked` and
    /// returns [`super::RunError::Parked`] (`sykli run --park`).
    pub park: bool,
    /// Under `park`, a retry backoff with at least this much left counts as waiting like a
    /// gate: a run that only waits on such backoffs (and gates) is parked too. Default 60 s.
    pub park_backoff: Duration,
}

impl fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunConfig")
            .field("jobs", &self.jobs)
            .field("keep_going", &self.keep_going)
            .field("filter", &self.filter)
            .field("affected", &self.affected)
            .field("project_root", &self.project_root)
            .field("state_dir", &self.state_dir)
            .field("run_id", &self.run_id)
            .field("kill_grace", &self.kill_grace)
            .field("default_timeout", &self.default_timeout)
            .field("signals", &self.signals)
            .field("context", &self.context)
            .field("native", &self.native)
            .field("executors", &self.executors.names())
            .field("retry_backoff", &self.retry_backoff)
            .field("cache", &self.cache.is_some())
            .field("resume", &self.resume.as_ref().map(|r| &r.run_id))
            .field("park", &self.park)
            .field("park_backoff", &self.park_backoff)
            .finish_non_exhaustive()
    }
}

impl RunConfig {
    /// Defaults for a project rooted at `project_root`.
    pub fn new(project_root: impl Into<PathBuf>) -> Self {
        let project_root = project_root.into();
        RunConfig {
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            keep_going: false,
            filter: Vec::new(),
            affected: None,
            state_dir: project_root.join(".sykli"),
            project_root,
            run_id: new_run_id(),
            kill_grace: Duration::from_secs(5),
            default_timeout: None,
            cancel: CancellationToken::new(),
            kill: CancellationToken::new(),
            task_cancels: super::TaskCancels::default(),
            signals: Signals::Standard,
            context: None,
            history: HashMap::new(),
            native: NativeRegistry::new(),
            executors: ExecutorRegistry::new(),
            retry_backoff: Duration::from_secs(1),
            cache: None,
            resume: None,
            park: false,
            park_backoff: Duration::from_secs(60),
        }
    }

    /// Every executor of this run, in placement order: `process` (commands on this
    /// machine), `native` (this process's functions), `sandbox` (sandboxed commands, Linux),
    /// then [`RunConfig::executors`]. Both the
    /// scheduler and `sykli explain` place tasks on this registry.
    pub fn registry(&self) -> ExecutorRegistry {
        let process = ProcessExecutor::new().with_escalation(self.kill.clone());
        let native = NativeExecutor::new(self.native.clone(), process.clone());
        let mut all = ExecutorRegistry::new();
        all.replace(ExecutorEntry::local(
            Arc::new(process),
            &[WorkKind::Command],
            Vec::<String>::new(),
        ));
        all.replace(ExecutorEntry::local(
            Arc::new(native),
            &[WorkKind::Native],
            Vec::<String>::new(),
        ));
        #[cfg(target_os = "linux")]
        all.replace(ExecutorEntry::local(
            Arc::new(
                crate::exec::sandbox::SandboxExecutor::default().with_escalation(self.kill.clone()),
            ),
            &[WorkKind::Command],
            [crate::exec::sandbox::SANDBOX_LABEL],
        ));
        for e in self.executors.entries() {
            all.replace(e.clone());
        }
        all
    }

    /// The plan of `graph` in this run, on `executors` (from [`RunConfig::registry`]): the
    /// filter, the condition context (detected when [`RunConfig::context`] is `None`), the
    /// native functions and whether a cache is configured. The scheduler runs exactly this;
    /// `sykli explain` prints it.
    pub fn plan(
        &self,
        graph: &ValidGraph,
        executors: &ExecutorRegistry,
    ) -> Result<Plan, PlanError> {
        let context = self
            .context
            .clone()
            .unwrap_or_else(|| crate::context::RunContext::detect(&self.project_root));
        crate::plan::plan(
            graph,
            &PlanOptions {
                filter: &self.filter,
                context: &context,
                executors,
                native: &self.native,
                cache: self.cache.is_some(),
                affected: self.affected.as_ref(),
            },
        )
    }

    /// The directory this run's logs go to.
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs").join(&self.run_id)
    }
}

/// A new run id: UTC timestamp to the millisecond, then six random hex digits
/// (`20261122T201711.123Z-3f9a2c`), so ids sort by start time.
pub fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    let stamp = now
        .format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    format!("{stamp}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_differ() {
        let a = new_run_id();
        std::thread::sleep(Duration::from_millis(2));
        let b = new_run_id();
        assert!(a < b, "{a} {b}");
        assert_eq!(a.len(), "20261122T201711.123Z-3f9a2c".len());
    }
}
