//! Validation: the wire [`Graph`] in, a [`ValidGraph`] (what the planner and scheduler consume)
//! out, or every error at once.
//!
//! Checks, each naming the task(s) at fault: empty and duplicate names, unknown dependencies
//! (with a "did you mean"), self-dependencies, cycles (with the path), missing commands, empty
//! env keys, fields newer than the declared version, conditions that do not parse, needs
//! without a provider and capabilities with several, `task_inputs` naming undeclared outputs,
//! mounts of unknown resources or at relative paths, paths escaping the project or workdir,
//! `timeout: 0`, incomplete services and gates, bad matrices.

use std::collections::{HashMap, VecDeque};

use rustc_hash::{FxHashMap, FxHashSet};
use std::path::{Component, Path};

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};

use super::condition;
use super::error::{ValidationError, ValidationErrors, ValidationWarning};
use super::limits::Limits;
use super::matrix;
use super::model::{
    Background, Gate, GateStrategy, Graph, MountKind, Resource, SuccessCriterion, Task, Version,
};

/// A graph that passed validation, matrix-expanded.
///
/// Guarantees: task names are unique and non-empty; the graph is acyclic; every task's
/// `depends_on` lists ALL its direct dependencies (its own `depends_on`, its `task_inputs`
/// sources and the providers of its `needs`), deduplicated, in first-seen order, each naming an
/// existing task. [`ValidGraph::deps`] and [`ValidGraph::dependents`] give the same edges as
/// task indices.
#[derive(Debug, Clone)]
pub struct ValidGraph {
    graph: Graph,
    index: FxHashMap<String, usize>,
    deps: Csr,
    dependents: Csr,
    warnings: Vec<ValidationWarning>,
}

/// Adjacency lists packed in one vector (compressed sparse rows).
#[derive(Debug, Clone, Default)]
struct Csr {
    offsets: Vec<usize>,
    targets: Vec<usize>,
}

impl Csr {
    fn row(&self, i: usize) -> &[usize] {
        &self.targets[self.offsets[i]..self.offsets[i + 1]]
    }
}

impl ValidGraph {
    /// The validated, matrix-expanded graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Takes the graph out.
    pub fn into_graph(self) -> Graph {
        self.graph
    }

    /// Suspicious but valid things, e.g. unknown fields (kept and re-emitted, but ignored).
    pub fn warnings(&self) -> &[ValidationWarning] {
        &self.warnings
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.graph.tasks.len()
    }

    /// Whether the graph has no tasks.
    pub fn is_empty(&self) -> bool {
        self.graph.tasks.is_empty()
    }

    /// The task at index `i` (document order after matrix expansion).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn task(&self, i: usize) -> &Task {
        &self.graph.tasks[i]
    }

    /// The index of the task named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Indices of the tasks task `i` depends on directly, in `depends_on` order.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn deps(&self, i: usize) -> &[usize] {
        self.deps.row(i)
    }

    /// Indices of the tasks that depend directly on task `i`, in ascending order.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn dependents(&self, i: usize) -> &[usize] {
        self.dependents.row(i)
    }

    /// Every task index in an order where each task comes after all its dependencies; among
    /// tasks that are ready together, document order.
    pub fn topological_order(&self) -> Vec<usize> {
        let n = self.len();
        let mut pending: Vec<usize> = (0..n).map(|i| self.deps(i).len()).collect();
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
            .filter(|&i| pending[i] == 0)
            .map(std::cmp::Reverse)
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(i);
            for &d in self.dependents(i) {
                pending[d] -= 1;
                if pending[d] == 0 {
                    ready.push(std::cmp::Reverse(d));
                }
            }
        }
        order
    }
}

/// Validates `graph` within the default [`Limits`], collecting every error. Clones the graph;
/// see [`validate_owned`].
pub fn validate(graph: &Graph) -> Result<ValidGraph, ValidationErrors> {
    validate_owned(graph.clone())
}

/// Validates `graph` within the default [`Limits`], collecting every error, without copying it.
pub fn validate_owned(graph: Graph) -> Result<ValidGraph, ValidationErrors> {
    validate_owned_with(graph, &Limits::DEFAULT)
}

/// [`validate`] with explicit limits.
pub fn validate_with(graph: &Graph, limits: &Limits) -> Result<ValidGraph, ValidationErrors> {
    validate_owned_with(graph.clone(), limits)
}

