//! The plan as people and programs read it: owned, serde-able, with names instead of
//! indices ([`PlanReport`]), and its text form ([`PlanReport::render`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CachePlan, ConditionValue, Decision, Plan};
use crate::graph::condition::{self, Var};
use crate::graph::{ConditionContext, ValidGraph};

/// A whole plan: the condition context, the executors, and every task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanReport {
    /// The variables conditions read, with their values in this run (`None`: unset).
    pub context: BTreeMap<String, Option<String>>,
    /// The registered executors, in placement order.
    pub executors: Vec<String>,
    /// Every task, in definition order.
    pub tasks: Vec<TaskPlanReport>,
}

/// One task of a [`PlanReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPlanReport {
    /// Task name.
    pub name: String,
    /// `run`, `skip`, `blocked`, `not_selected` or `error`.
    pub decision: String,
    /// Why, in one line.
    pub reason: String,
    /// Where it runs, in words: `process`, `container rust:1.95 on docker`, `native f`,
    /// `gate (waits for approval)`; empty when it cannot be placed.
    pub runs_on: String,
    /// The executor it is placed on (`gate` for gates).
    pub executor: Option<String>,
    /// Why that executor, when a placement setting (`target`, `remote`, `prefer`) was
    /// involved.
    pub placement: Option<String>,
    /// The shell command, when it has one.
    pub command: Option<String>,
    /// Direct dependencies.
    pub depends_on: Vec<String>,
    /// Its condition, when it has one.
    pub condition: Option<ConditionReport>,
    /// What it needs to run.
    pub resources: ResourcesReport,
    /// The cache decision: `hit <key>`, why it misses, `not cached: ...`, `decided after
    /// `X` runs ...`, `off`.
    pub cache: String,
}

/// A task's condition and what it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionReport {
    /// The expression as written.
    pub expr: String,
    /// Its value in this context (`None` when it does not parse).
    pub value: Option<bool>,
    /// The variables it reads and their values here (`None`: unset).
    pub variables: BTreeMap<String, Option<String>>,
}

/// What a task needs to run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourcesReport {
    /// Whether it takes one of the run's job slots (gates do not).
    pub slot: bool,
    /// Labels the executor must carry.
    pub requires: Vec<String>,
    /// Container image.
    pub image: Option<String>,
    /// Mounted resources (`resource:path`).
    pub mounts: Vec<String>,
    /// Sidecar services (`name=image`).
    pub services: Vec<String>,
    /// Capabilities it needs from other tasks.
    pub needs: Vec<String>,
    /// Its sandbox (`network off, memory 512 MiB, ...`) when it runs in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

fn var_value(ctx: &ConditionContext, v: Var) -> Option<String> {
    match v {
        Var::Branch => ctx.branch.clone(),
        Var::Tag => ctx.tag.clone(),
        Var::Event => ctx.event.clone(),
        Var::Ci => Some(ctx.ci.to_string()),
        Var::PrNumber => ctx.pr_number.clone(),
        Var::Platform => ctx.platform.clone(),
        Var::Runner => ctx.runner.clone(),
    }
}

fn describe_vars(vars: &BTreeMap<String, Option<String>>) -> String {
    if vars.is_empty() {
        return "reads no variable".into();
    }
    vars.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => format!("{k} unset"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl PlanReport {
    /// The report of `plan`, made for `graph`.
    pub fn new(graph: &ValidGraph, plan: &Plan) -> Self {
        let ctx = plan.context();
        let tasks = (0..graph.len())
            .map(|i| task_report(graph, plan, i, ctx))
            .collect();
        PlanReport {
            context: Var::ALL
                .into_iter()
                .map(|v| (v.as_str().to_owned(), var_value(ctx, v)))
                .collect(),
            executors: plan.executors().to_vec(),
            tasks,
        }
    }

    /// The text form: a block per task in definition order, then a count.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for t in &self.tasks {
            let verb = match t.decision.as_str() {
                "run" => "runs",
                "skip" => "skipped",
                "blocked" => "blocked",
                "not_selected" => "not selected",
                _ => "errors",
            };
            s.push_str(&format!("{}: {verb}: {}\n", t.name, t.reason));
            if t.decision == "not_selected" {
                continue;
            }
            if !t.runs_on.is_empty() {
                s.push_str(&format!("  where: {}\n", t.runs_on));
            }
            if let Some(p) = &t.placement {
                s.push_str(&format!("  placement: {p}\n"));
            }
            if let Some(c) = &t.command {
                s.push_str(&format!("  command: {c}\n"));
            }
            if !t.depends_on.is_empty() {
                s.push_str(&format!("  after: {}\n", t.depends_on.join(", ")));
            }
            if !t.resources.requires.is_empty() {
                s.push_str(&format!(
                    "  requires: {}\n",
                    t.resources.requires.join(", ")
                ));
            }
            if let Some(sb) = &t.resources.sandbox {
                s.push_str(&format!("  sandbox: {sb}\n"));
            }
            if t.decision == "run" && t.cache != "off" {
                s.push_str(&format!("  cache: {}\n", t.cache));
            }
        }
        let runs = self.tasks.iter().filter(|t| t.decision == "run").count();
        s.push_str(&format!("{runs} of {} tasks would run\n", self.tasks.len()));
        s
    }
}

