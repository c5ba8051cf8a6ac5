//! The plan's types: [`Plan`], one [`TaskPlan`] per task.

use super::{Affected, Placement};
use crate::exec::WorkKind;
use crate::graph::ConditionContext;

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
    pub(super) tasks: Vec<TaskPlan>,
    pub(super) executors: Vec<String>,
    pub(super) context: ConditionContext,
    pub(super) affected: Option<Affected>,
}

impl Plan {
    /// The plan of task `i`.
    pub fn task(&self, i: usize) -> &TaskPlan {
        &self.tasks[i]
    }

    /// Mutable plan of task `i` (for [`super::cache::decide`]).
    pub(super) fn task_mut(&mut self, i: usize) -> &mut TaskPlan {
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

    /// The tasks the change the run is restricted to affects (`run --affected`), if any.
    pub fn affected(&self) -> Option<&Affected> {
        self.affected.as_ref()
    }

    /// The condition context the plan was made in.
    pub fn context(&self) -> &ConditionContext {
        &self.context
    }
}
