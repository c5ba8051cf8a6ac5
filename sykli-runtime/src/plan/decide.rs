//! Making the plan: selection, conditions, blocking, placement, the cache decision that
//! needs no file read.

use std::collections::HashMap;

use super::Affected;
use super::placement::place;
use super::{CachePlan, ConditionValue, Decision, Plan, TaskPlan};
use crate::exec::ExecutorRegistry;
use crate::exec::native::NativeRegistry;
use crate::graph::{ConditionContext, ValidGraph, condition};

/// What a plan is made from besides the graph.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    /// Run only these tasks and what they depend on (empty: all).
    pub filter: &'a [String],
    /// What conditions are evaluated against.
    pub context: &'a ConditionContext,
    /// The executors tasks are placed on.
    pub executors: &'a ExecutorRegistry,
    /// The native functions this process has.
    pub native: &'a NativeRegistry,
    /// Whether the run has a result cache.
    pub cache: bool,
    /// Run only the tasks a change affects (and what they depend on); `None`: no such
    /// restriction. Combined with `filter`, only affected tasks the filter selects.
    pub affected: Option<&'a Affected>,
}

impl<'a> PlanOptions<'a> {
    /// Every task, no cache.
    pub fn new(
        context: &'a ConditionContext,
        executors: &'a ExecutorRegistry,
        native: &'a NativeRegistry,
    ) -> Self {
        PlanOptions {
            filter: &[],
            context,
            executors,
            native,
            cache: false,
            affected: None,
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A `--filter` name matches no task.
    #[error("unknown task `{name}` in filter{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownFilter {
        /// The name given.
        name: String,
        /// The closest task name, if any is close.
        suggestion: Option<String>,
    },
}

/// Plans every task of `graph` (rules in the [module docs](super)).
///
/// Linear in tasks and edges: each task is decided on its own (a condition is evaluated
/// once per distinct expression), then blocking is propagated from dependencies to
/// dependents in one depth-first pass.
pub fn plan(graph: &ValidGraph, opts: &PlanOptions<'_>) -> Result<Plan, PlanError> {
    let n = graph.len();
    let selected = select(graph, opts.filter, opts.affected)?;
    let mut conditions: HashMap<&str, Result<ConditionValue, String>> = HashMap::new();
    let mut tasks: Vec<TaskPlan> = Vec::with_capacity(n);
    for (i, &sel) in selected.iter().enumerate() {
        let task = graph.task(i);
        let condition = match task.condition_expr() {
            None => Ok(ConditionValue::None),
            Some(expr) => conditions
                .entry(expr)
                .or_insert_with(|| match condition::parse(expr) {
                    Ok(c) => Ok(ConditionValue::Value(c.evaluate(opts.context))),
                    Err(e) => Err(format!(
                        "condition `{expr}` does not parse: {}",
                        e.summary()
                    )),
                })
                .clone(),
        };
        if !sel {
            tasks.push(TaskPlan {
                decision: Decision::NotSelected,
                condition: condition.unwrap_or(ConditionValue::Invalid),
                placement: None,
                cache: CachePlan::Off,
            });
            continue;
        }
        let placement = place(task, opts.executors, opts.native);
        let (decision, condition) = match condition {
            Err(message) => (Decision::Error { message }, ConditionValue::Invalid),
            Ok(c @ ConditionValue::Value(false)) => (Decision::Skip, c),
            Ok(c) => match &placement {
                Ok(_) => (Decision::Run, c),
                Err(e) => (
                    Decision::Error {
                        message: e.to_string(),
                    },
                    c,
                ),
            },
        };
        let cache = if !opts.cache || decision != Decision::Run {
            CachePlan::Off
        } else if let Some(reason) = crate::cache::never_cached(task) {
            CachePlan::NotCacheable(reason.to_string())
        } else {
            CachePlan::AtStart
        };
        tasks.push(TaskPlan {
            decision,
            condition,
            placement: placement.ok(),
            cache,
        });
    }
    block_behind_failures(graph, &selected, &mut tasks);
    Ok(Plan {
        tasks,
        executors: opts
            .executors
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        context: opts.context.clone(),
        affected: opts.affected.cloned(),
    })
}

/// A selected task with a dependency that will not succeed (skipped, errored, blocked) is
/// blocked by the first such dependency, whatever it decided on its own. Dependencies are
/// settled before their dependents by an iterative depth-first walk.
fn block_behind_failures(graph: &ValidGraph, selected: &[bool], tasks: &mut [TaskPlan]) {
    const UNSEEN: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![UNSEEN; tasks.len()];
    let mut stack: Vec<(usize, bool)> = Vec::new();
    for root in 0..tasks.len() {
        if state[root] != UNSEEN || !selected[root] {
            continue;
        }
        stack.push((root, false));
        while let Some((i, deps_done)) = stack.pop() {
            if state[i] == DONE {
                continue;
            }
            if !deps_done {
                state[i] = OPEN;
                stack.push((i, true));
                stack.extend(
                    graph
                        .deps(i)
                        .iter()
                        .filter(|&&d| state[d] == UNSEEN)
                        .map(|&d| (d, false)),
                );
                continue;
            }
            state[i] = DONE;
            let blocker = graph.deps(i).iter().copied().find(|&d| {
                matches!(
                    tasks[d].decision,
                    Decision::Skip | Decision::Blocked { .. } | Decision::Error { .. }
                )
            });
            if let Some(dependency) = blocker {
                let t = &mut tasks[i];
                t.decision = Decision::Blocked { dependency };
                t.cache = CachePlan::Off;
            }
        }
    }
}

/// Which tasks run: all, or the filtered ones plus everything they depend on; with
/// `affected`, only the affected ones among those, plus everything they depend on.
fn select(
    graph: &ValidGraph,
    filter: &[String],
    affected: Option<&Affected>,
) -> Result<Vec<bool>, PlanError> {
    let selected = select_filter(graph, filter)?;
    let Some(affected) = affected else {
        return Ok(selected);
    };
    let roots: Vec<usize> = (0..graph.len())
        .filter(|&i| selected[i] && affected.is_affected(i))
        .collect();
    Ok(with_dependencies(graph, roots))
}

/// `roots` and everything they depend on.
fn with_dependencies(graph: &ValidGraph, mut stack: Vec<usize>) -> Vec<bool> {
    let mut selected = vec![false; graph.len()];
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut selected[i], true) {
            stack.extend_from_slice(graph.deps(i));
        }
    }
    selected
}