/// [`validate_owned`] with explicit limits. The limits are checked first, without expanding
/// anything; a graph over a limit gets only the limit errors.
pub fn validate_owned_with(
    mut graph: Graph,
    limits: &Limits,
) -> Result<ValidGraph, ValidationErrors> {
    let over = limits.check_graph(&graph);
    if !over.is_empty() {
        return Err(ValidationErrors::new(over));
    }
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let checked = check(&graph, &mut errors, &mut warnings);
    if !errors.is_empty() {
        return Err(ValidationErrors::new(errors));
    }
    for (t, deps) in graph.tasks.iter_mut().zip(checked.full_deps) {
        if let Some(deps) = deps {
            t.depends_on = deps;
        }
    }
    if graph.tasks.iter().all(|t| t.matrix.is_empty()) {
        // No expansion: the edges found while checking are the final ones.
        let index = name_index(&graph);
        return Ok(ValidGraph {
            graph,
            index,
            deps: checked.deps,
            dependents: checked.dependents,
            warnings,
        });
    }
    let graph = matrix::expand(graph).map_err(ValidationErrors::new)?;
    Ok(index(graph, warnings))
}

/// What checking found out besides errors.
struct Checked {
    /// Per task, its complete dependency list when it differs from `depends_on`.
    full_deps: Vec<Option<Vec<String>>>,
    /// Dependency edges as indices (valid only when there are no errors).
    deps: Csr,
    /// The same edges reversed.
    dependents: Csr,
}

