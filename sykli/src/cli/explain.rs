//! `sykli explain [TASK]`: what a run would do and why, without running anything.
//!
//! For every task: whether it runs, is skipped (its condition, with the values the condition
//! read), would be blocked (a dependency is skipped) or is left out by `--filter`; where it
//! runs (process, container, native function); and free-form facts ([`Fact`]) that other
//! parts of sykli add, such as `cache: ...`.

use std::collections::BTreeMap;

use serde::Serialize;
use sykli_runtime::context::RunContext;
use sykli_runtime::graph::condition::{self, Var};
use sykli_runtime::graph::{ConditionContext, Task, ValidGraph};

use super::error::CliError;
use super::run::{load_pipeline, validate_graph};
use super::{ExplainArgs, print_out};
use crate::report::Envelope;

/// What would happen to one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// It would run.
    Run,
    /// Its condition is false.
    Skip,
    /// A dependency would not succeed before it (skipped or blocked).
    Blocked,
    /// `--filter` leaves it out.
    NotSelected,
    /// It would be `errored` without running (e.g. a condition that does not parse).
    Error,
}

/// One line of extra information about a task (`cache: hit`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fact {
    /// Short label, e.g. `cache`.
    pub label: String,
    /// The information.
    pub value: String,
}

/// A task's condition and what it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionFacts {
    /// The expression as written.
    pub expr: String,
    /// Its value in this context (`None` when it does not parse).
    pub value: Option<bool>,
    /// The variables it reads and their values here (`None`: unset).
    pub variables: BTreeMap<String, Option<String>>,
}

/// The explanation of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskExplanation {
    /// Task name.
    pub name: String,
    /// What would happen.
    pub decision: Decision,
    /// Why, in one line.
    pub reason: String,
    /// Where it would run: `process`, `container <image>` or `native <fn>`.
    pub runs_on: String,
    /// The shell command, when it has one.
    pub command: Option<String>,
    /// Direct dependencies.
    pub depends_on: Vec<String>,
    /// Its condition, when it has one.
    pub condition: Option<ConditionFacts>,
    /// Further facts, printed as `label: value` lines.
    pub facts: Vec<Fact>,
}

/// Runs `sykli explain`.
pub fn explain(args: &ExplainArgs) -> Result<(), CliError> {
    let loaded = load_pipeline(&args.path)?;
    let valid = validate_graph(&loaded.graph)?;
    let ctx = RunContext::detect(&loaded.project_root);
    let mut filter = args.filter.clone();
    filter.extend(args.task.iter().cloned());
    let mut tasks = plan(&valid, &ctx, &filter)?;
    cache_facts(&valid, &loaded.project_root, &mut tasks);
    if args.json {
        let data = serde_json::json!({ "context": context_json(&ctx), "tasks": tasks });
        print_out(&Envelope::success(data).to_line());
        return Ok(());
    }
    print_out(&render(&tasks));
    Ok(())
}

/// Adds a `cache:` fact to every task that would run: a hit with its key, or why it would
/// miss (the input, env var or dependency output that changed, or "no previous entry").
/// Dependencies come first, so a dependent is keyed on the outputs its dependencies' hits
/// would restore; behind a dependency that would run, the answer waits for that run.
fn cache_facts(valid: &ValidGraph, project_root: &std::path::Path, tasks: &mut [TaskExplanation]) {
    use std::collections::HashMap;
    use sykli_runtime::cache::{KeyContext, Produced, Store, TaskCache};

    let root = std::path::absolute(project_root).unwrap_or_else(|_| project_root.to_path_buf());
    let cache = match Store::open_default().and_then(|s| TaskCache::open(s, &root)) {
        Ok(c) => c,
        Err(e) => {
            for t in tasks.iter_mut() {
                t.facts.push(Fact {
                    label: "cache".into(),
                    value: format!("unavailable: {e}"),
                });
            }
            return;
        }
    };
    let position: HashMap<String, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    // What a hit would restore, by task; `None` for a task that would run.
    let mut restored: HashMap<String, Option<Produced>> = HashMap::new();
    for i in valid.topological_order() {
        let task = valid.task(i);
        let Some(&at) = position.get(&task.name) else {
            continue;
        };
        if !matches!(tasks[at].decision, Decision::Run) {
            continue;
        }
        let mut dependency_outputs = BTreeMap::new();
        let mut waits_for = None;
        for &d in valid.deps(i) {
            let dep = valid.task(d);
            if dep.outputs.is_empty() {
                continue;
            }
            match restored.get(&dep.name) {
                Some(Some(produced)) => {
                    dependency_outputs.insert(dep.name.clone(), produced.clone());
                }
                _ => waits_for = Some(dep.name.clone()),
            }
        }
        let value = if let Some(dep) = waits_for {
            restored.insert(task.name.clone(), None);
            format!("decided after `{dep}` runs (this task is keyed on its outputs)")
        } else {
            let key_ctx = KeyContext {
                env: sykli_runtime::scheduler::task_env(valid, task),
                dependency_outputs,
                native_identity: None,
            };
            let answer = cache.key(task, &key_ctx).and_then(|keyed| {
                Ok(match cache.lookup(&keyed)? {
                    Some(hit) => {
                        let key = hit.key.to_hex();
                        restored.insert(task.name.clone(), Some(hit.produced()));
                        format!("hit {}", &key[..16])
                    }
                    None => {
                        restored.insert(task.name.clone(), None);
                        cache.explain(&task.name, &keyed)?.to_string()
                    }
                })
            });
            answer.unwrap_or_else(|e| format!("unavailable: {e}"))
        };
        tasks[at].facts.push(Fact {
            label: "cache".into(),
            value,
        });
    }
}