/// The filtered tasks plus everything they depend on (all when `filter` is empty).
fn select_filter(graph: &ValidGraph, filter: &[String]) -> Result<Vec<bool>, PlanError> {
    let n = graph.len();
    if filter.is_empty() {
        return Ok(vec![true; n]);
    }
    let mut stack = Vec::new();
    for name in filter {
        let Some(i) = graph.index_of(name) else {
            let suggestion = graph
                .graph()
                .tasks
                .iter()
                .map(|t| (strsim::jaro_winkler(name, &t.name), &t.name))
                .filter(|(s, _)| *s >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, n)| n.clone());
            return Err(PlanError::UnknownFilter {
                name: name.clone(),
                suggestion,
            });
        };
        stack.push(i);
    }
    Ok(with_dependencies(graph, stack))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunConfig;
    use crate::graph::{Graph, validate};

    fn planned(json: &str, ctx: &ConditionContext, filter: &[String]) -> (ValidGraph, Plan) {
        let valid = validate(&Graph::from_json(json).unwrap()).unwrap();
        let config = RunConfig::new(".");
        let reg = config.registry();
        let mut opts = PlanOptions::new(ctx, &reg, &config.native);
        opts.filter = filter;
        let p = plan(&valid, &opts).unwrap();
        (valid, p)
    }

    #[test]
    fn conditions_blocking_selection_and_errors() {
        let ctx = ConditionContext {
            branch: Some("dev".into()),
            ..Default::default()
        };
        let (_, p) = planned(
            r#"{"version": "1", "tasks": [
                {"name": "a", "command": "x"},
                {"name": "deploy", "command": "x", "when": "branch == 'main'", "depends_on": ["a"]},
                {"name": "after", "command": "x", "depends_on": ["deploy"]},
                {"name": "review", "kind": "review"},
                {"name": "far", "command": "x", "remote": true},
                {"name": "gate", "gate": {"strategy": "env", "env_var": "OK"}}
            ]}"#,
            &ctx,
            &[],
        );
        assert_eq!(p.task(0).decision, Decision::Run);
        assert_eq!(p.task(1).decision, Decision::Skip);
        assert_eq!(p.task(1).condition, ConditionValue::Value(false));
        assert_eq!(p.task(2).decision, Decision::Blocked { dependency: 1 });
        assert!(
            matches!(&p.task(3).decision, Decision::Error { message } if message.contains("review tasks")),
            "{:?}",
            p.task(3)
        );
        assert!(
            matches!(&p.task(4).decision, Decision::Error { message } if message.contains("no remote executor is configured")),
        );
        assert_eq!(p.executor_name(0), Some("process"));
        assert_eq!(p.executor_name(5), Some("gate"));
    }

    #[test]
    fn filters_select_dependencies_and_reject_unknown_names() {
        let json = r#"{"version": "1", "tasks": [
            {"name": "a", "command": "x"}, {"name": "b", "command": "x", "depends_on": ["a"]},
            {"name": "c", "command": "x"}]}"#;
        let (_, p) = planned(json, &ConditionContext::default(), &["b".to_owned()]);
        assert!(p.selected(0) && p.selected(1) && !p.selected(2));
        let valid = validate(&Graph::from_json(json).unwrap()).unwrap();
        let config = RunConfig::new(".");
        let reg = config.registry();
        let ctx = ConditionContext::default();
        let filter = ["bb".to_owned()];
        let mut opts = PlanOptions::new(&ctx, &reg, &config.native);
        opts.filter = &filter;
        let e = plan(&valid, &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown task `bb` in filter (did you mean `b`?)"
        );
    }
}