/// Runs every check on the unexpanded graph.
fn check(
    g: &Graph,
    errors: &mut Vec<ValidationError>,
    warnings: &mut Vec<ValidationWarning>,
) -> Checked {
    // Versions.
    let declared = g.version;
    if !g.resources.is_empty() && declared < Version::V2 {
        errors.push(ValidationError::ResourcesNeedVersion { declared });
    }
    if declared < Version::V4 {
        for t in &g.tasks {
            for (field, needed) in t.versioned_fields() {
                if needed > declared {
                    errors.push(ValidationError::VersionTooLow {
                        task: t.name.clone(),
                        field,
                        needed,
                        declared,
                    });
                }
            }
        }
    }

    // Names.
    let mut index: FxHashMap<&str, usize> =
        FxHashMap::with_capacity_and_hasher(g.tasks.len(), Default::default());
    let mut reported_dup = FxHashSet::default();
    for (i, t) in g.tasks.iter().enumerate() {
        if t.name.is_empty() {
            errors.push(ValidationError::EmptyName { index: i });
        } else if index.contains_key(t.name.as_str()) {
            if reported_dup.insert(t.name.as_str()) {
                errors.push(ValidationError::DuplicateName {
                    name: t.name.clone(),
                });
            }
        } else {
            index.insert(&t.name, i);
        }
    }

    // Capabilities.
    let mut providers: IndexMap<&str, Vec<usize>> = IndexMap::new();
    for (i, t) in g.tasks.iter().enumerate() {
        for p in &t.provides {
            let list = providers.entry(p.name.as_str()).or_default();
            // Tasks come in order: a repeat within one task is the last entry.
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    for (cap, list) in &providers {
        if list.len() > 1 {
            errors.push(ValidationError::DuplicateProvider {
                capability: cap.to_string(),
                tasks: list.iter().map(|&i| g.tasks[i].name.clone()).collect(),
            });
        }
    }

    // Resources.
    for (id, r) in &g.resources {
        if let Resource::Directory { path, .. } = r
            && escapes(path)
        {
            errors.push(ValidationError::DirectoryEscapesProject {
                task: None,
                resource: Some(id.clone()),
                path: path.clone(),
            });
        }
    }
    for k in g.extra.keys() {
        warnings.push(ValidationWarning::UnknownField {
            task: None,
            field: k.clone(),
        });
    }

    // Per task; dependency indices collected for the cycle check.
    let n = g.tasks.len();
    let mut deps = Csr {
        offsets: Vec::with_capacity(n + 1),
        targets: Vec::with_capacity(n * 3),
    };
    deps.offsets.push(0);
    let mut full_deps = Vec::with_capacity(n);
    let mut scratch = DepScratch {
        mark: vec![0; n],
        suggestion_budget: SUGGESTION_BUDGET,
    };
    for (i, t) in g.tasks.iter().enumerate() {
        check_task(g, t, errors, warnings);
        let names = resolve_deps(
            g,
            i,
            t,
            &index,
            &providers,
            &mut scratch,
            &mut deps.targets,
            errors,
        );
        deps.offsets.push(deps.targets.len());
        full_deps.push(names);
    }
    let dependents = deps.reversed(n);

    let names_ok = errors.iter().all(|e| {
        !matches!(
            e,
            ValidationError::DuplicateName { .. } | ValidationError::EmptyName { .. }
        )
    });
    if names_ok && !is_acyclic(&deps, &dependents) {
        find_cycles(g, &deps, errors);
    }
    Checked {
        full_deps,
        deps,
        dependents,
    }
}

impl Csr {
    /// The same edges reversed; each row in ascending order.
    fn reversed(&self, n: usize) -> Csr {
        let mut count = vec![0usize; n];
        for &j in &self.targets {
            count[j] += 1;
        }
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut acc = 0;
        for c in &count {
            acc += c;
            offsets.push(acc);
        }
        let mut fill = offsets[..n].to_vec();
        let mut targets = vec![0; self.targets.len()];
        for i in 0..n {
            for &j in self.row(i) {
                targets[fill[j]] = i;
                fill[j] += 1;
            }
        }
        Csr { offsets, targets }
    }
}

/// Kahn's algorithm: whether every task can be ordered after its dependencies. Cheap, so the
/// cycle search (which builds a petgraph graph) only runs when there is a cycle.
fn is_acyclic(deps: &Csr, dependents: &Csr) -> bool {
    let n = deps.offsets.len() - 1;
    let mut pending: Vec<usize> = (0..n).map(|i| deps.row(i).len()).collect();
    let mut stack: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut done = 0;
    while let Some(i) = stack.pop() {
        done += 1;
        for &d in dependents.row(i) {
            pending[d] -= 1;
            if pending[d] == 0 {
                stack.push(d);
            }
        }
    }
    done == n
}

fn check_task(
    g: &Graph,
    t: &Task,
    errors: &mut Vec<ValidationError>,
    warnings: &mut Vec<ValidationWarning>,
) {
    let name = || t.name.clone();
    let needs_command =
        t.gate.is_none() && t.kind.as_deref() != Some("review") && t.native.is_none();
    if needs_command && t.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
        errors.push(ValidationError::MissingCommand { task: name() });
    }
    if t.env.keys().any(String::is_empty) {
        errors.push(ValidationError::EmptyEnvKey { task: name() });
    }
    if let Some(expr) = t.condition_expr()
        && let Err(error) = condition::parse(expr)
    {
        errors.push(ValidationError::InvalidCondition {
            task: name(),
            error,
        });
    }
    if let (Some(w), Some(c)) = (&t.when, &t.condition)
        && w != c
    {
        warnings.push(ValidationWarning::ConditionShadowed { task: name() });
    }
    if t.timeout == Some(0) {
        errors.push(ValidationError::ZeroTimeout { task: name() });
    }
    for m in &t.mounts {
        if !m.path.starts_with('/') {
            errors.push(ValidationError::MountPathNotAbsolute {
                task: name(),
                resource: m.resource.clone(),
                path: m.path.clone(),
            });
        }
        match (g.resources.get(&m.resource), m.kind) {
            (Some(Resource::Directory { .. }), MountKind::Directory)
            | (Some(Resource::Cache { .. }), MountKind::Cache) => {}
            (Some(r), kind) => errors.push(ValidationError::MountTypeMismatch {
                task: name(),
                resource: m.resource.clone(),
                mount_type: kind_str(kind),
                resource_type: match r {
                    Resource::Directory { .. } => "directory",
                    Resource::Cache { .. } => "cache",
                },
            }),
            (None, MountKind::Directory) if m.resource.starts_with("src:") => {
                let path = &m.resource["src:".len()..];
                if path.is_empty() || escapes(path) {
                    errors.push(ValidationError::DirectoryEscapesProject {
                        task: Some(name()),
                        resource: Some(m.resource.clone()),
                        path: path.to_string(),
                    });
                }
            }
            (None, _) => errors.push(ValidationError::UnknownResource {
                task: name(),
                resource: m.resource.clone(),
            }),
        }
    }
    let mut exit_codes = 0;
    for c in &t.success_criteria {
        match c {
            SuccessCriterion::ExitCode { .. } => exit_codes += 1,
            SuccessCriterion::FileExists { path } | SuccessCriterion::FileNonEmpty { path } => {
                if path.is_empty() || escapes(path) {
                    errors.push(ValidationError::CriterionPathEscapes {
                        task: name(),
                        path: path.clone(),
                    });
                }
            }
        }
    }
    if exit_codes > 1 {
        errors.push(ValidationError::DuplicateExitCode { task: name() });
    }
    for s in &t.services {
        for (field, value) in [("image", &s.image), ("name", &s.name)] {
            if value.is_empty() {
                errors.push(ValidationError::IncompleteService {
                    task: name(),
                    field,
                });
            }
        }
        for k in s.extra.keys() {
            warnings.push(ValidationWarning::UnknownField {
                task: Some(name()),
                field: format!("services.{k}"),
            });
        }
    }
    if let Some(gate) = &t.gate {
        check_gate(t, gate, errors, warnings);
    }
    if let Some(bg) = &t.background {
        check_background(t, bg, errors);
    }
    if let Some(sb) = &t.sandbox {
        check_sandbox(t, sb, errors);
    }
    if let Some(value) = &t.tests
        && value.parse::<crate::testreport::TestFormat>().is_err()
    {
        errors.push(ValidationError::UnknownTestFormat {
            task: name(),
            value: value.clone(),
        });
    }
    matrix::check_matrix(t, errors);
    for k in t.extra.keys() {
        warnings.push(ValidationWarning::UnknownField {
            task: Some(name()),
            field: k.clone(),
        });
    }
}

/// A background task is a host process with a readiness check: nothing else can run it, and
/// what only makes sense for a task that ends (retries, success criteria, outputs, caching
/// inputs) is refused rather than ignored.
fn check_background(t: &Task, bg: &Background, errors: &mut Vec<ValidationError>) {
    let mut problem = |problem| {
        errors.push(ValidationError::InvalidBackground {
            task: t.name.clone(),
            problem,
        })
    };
    if bg.ready.trim().is_empty() {
        problem("has an empty `ready` check");
    }
    if bg.ready_timeout == 0 {
        problem("has `ready_timeout` 0 (give the seconds to wait for `ready`)");
    }
    if t.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
        problem("has no command to keep running");
    }
    if t.gate.is_some() {
        problem("is also a gate");
    }
    if t.native.is_some() {
        problem("is a native function (background tasks are host processes)");
    }
    if t.container.is_some() {
        problem("has a container (use `services` for containers a task needs)");
    }
    if t.remote {
        problem("must run remotely (a background task lives as long as the local run)");
    }
    if t.timeout.is_some() {
        problem(
            "has `timeout` (it runs until the run ends; `ready_timeout` bounds the wait for `ready`)",
        );
    }
    if t.retry.is_some_and(|r| r > 0) {
        problem("has `retry` (a service that fails to get ready is not retried)");
    }
    if !t.success_criteria.is_empty() {
        problem("has `success_criteria` (readiness is its `ready` check)");
    }
    if !t.outputs.is_empty() {
        problem("has `outputs` (it is still running when its dependents start)");
    }
    if !t.inputs.is_empty() {
        problem("has `inputs` (background tasks are never cached)");
    }
}