fn task_report(
    graph: &ValidGraph,
    plan: &Plan,
    i: usize,
    ctx: &ConditionContext,
) -> TaskPlanReport {
    let task = graph.task(i);
    let tp = plan.task(i);
    let condition = task.condition_expr().map(|expr| {
        let (value, variables) = match condition::parse(expr) {
            Ok(c) => (
                Some(c.evaluate(ctx)),
                c.variables()
                    .into_iter()
                    .map(|v| (v.as_str().to_owned(), var_value(ctx, v)))
                    .collect(),
            ),
            Err(_) => (None, BTreeMap::new()),
        };
        ConditionReport {
            expr: expr.to_owned(),
            value,
            variables,
        }
    });
    debug_assert!(match (&condition, tp.condition) {
        (None, ConditionValue::None) => true,
        (Some(c), ConditionValue::Value(v)) => c.value == Some(v),
        (Some(c), ConditionValue::Invalid) => c.value.is_none(),
        _ => tp.decision == Decision::NotSelected,
    });
    let reason = match &tp.decision {
        Decision::Run | Decision::Skip => match &condition {
            None => "no condition".to_owned(),
            Some(c) => format!(
                "condition `{}` is {} ({})",
                c.expr,
                if tp.decision == Decision::Run {
                    "true"
                } else {
                    "false"
                },
                describe_vars(&c.variables)
            ),
        },
        Decision::Blocked { dependency } => {
            let dep = &graph.task(*dependency).name;
            match plan.task(*dependency).decision {
                Decision::Skip => format!("dependency `{dep}` would be skipped"),
                _ => format!("dependency `{dep}` would not run"),
            }
        }
        Decision::NotSelected => "not needed by the tasks --filter selects".to_owned(),
        Decision::Error { message } => message.clone(),
    };
    let executor = plan.executor_name(i).map(str::to_owned);
    let runs_on = match (&executor, plan.work(i)) {
        (Some(g), None) if g == "gate" => "gate (waits for approval)".to_owned(),
        (Some(e), Some(crate::exec::WorkKind::Native)) => {
            format!(
                "native {} on {e}",
                task.native.as_deref().unwrap_or_default()
            )
        }
        (Some(e), Some(crate::exec::WorkKind::Container)) => format!(
            "container {} on {e}",
            task.container.as_deref().unwrap_or_default()
        ),
        (Some(e), _) => e.clone(),
        (None, _) => String::new(),
    };
    let cache = match &tp.cache {
        CachePlan::Off => "off".to_owned(),
        CachePlan::NotCacheable(why) => format!("not cached: {why}"),
        CachePlan::AtStart => "keyed when it starts".to_owned(),
        CachePlan::AfterDependency { dependency } => format!(
            "decided after `{}` runs (this task is keyed on its outputs)",
            graph.task(*dependency).name
        ),
        CachePlan::Hit { key } => format!("hit {}", &key[..key.len().min(16)]),
        CachePlan::Miss { reason, .. } => reason.clone(),
        CachePlan::Unavailable(e) => format!("unavailable: {e}"),
    };
    TaskPlanReport {
        name: task.name.clone(),
        decision: tp.decision.as_str().to_owned(),
        reason,
        runs_on,
        executor,
        placement: tp
            .placement
            .as_ref()
            .filter(|p| p.by.is_notable())
            .map(|p| p.by.to_string()),
        command: task.command.clone(),
        depends_on: task.depends_on.clone(),
        condition,
        resources: ResourcesReport {
            slot: task.gate.is_none(),
            requires: task.requires.clone(),
            image: task.container.clone(),
            mounts: task
                .mounts
                .iter()
                .map(|m| format!("{}:{}", m.resource, m.path))
                .collect(),
            services: task
                .services
                .iter()
                .map(|s| format!("{}={}", s.name, s.image))
                .collect(),
            needs: task.needs.clone(),
            sandbox: task.sandbox.as_ref().map(|s| s.describe()),
        },
        cache,
    }
}
