//! Matrix expansion: one task per combination of a task's `matrix` values.
//!
//! - An expansion is named `<name>-<values in key order joined by "-">`: `test` with
//!   `{"os": ["linux", "mac"], "rust": ["1.95"]}` gives `test-linux-1.95` and `test-mac-1.95`
//!   (keys sorted, values in the order written, the first key varying slowest).
//! - The combination is merged into the expansion's `env` (matrix values win over `env`).
//! - Every task that depended on the matrix task (by `depends_on`, `task_inputs` or as the
//!   provider of a need resolved into `depends_on`) depends on EVERY expansion, matched by
//!   exact name, never by prefix. A `task_inputs` entry taking an output of a matrix task is
//!   repeated for each expansion, with `dest` suffixed by `/<expanded name>` so the copies do
//!   not overwrite each other.
//! - Errors: a dimension with no values, an empty dimension name, a value repeated within a
//!   dimension, or an expanded name equal to another task's name.
//! - Size: [`super::Limits::check_graph`] bounds the combinations and what expansion produces
//!   before anything is expanded; [`expand`] relies on it.

use std::collections::{HashMap, HashSet};

use super::error::ValidationError;
use super::model::{Graph, Task, TaskInput};

/// The name of one expansion: `name` and the values, in key order, joined by `-`.
pub fn expansion_name<'a>(name: &str, values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = name.to_string();
    for v in values {
        out.push('-');
        out.push_str(v);
    }
    out
}