/// A sandboxed task is a host command run in namespaces: containers, background services
/// and limits of zero are refused rather than ignored.
fn check_sandbox(t: &Task, sb: &super::Sandbox, errors: &mut Vec<ValidationError>) {
    let mut problem = |problem: String| {
        errors.push(ValidationError::InvalidSandbox {
            task: t.name.clone(),
            problem,
        })
    };
    if t.container.is_some() {
        problem("has a container (a container is its own sandbox; drop one of them)".into());
    }
    if t.background.is_some() {
        problem("is a background task (a sandbox ends with its task)".into());
    }
    if t.command.is_none() && t.gate.is_none() {
        problem("has no command (only shell commands run in the sandbox)".into());
    }
    if sb.memory_mb == Some(0) {
        problem("has `memory_mb` 0".into());
    }
    if sb.pids == Some(0) {
        problem("has `pids` 0".into());
    }
    if let Some(c) = sb.cpus.filter(|c| !(c.is_finite() && *c > 0.0)) {
        problem(format!("has `cpus` {c} (give a positive number of CPUs)"));
    }
    for p in sb.paths.iter().filter(|p| !p.starts_with('/')) {
        problem(format!("has sandbox path `{p}`, which is not absolute"));
    }
}

fn check_gate(
    t: &Task,
    gate: &Gate,
    errors: &mut Vec<ValidationError>,
    warnings: &mut Vec<ValidationWarning>,
) {
    let missing = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
    match gate.strategy {
        GateStrategy::Env if missing(&gate.env_var) => {
            errors.push(ValidationError::IncompleteGate {
                task: t.name.clone(),
                strategy: "env",
                field: "env_var",
            })
        }
        GateStrategy::File if missing(&gate.file_path) => {
            errors.push(ValidationError::IncompleteGate {
                task: t.name.clone(),
                strategy: "file",
                field: "file_path",
            })
        }
        _ => {}
    }
    if gate.timeout == Some(0) {
        errors.push(ValidationError::ZeroTimeout {
            task: t.name.clone(),
        });
    }
    for k in gate.extra.keys() {
        warnings.push(ValidationWarning::UnknownField {
            task: Some(t.name.clone()),
            field: format!("gate.{k}"),
        });
    }
}