fn context_json(ctx: &ConditionContext) -> BTreeMap<&'static str, Option<String>> {
    Var::ALL
        .into_iter()
        .map(|v| (v.as_str(), var_value(ctx, v)))
        .collect()
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

fn placement(task: &Task) -> String {
    let mut s = if let Some(f) = &task.native {
        format!("native {f}")
    } else if let Some(image) = &task.container {
        format!("container {image}")
    } else if task.gate.is_some() {
        "gate (waits for approval)".to_string()
    } else {
        "process".to_string()
    };
    if task.remote {
        s.push_str(" (remote requested; no remote executor configured, runs here)");
    }
    s
}

/// Which tasks `--filter` selects: the named ones and everything they depend on.
fn select(valid: &ValidGraph, filter: &[String]) -> Result<Vec<bool>, CliError> {
    if filter.is_empty() {
        return Ok(vec![true; valid.len()]);
    }
    let mut selected = vec![false; valid.len()];
    let mut stack = Vec::new();
    for name in filter {
        let Some(i) = valid.index_of(name) else {
            let names: Vec<&str> = valid
                .graph()
                .tasks
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            return Err(CliError::usage(
                "unknown_filter",
                anyhow::anyhow!("unknown task `{name}`; tasks: {}", names.join(", ")),
            ));
        };
        stack.push(i);
    }
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut selected[i], true) {
            stack.extend_from_slice(valid.deps(i));
        }
    }
    Ok(selected)
}

/// Decides every task as the scheduler would before anything fails: conditions are
/// evaluated, dependents of skipped tasks are blocked, unselected tasks are left out.
pub fn plan(
    valid: &ValidGraph,
    ctx: &ConditionContext,
    filter: &[String],
) -> Result<Vec<TaskExplanation>, CliError> {
    let selected = select(valid, filter)?;
    let mut out: Vec<Option<TaskExplanation>> = vec![None; valid.len()];
    for i in valid.topological_order() {
        let task = valid.task(i);
        let condition = task.condition_expr().map(|expr| {
            let parsed = condition::parse(expr);
            let (value, variables) = match &parsed {
                Ok(c) => (
                    Some(c.evaluate(ctx)),
                    c.variables()
                        .into_iter()
                        .map(|v| (v.as_str().to_string(), var_value(ctx, v)))
                        .collect(),
                ),
                Err(_) => (None, BTreeMap::new()),
            };
            ConditionFacts {
                expr: expr.to_string(),
                value,
                variables,
            }
        });
        let not_ok_dep = valid.deps(i).iter().find_map(|&d| {
            let e = out[d].as_ref()?;
            match e.decision {
                Decision::Skip => Some(format!("dependency `{}` would be skipped", e.name)),
                Decision::Blocked | Decision::Error => {
                    Some(format!("dependency `{}` would not run", e.name))
                }
                _ => None,
            }
        });
        let (decision, reason) = if !selected[i] {
            (
                Decision::NotSelected,
                "not needed by the tasks --filter selects".to_string(),
            )
        } else if let Some(why) = not_ok_dep {
            (Decision::Blocked, why)
        } else {
            match &condition {
                None => (Decision::Run, "no condition".to_string()),
                Some(c) => {
                    let vars = describe_vars(&c.variables);
                    match c.value {
                        Some(true) => (
                            Decision::Run,
                            format!("condition `{}` is true ({vars})", c.expr),
                        ),
                        Some(false) => (
                            Decision::Skip,
                            format!("condition `{}` is false ({vars})", c.expr),
                        ),
                        None => (
                            Decision::Error,
                            format!("condition `{}` does not parse", c.expr),
                        ),
                    }
                }
            }
        };
        out[i] = Some(TaskExplanation {
            name: task.name.clone(),
            decision,
            reason,
            runs_on: placement(task),
            command: task.command.clone(),
            depends_on: task.depends_on.clone(),
            condition,
            facts: Vec::new(),
        });
    }
    Ok(out.into_iter().flatten().collect())
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

/// The text form: a block per task in definition order.
pub fn render(tasks: &[TaskExplanation]) -> String {
    let mut s = String::new();
    for t in tasks {
        let verb = match t.decision {
            Decision::Run => "runs",
            Decision::Skip => "skipped",
            Decision::Blocked => "blocked",
            Decision::NotSelected => "not selected",
            Decision::Error => "errors",
        };
        s.push_str(&format!("{}: {verb}: {}\n", t.name, t.reason));
        if t.decision != Decision::NotSelected {
            s.push_str(&format!("  where: {}\n", t.runs_on));
            if let Some(c) = &t.command {
                s.push_str(&format!("  command: {c}\n"));
            }
            if !t.depends_on.is_empty() {
                s.push_str(&format!("  after: {}\n", t.depends_on.join(", ")));
            }
            for f in &t.facts {
                s.push_str(&format!("  {}: {}\n", f.label, f.value));
            }
        }
    }
    let runs = tasks.iter().filter(|t| t.decision == Decision::Run).count();
    s.push_str(&format!("{runs} of {} tasks would run\n", tasks.len()));
    s
}