/// Every combination of a matrix, in expansion order: `[(key, value), ...]` per combination.
pub fn combinations(
    matrix: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<Vec<(&str, &str)>> {
    let mut combos: Vec<Vec<(&str, &str)>> = vec![Vec::new()];
    for (key, values) in matrix {
        let mut next = Vec::with_capacity(combos.len() * values.len());
        for combo in &combos {
            for v in values {
                let mut c = combo.clone();
                c.push((key.as_str(), v.as_str()));
                next.push(c);
            }
        }
        combos = next;
    }
    combos
}

/// Checks one task's matrix; an empty matrix is not a matrix (nothing to check).
pub(crate) fn check_matrix(task: &Task, errors: &mut Vec<ValidationError>) {
    for (key, values) in &task.matrix {
        let bad = |problem: String| ValidationError::BadMatrix {
            task: task.name.clone(),
            dimension: key.clone(),
            problem,
        };
        if key.is_empty() {
            errors.push(bad("with an empty name".into()));
        }
        if values.is_empty() {
            errors.push(bad("with no values".into()));
        }
        let (mut seen, mut reported) = (HashSet::new(), HashSet::new());
        for v in values {
            if !seen.insert(v.as_str()) && reported.insert(v.as_str()) {
                errors.push(bad(format!("with duplicate value \"{v}\"")));
            }
        }
    }
}

/// Expands every matrix task of `graph`. Task order is kept, each matrix task replaced in place
/// by its expansions. Returns every error found. A graph without matrix tasks is returned as is.
pub fn expand(graph: Graph) -> Result<Graph, Vec<ValidationError>> {
    if graph.tasks.iter().all(|t| t.matrix.is_empty()) {
        return Ok(graph);
    }
    let mut errors = Vec::new();
    for t in graph.tasks.iter().filter(|t| !t.matrix.is_empty()) {
        check_matrix(t, &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // Expanded names may not reuse any name of the document, matrix tasks' names included
    // (a dependency on such a name would be ambiguous).
    let plain: HashSet<&str> = graph.tasks.iter().map(|t| t.name.as_str()).collect();
    // original name -> expanded names
    let mut expanded: HashMap<String, Vec<String>> = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    for t in graph.tasks.iter().filter(|t| !t.matrix.is_empty()) {
        let mut names = Vec::new();
        for combo in combinations(&t.matrix) {
            let name = expansion_name(&t.name, combo.iter().map(|(_, v)| *v));
            if plain.contains(name.as_str()) || !taken.insert(name.clone()) {
                errors.push(ValidationError::MatrixNameCollision {
                    task: t.name.clone(),
                    expanded: name.clone(),
                });
            }
            names.push(name);
        }
        expanded.insert(t.name.clone(), names);
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let rewrite = |t: &mut Task| {
        if !t.depends_on.iter().any(|d| expanded.contains_key(d))
            && !t
                .task_inputs
                .iter()
                .any(|i| expanded.contains_key(&i.from_task))
        {
            return;
        }
        let mut deps = Vec::with_capacity(t.depends_on.len());
        let mut seen = HashSet::new();
        for d in std::mem::take(&mut t.depends_on) {
            match expanded.get(&d) {
                Some(names) => {
                    for n in names {
                        if seen.insert(n.clone()) {
                            deps.push(n.clone());
                        }
                    }
                }
                None => {
                    if seen.insert(d.clone()) {
                        deps.push(d);
                    }
                }
            }
        }
        t.depends_on = deps;
        let mut inputs = Vec::with_capacity(t.task_inputs.len());
        for i in std::mem::take(&mut t.task_inputs) {
            match expanded.get(&i.from_task) {
                Some(names) => {
                    for n in names {
                        inputs.push(TaskInput {
                            from_task: n.clone(),
                            output: i.output.clone(),
                            dest: format!("{}/{n}", i.dest.trim_end_matches('/')),
                        });
                    }
                }
                None => inputs.push(i),
            }
        }
        t.task_inputs = inputs;
    };

    let mut tasks = Vec::with_capacity(graph.tasks.len());
    for mut t in graph.tasks {
        rewrite(&mut t);
        if t.matrix.is_empty() {
            tasks.push(t);
            continue;
        }
        let matrix = std::mem::take(&mut t.matrix);
        for combo in combinations(&matrix) {
            let mut e = t.clone();
            e.name = expansion_name(&t.name, combo.iter().map(|(_, v)| *v));
            for (k, v) in combo {
                e.env.insert(k.to_string(), v.to_string());
            }
            tasks.push(e);
        }
    }
    Ok(Graph { tasks, ..graph })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, deps: &[&str]) -> Task {
        Task {
            command: Some("true".into()),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            ..Task::named(name)
        }
    }

    fn names(g: &Graph) -> Vec<&str> {
        g.tasks.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn expands_in_key_order_and_rewrites_dependents_exactly() {
        let mut test = task("test", &["lint"]);
        test.matrix
            .insert("rust".into(), vec!["1.95".into(), "nightly".into()]);
        test.matrix
            .insert("os".into(), vec!["linux".into(), "mac".into()]);
        test.env.insert("os".into(), "overridden".into());
        let g = Graph {
            tasks: vec![
                task("lint", &[]),
                test,
                // a plain task whose name starts like an expansion: must not be swept in
                task("test-linux", &[]),
                task("deploy", &["test", "test-linux"]),
            ],
            ..Graph::new()
        };
        let g = expand(g).unwrap();
        assert_eq!(
            names(&g),
            [
                "lint",
                "test-linux-1.95",
                "test-linux-nightly",
                "test-mac-1.95",
                "test-mac-nightly",
                "test-linux",
                "deploy"
            ]
        );
        let t = g.task("test-mac-nightly").unwrap();
        assert_eq!(t.env["os"], "mac");
        assert_eq!(t.env["rust"], "nightly");
        assert!(t.matrix.is_empty());
        assert_eq!(t.depends_on, ["lint"]);
        assert_eq!(
            g.task("deploy").unwrap().depends_on,
            [
                "test-linux-1.95",
                "test-linux-nightly",
                "test-mac-1.95",
                "test-mac-nightly",
                "test-linux"
            ]
        );
    }

    #[test]
    fn task_inputs_from_a_matrix_task_are_repeated_per_expansion() {
        let mut build = task("build", &[]);
        build
            .matrix
            .insert("os".into(), vec!["a".into(), "b".into()]);
        build.outputs.insert("bin".into(), "out/bin".into());
        let mut pack = task("pack", &[]);
        pack.task_inputs.push(TaskInput {
            from_task: "build".into(),
            output: "bin".into(),
            dest: "bins/".into(),
        });
        let g = expand(Graph {
            tasks: vec![build, pack],
            ..Graph::new()
        })
        .unwrap();
        let dests: Vec<_> = g.tasks[2]
            .task_inputs
            .iter()
            .map(|i| (i.from_task.as_str(), i.dest.as_str()))
            .collect();
        assert_eq!(
            dests,
            [("build-a", "bins/build-a"), ("build-b", "bins/build-b")]
        );
    }

    #[test]
    fn errors() {
        let mut a = task("a", &[]);
        a.matrix.insert("os".into(), vec![]);
        a.matrix.insert("".into(), vec!["x".into(), "x".into()]);
        let msgs: Vec<String> = expand(Graph {
            tasks: vec![a],
            ..Graph::new()
        })
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
        assert_eq!(
            msgs,
            [
                "task \"a\" has matrix dimension \"\" with an empty name",
                "task \"a\" has matrix dimension \"\" with duplicate value \"x\"",
                "task \"a\" has matrix dimension \"os\" with no values",
            ]
        );

        let mut b = task("b", &[]);
        b.matrix.insert("v".into(), vec!["1".into()]);
        let mut c = task("b-1", &[]);
        c.matrix.insert("v".into(), vec!["x".into()]);
        let plain = task("b-1-x", &[]);
        let msgs: Vec<String> = expand(Graph {
            tasks: vec![b, c, plain],
            ..Graph::new()
        })
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
        assert_eq!(
            msgs,
            [
                "task \"b\" expands to \"b-1\", which is already the name of another task",
                "task \"b-1\" expands to \"b-1-x\", which is already the name of another task"
            ]
        );
    }
}