fn kind_str(k: MountKind) -> &'static str {
    match k {
        MountKind::Directory => "directory",
        MountKind::Cache => "cache",
    }
}

/// State shared by [`resolve_deps`] across tasks, so that each task costs time linear in its
/// number of dependencies.
struct DepScratch {
    /// `mark[j] == i + 1` when task `j` is already a dependency of task `i`.
    mark: Vec<usize>,
    /// What is left of the work allowed for "did you mean" suggestions, in character pairs
    /// compared ([`SUGGESTION_BUDGET`]).
    suggestion_budget: u64,
}

/// The work all "did you mean" suggestions of one validation may take, in character pairs
/// compared: dozens of typos in a graph of a thousand tasks; bounded for any document (past
/// it, unknown dependencies are still reported, without a suggestion).
const SUGGESTION_BUDGET: u64 = 4_000_000;

/// Checks a task's dependencies, appends them as indices to `out`, and returns the complete
/// name list when it differs from `depends_on`.
#[allow(clippy::too_many_arguments)]
fn resolve_deps<'g>(
    g: &'g Graph,
    i: usize,
    t: &'g Task,
    index: &FxHashMap<&str, usize>,
    providers: &IndexMap<&str, Vec<usize>>,
    scratch: &mut DepScratch,
    out: &mut Vec<usize>,
    errors: &mut Vec<ValidationError>,
) -> Option<Vec<String>> {
    let mut deps: Vec<usize> = Vec::with_capacity(t.depends_on.len());
    let mut changed = false;
    let mut self_reported = false;
    let mut unknown_reported: FxHashSet<&'g str> = FxHashSet::default();
    let stamp = i + 1;
    let mut add = |d: &'g str,
                   deps: &mut Vec<usize>,
                   scratch: &mut DepScratch,
                   errors: &mut Vec<ValidationError>|
     -> bool {
        if d == t.name {
            if !self_reported {
                errors.push(ValidationError::SelfDependency {
                    task: t.name.clone(),
                });
                self_reported = true;
            }
            return false;
        }
        match index.get(d) {
            Some(&j) => {
                if scratch.mark[j] == stamp {
                    false
                } else {
                    scratch.mark[j] = stamp;
                    deps.push(j);
                    true
                }
            }
            None => {
                if unknown_reported.insert(d) {
                    errors.push(ValidationError::UnknownDependency {
                        task: t.name.clone(),
                        dependency: d.to_string(),
                        suggestion: suggest(g, d, &mut scratch.suggestion_budget),
                    });
                }
                false
            }
        }
    };
    for d in &t.depends_on {
        if !add(d, &mut deps, scratch, errors) {
            changed = true; // a duplicate (or an error, which stops the build anyway)
        }
    }
    for input in &t.task_inputs {
        if add(&input.from_task, &mut deps, scratch, errors) {
            changed = true;
        }
        if let Some(&j) = index.get(input.from_task.as_str())
            && j != i
            && !g.tasks[j].outputs.contains_key(&input.output)
        {
            errors.push(ValidationError::UndeclaredOutput {
                task: t.name.clone(),
                from_task: input.from_task.clone(),
                output: input.output.clone(),
            });
        }
    }
    let mut needs_reported: FxHashSet<&str> = FxHashSet::default();
    for need in &t.needs {
        match providers.get(need.as_str()) {
            None => {
                if needs_reported.insert(need) {
                    errors.push(ValidationError::NoProvider {
                        task: t.name.clone(),
                        capability: need.clone(),
                    })
                }
            }
            Some(list) => {
                // Several providers are an error of their own: one edge is enough here.
                for &p in list.iter().take(1) {
                    if p != i && scratch.mark[p] != stamp {
                        scratch.mark[p] = stamp;
                        deps.push(p);
                        changed = true;
                    }
                }
            }
        }
    }
    let names = changed.then(|| deps.iter().map(|&j| g.tasks[j].name.clone()).collect());
    out.extend_from_slice(&deps);
    names
}

