//! The plan: what a run will do with every task, decided once, before anything runs.
//!
//! ```text
//! Graph (wire) ── validate ──► ValidGraph ── plan ──► Plan ──► scheduler ──► executors
//!                                              ▲
//!                   filter, condition context, executor registry, native functions
//! ```
//!
//! For each task the [`Plan`] holds the [`Decision`] (run, skip with the reason, blocked
//! behind a dependency that will not succeed, left out by `--filter`, or errored without
//! running), the value of its condition, the executor it is placed on and why
//! ([`Placement`], rules in [`placement`]), and its cache decision ([`CachePlan`]).
//! `sykli run`, `sykli explain`, `--json` and the run's events all read this one plan; the
//! scheduler consumes it and decides nothing of this again.
//!
//! Cache keys of tasks behind a dependency that will run are known only after that run
//! ([`CachePlan::AfterDependency`]); keys of the others are filled in by [`cache::decide`]
//! when asked (explain), and by the cache layer around the executor when the task starts
//! (a run, where dependency outputs are known).
//!
//! ```
//! use sykli_runtime::exec::ExecutorRegistry;
//! use sykli_runtime::graph::{ConditionContext, Graph, validate};
//! use sykli_runtime::plan::{Decision, PlanOptions, plan};
//! use sykli_runtime::{NativeRegistry, RunConfig};
//!
//! let g = Graph::from_json(r#"{"version": "1", "tasks": [
//!     {"name": "build", "command": "make"},
//!     {"name": "deploy", "command": "make deploy", "when": "branch == 'main'"}]}"#).unwrap();
//! let valid = validate(&g).unwrap();
//! let config = RunConfig::new(".");
//! let executors = config.registry();
//! let ctx = ConditionContext { branch: Some("dev".into()), ..Default::default() };
//! let p = plan(&valid, &PlanOptions::new(&ctx, &executors, &config.native)).unwrap();
//! assert_eq!(p.task(0).decision, Decision::Run);
//! assert!(matches!(p.task(1).decision, Decision::Skip));
//! assert_eq!(p.executor_name(0), Some("process"));
//! ```

pub mod cache;
mod decide;
pub mod placement;
mod report;

use crate::exec::WorkKind;
use crate::graph::ConditionContext;

pub use decide::{PlanError, PlanOptions, plan};
pub use placement::{PlaceError, PlacedBy, Placement};
pub use report::{ConditionReport, PlanReport, ResourcesReport, TaskPlanReport};

/// What the run does with one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It runs (or is served from the cache) once its dependencies succeeded.
    Run,
    /// Its condition is false: `skipped`, and its dependents are blocked.
    Skip,
    /// A dependency will not succeed (skipped, errored or blocked itself): `blocked`.
    Blocked {
        /// Index of that dependency.
        dependency: usize,
    },
    /// `--filter` leaves it out: it is not part of the run.
    NotSelected,
    /// It is `errored` without running.
    Error {
        /// Why, in one line.
        message: String,
    },
}

impl Decision {
    /// A short snake_case name: `run`, `skip`, `blocked`, `not_selected`, `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Run => "run",
            Decision::Skip => "skip",
            Decision::Blocked { .. } => "blocked",
            Decision::NotSelected => "not_selected",
            Decision::Error { .. } => "error",
        }
    }
}

/// A condition's value in the run's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionValue {
    /// The task has no condition.
    None,
    /// It evaluated to this.
    Value(bool),
    /// It does not parse (the task is errored).
    Invalid,
}

/// The cache decision for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachePlan {
    /// The run has no cache (`--no-cache`, or none configured).
    Off,
    /// The task is never cached; why.
    NotCacheable(String),
    /// Keyed when the task starts, from the outputs its dependencies produced in this run.
    AtStart,
    /// Its key depends on outputs of this dependency, which will run first.
    AfterDependency {
        /// Index of the dependency.
        dependency: usize,
    },
    /// A result is stored under this key (hex): the task will be `cached`.
    Hit {
        /// The key, hex.
        key: String,
    },
    /// No result is stored under its key; why it missed.
    Miss {
        /// The key, hex (empty when the key could not be computed).
        key: String,
        /// Why, in one line.
        reason: String,
    },
    /// The cache could not be asked; why (the task runs uncached).
    Unavailable(String),
}

/// The plan of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPlan {
    /// What happens to it.
    pub decision: Decision,
    /// Its condition's value.
    pub condition: ConditionValue,
    /// Where it runs (`None` when it cannot be placed or is not selected).
    pub placement: Option<Placement>,
    /// Its cache decision.
    pub cache: CachePlan,
}

/// Every task's plan, by task index of the validated graph.
#[derive(Debug, Clone)]
pub struct Plan {
    tasks: Vec<TaskPlan>,
    executors: Vec<String>,
    context: ConditionContext,
}

impl Plan {
    /// The plan of task `i`.
    pub fn task(&self, i: usize) -> &TaskPlan {
        &self.tasks[i]
    }

    /// Mutable plan of task `i` (for [`cache::decide`]).
    pub(crate) fn task_mut(&mut self, i: usize) -> &mut TaskPlan {
        &mut self.tasks[i]
    }

    /// Every task's plan.
    pub fn tasks(&self) -> &[TaskPlan] {
        &self.tasks
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the graph has no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether task `i` is part of the run (`--filter`).
    pub fn selected(&self, i: usize) -> bool {
        self.tasks[i].decision != Decision::NotSelected
    }

    /// The name of the executor task `i` is placed on (`gate` for gates).
    pub fn executor_name(&self, i: usize) -> Option<&str> {
        let p = self.tasks[i].placement.as_ref()?;
        Some(match p.executor {
            Some(e) => &self.executors[e],
            None => "gate",
        })
    }

    /// The kind of work task `i` needs.
    pub fn work(&self, i: usize) -> Option<WorkKind> {
        self.tasks[i].placement.as_ref().and_then(|p| p.work)
    }

    /// The names of the executors placement chose from, by registry index.
    pub fn executors(&self) -> &[String] {
        &self.executors
    }

    /// The condition context the plan was made in.
    pub fn context(&self) -> &ConditionContext {
        &self.context
    }
}
