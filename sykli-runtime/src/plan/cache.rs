//! Cache keys in the plan: for every task that will run, a hit with its key, why it would
//! miss, or "decided after X runs" when it is keyed on outputs of a dependency that runs.
//!
//! The keys come from the cache module's public API ([`crate::cache::TaskCache::key`],
//! `lookup`, `explain`), through `key_of`: the one call to change when keys are computed
//! differently.

use std::collections::{BTreeMap, HashMap};

use super::{CachePlan, Decision, Plan};
use crate::cache::{KeyContext, Keyed, Produced, TaskCache};
use crate::exec::ExecutorRegistry;
use crate::graph::{Task, ValidGraph};

/// What a hit restores: its outputs and where they lie.
type Restored = Produced;

/// What the cache says about one task, given its dependencies' restored outputs.
fn key_of(
    cache: &TaskCache,
    graph: &ValidGraph,
    task: &Task,
    dependency_outputs: BTreeMap<String, Restored>,
    native_identity: Option<&str>,
    executor_identity: Option<String>,
) -> (CachePlan, Option<Restored>) {
    let ctx = KeyContext {
        env: crate::scheduler::task_env(graph, task),
        dependency_outputs,
        native_identity: native_identity.map(str::to_owned),
        executor_identity,
    };
    let answer = cache.key(task, &ctx).and_then(|keyed| {
        let key = match &keyed {
            Keyed::Cacheable { key, .. } => key.to_hex(),
            Keyed::NotCacheable { reason } => {
                return Ok((CachePlan::NotCacheable(reason.to_string()), None));
            }
        };
        Ok(match cache.lookup(&keyed)? {
            Some(hit) => (CachePlan::Hit { key }, Some(hit.produced())),
            None => {
                let reason = cache.explain(&task.name, &keyed)?.to_string();
                (CachePlan::Miss { key, reason }, None)
            }
        })
    });
    answer.unwrap_or_else(|e| (CachePlan::Unavailable(crate::error_chain(&e)), None))
}

/// Fills in the cache decision of every task the plan runs, in dependency order: a task is
/// keyed on the outputs its dependencies' hits would restore; behind a dependency that
/// would run, the answer waits for that run. `registry` is the one the plan placed tasks
/// on (an executor's code identity enters the keys of tasks placed on it).
pub fn decide(
    plan: &mut Plan,
    graph: &ValidGraph,
    cache: &TaskCache,
    native_identity: Option<&str>,
    registry: &ExecutorRegistry,
) {
    let mut restored: HashMap<usize, Option<Restored>> = HashMap::new();
    for i in graph.topological_order() {
        if plan.task(i).decision != Decision::Run {
            continue;
        }
        let task = graph.task(i);
        let mut dependency_outputs = BTreeMap::new();
        let mut waits_for = None;
        for &d in graph.deps(i) {
            let dep = graph.task(d);
            if dep.outputs.is_empty() {
                continue;
            }
            match restored.get(&d) {
                Some(Some(produced)) => {
                    dependency_outputs.insert(dep.name.clone(), produced.clone());
                }
                _ => waits_for = Some(d),
            }
        }
        let (decision, outputs) = match waits_for {
            Some(dependency) => (CachePlan::AfterDependency { dependency }, None),
            None => {
                let executor_identity = plan
                    .task(i)
                    .placement
                    .as_ref()
                    .and_then(|p| p.executor)
                    .and_then(|e| registry.entry(e).executor().code_identity());
                key_of(
                    cache,
                    graph,
                    task,
                    dependency_outputs,
                    native_identity,
                    executor_identity,
                )
            }
        };
        restored.insert(i, outputs);
        plan.task_mut(i).cache = decision;
    }
}