/// The closest task name to `unknown` with Jaro-Winkler similarity >= 0.8 (first on ties),
/// or `None` when the comparisons would exceed what is left of `budget`.
fn suggest(g: &Graph, unknown: &str, budget: &mut u64) -> Option<String> {
    let mut best: Option<(&str, f64)> = None;
    for t in &g.tasks {
        let cost = (unknown.len().max(1) as u64).saturating_mul(t.name.len().max(1) as u64);
        if cost > *budget {
            *budget = 0;
            return None;
        }
        *budget -= cost;
        let s = strsim::jaro_winkler(unknown, &t.name);
        if s >= 0.8 && best.is_none_or(|(_, b)| s > b) {
            best = Some((&t.name, s));
        }
    }
    best.map(|(n, _)| n.to_string())
}

/// Whether a relative path leaves its base: absolute, or `..` below the start.
fn escapes(path: &str) -> bool {
    let mut depth: i64 = 0;
    for c in Path::new(path).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

/// Reports one cycle per strongly connected component, starting at its first task in
/// document order and following the shortest way back to it.
fn find_cycles(g: &Graph, edges: &Csr, errors: &mut Vec<ValidationError>) {
    let n = edges.offsets.len() - 1;
    let mut pg: DiGraph<(), ()> = DiGraph::with_capacity(n, edges.targets.len());
    for _ in 0..n {
        pg.add_node(());
    }
    for i in 0..n {
        for &d in edges.row(i) {
            pg.add_edge(NodeIndex::new(i), NodeIndex::new(d), ());
        }
    }
    let mut sccs: Vec<Vec<usize>> = petgraph::algo::tarjan_scc(&pg)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut v: Vec<usize> = c.into_iter().map(NodeIndex::index).collect();
            v.sort_unstable();
            v
        })
        .collect();
    sccs.sort_by_key(|c| c[0]);
    for scc in sccs {
        let start = scc[0];
        // BFS from start over edges inside the component, back to start.
        let mut prev: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'bfs: while let Some(u) = queue.pop_front() {
            for &v in edges.row(u) {
                if v == start {
                    last = Some(u);
                    break 'bfs;
                }
                if scc.binary_search(&v).is_ok() && !prev.contains_key(&v) {
                    prev.insert(v, u);
                    queue.push_back(v);
                }
            }
        }
        let Some(mut u) = last else { continue };
        let mut chain = Vec::new();
        while u != start {
            chain.push(u);
            u = prev[&u];
        }
        chain.reverse();
        let path: Vec<usize> = std::iter::once(start)
            .chain(chain)
            .chain(std::iter::once(start))
            .collect();
        errors.push(ValidationError::Cycle {
            path: path.into_iter().map(|i| g.tasks[i].name.clone()).collect(),
        });
    }
}

fn name_index(graph: &Graph) -> FxHashMap<String, usize> {
    let mut index = FxHashMap::with_capacity_and_hasher(graph.tasks.len(), Default::default());
    for (i, t) in graph.tasks.iter().enumerate() {
        index.insert(t.name.clone(), i);
    }
    index
}

/// Builds the lookups of a graph known to be valid (after matrix expansion).
fn index(graph: Graph, warnings: Vec<ValidationWarning>) -> ValidGraph {
    let n = graph.tasks.len();
    let index = name_index(&graph);
    let mut deps = Csr {
        offsets: Vec::with_capacity(n + 1),
        targets: Vec::new(),
    };
    deps.offsets.push(0);
    for t in &graph.tasks {
        // Every name resolves: validation rejected unknown names and expansion only
        // substitutes names it created.
        deps.targets.extend(
            t.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied()),
        );
        deps.offsets.push(deps.targets.len());
    }
    let dependents = deps.reversed(n);
    ValidGraph {
        graph,
        index,
        deps,
        dependents,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(json: &str) -> Graph {
        Graph::from_json(json).unwrap()
    }

    #[test]
    fn depends_on_lists_every_direct_dependency_once() {
        let g = graph(
            r#"{"version": "1", "tasks": [
            {"name": "db", "command": "x", "provides": ["db"]},
            {"name": "build", "command": "x", "outputs": {"bin": "b"}},
            {"name": "test", "command": "x", "depends_on": ["build", "build"], "needs": ["db"],
             "task_inputs": [{"from_task": "build", "output": "bin", "dest": "d"}]},
            {"name": "pack", "command": "x",
             "task_inputs": [{"from_task": "build", "output": "bin", "dest": "d"}]}]}"#,
        );
        let v = validate(&g).unwrap();
        assert_eq!(v.task(2).depends_on, ["build", "db"]);
        assert_eq!(v.deps(2), &[1, 0]);
        assert_eq!(v.task(3).depends_on, ["build"]);
        assert_eq!(v.dependents(1), &[2, 3]);
        assert_eq!(v.dependents(0), &[2]);
        assert_eq!(v.topological_order(), [0, 1, 2, 3]);
        // The input graph is untouched.
        assert_eq!(g.tasks[2].depends_on, ["build", "build"]);
    }

    #[test]
    fn topological_order_prefers_document_order() {
        let g = graph(
            r#"{"version": "1", "tasks": [
            {"name": "c", "command": "x", "depends_on": ["b"]},
            {"name": "a", "command": "x"},
            {"name": "b", "command": "x", "depends_on": ["a"]},
            {"name": "z", "command": "x"}]}"#,
        );
        let v = validate(&g).unwrap();
        let names: Vec<&str> = v
            .topological_order()
            .into_iter()
            .map(|i| v.task(i).name.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c", "z"]);
        assert_eq!(v.index_of("z"), Some(3));
        assert_eq!(v.index_of("nope"), None);
    }

    #[test]
    fn unknown_fields_are_warnings_naming_task_and_field() {
        let g = graph(
            r#"{"version": "2", "x-top": 1, "tasks": [
            {"name": "t", "command": "x", "oidc": {}, "when": "ci", "condition": "tag",
             "container": "alpine", "services": [{"image": "i", "name": "n", "health": "h"}]},
            {"name": "g", "gate": {"strategy": "webhook", "url": "u"}}]}"#,
        );
        let v = validate(&g).unwrap();
        let w: Vec<String> = v.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(
            w,
            [
                "the graph has unknown top-level field `x-top` (kept, ignored)",
                "task \"t\" sets both `when` and `condition`; `when` is used",
                "task \"t\" has unknown field `services.health` (kept, ignored)",
                "task \"t\" has unknown field `oidc` (kept, ignored)",
                "task \"g\" has unknown field `gate.url` (kept, ignored)",
            ]
        );
        // Unknown fields survive validation and re-emission.
        assert!(v.graph().to_json_pretty().contains("\"oidc\": {}"));
    }

    #[test]
    fn a_cycle_through_a_matrix_task_is_reported_with_original_names() {
        let g = graph(
            r#"{"version": "1", "tasks": [
            {"name": "a", "command": "x", "depends_on": ["b"], "matrix": {"os": ["l", "m"]}},
            {"name": "b", "command": "x", "depends_on": ["a"]}]}"#,
        );
        let e = validate(&g).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: dependency cycle detected: a -> b -> a"
        );
    }

    #[test]
    fn an_unknown_test_output_format_names_the_task_and_the_value() {
        let g = graph(
            r#"{"version": "1", "tasks": [
            {"name": "unit", "command": "cargo test", "tests": "cargo"},
            {"name": "it", "command": "x", "tests": "junit"}]}"#,
        );
        let e = validate(&g).unwrap_err();
        let errs = e.errors();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].code(), "unknown_test_format");
        assert_eq!(
            errs[0].to_string(),
            "task \"it\" has unknown test output format \"junit\" in `tests` (expected one of: cargo, go-json, tap)"
        );
    }

    #[test]
    fn path_escapes() {
        for (p, out) in [
            ("a/b", false),
            ("./a/../b", false),
            ("a/../..", true),
            ("../x", true),
            ("/abs", true),
            ("", false),
            (".", false),
        ] {
            assert_eq!(escapes(p), out, "{p}");
        }
    }
}
