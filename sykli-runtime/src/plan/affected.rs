//! Which tasks a set of changed files affects, and why: `sykli plan --from REF`,
//! `sykli run --affected` and `sykli watch` all ask this one question.
//!
//! A task is affected when a changed file matches one of its `inputs` (the same globs, with
//! the same semantics, as the cache's input selection: [`crate::cache::key`]), when it
//! declares no inputs (anything may change what it does), or when it depends, directly or
//! not, on an affected task. [`changed_since`] lists the files changed since a git ref.

use std::path::Path;
use std::process::Command;

use crate::cache::CacheError;
use crate::cache::workspace::is_root_special;
use crate::graph::ValidGraph;

/// Why a task is affected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AffectedBy {
    /// A changed file matches one of its inputs.
    Input {
        /// The changed file, relative to the project.
        file: String,
        /// The input glob it matches, as written.
        input: String,
    },
    /// It declares no inputs, so every change may affect it.
    NoInputs,
    /// It depends (directly) on this affected task.
    DependsOn {
        /// Index of that dependency.
        dependency: usize,
    },
}

impl AffectedBy {
    /// The reason in words, with task names from `graph`.
    pub fn describe(&self, graph: &ValidGraph) -> String {
        match self {
            AffectedBy::Input { file, input } => format!("{file} matches input `{input}`"),
            AffectedBy::NoInputs => "no inputs declared".to_owned(),
            AffectedBy::DependsOn { dependency } => {
                format!("depends on `{}`", graph.task(*dependency).name)
            }
        }
    }
}

/// The tasks a change affects: for each task (by index), why, or `None` when it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    reasons: Vec<Option<AffectedBy>>,
}

impl Affected {
    /// Why task `i` is affected (`None`: it is not).
    pub fn reason(&self, i: usize) -> Option<&AffectedBy> {
        self.reasons.get(i).and_then(Option::as_ref)
    }

    /// Whether task `i` is affected.
    pub fn is_affected(&self, i: usize) -> bool {
        self.reason(i).is_some()
    }

    /// Indices of the affected tasks, ascending.
    pub fn indices(&self) -> Vec<usize> {
        (0..self.reasons.len())
            .filter(|&i| self.is_affected(i))
            .collect()
    }

    /// Number of tasks it was computed for.
    pub fn len(&self) -> usize {
        self.reasons.len()
    }

    /// Whether it was computed for no task.
    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// Why the affected tasks could not be found.
#[derive(Debug, thiserror::Error)]
pub enum AffectedError {
    /// A task's `inputs` glob is invalid.
    #[error(transparent)]
    Inputs(#[from] CacheError),
    /// `git` could not be started.
    #[error("failed to run git in {dir}: {source}")]
    GitMissing {
        /// The directory git was run in.
        dir: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The project is not inside a git repository.
    #[error("{dir} is not inside a git repository (git says: {message})")]
    NotARepository {
        /// The project directory.
        dir: String,
        /// What git printed.
        message: String,
    },
    /// The ref names no commit.
    #[error("unknown git ref `{reference}`: it names no commit in this repository")]
    BadRef {
        /// The ref as given.
        reference: String,
    },
    /// A git command failed.
    #[error("`git {args}` failed: {message}")]
    Git {
        /// Its arguments.
        args: String,
        /// What git printed.
        message: String,
    },
}

/// The tasks of `graph` that changes to `changed` (paths relative to `root`, `/`-separated)
/// affect: matched through their inputs, tasks without inputs, then every dependent of
/// those. Each affected task gets the first reason found, in the order: input match (first
/// changed file in the given order, first glob in declaration order), no inputs, dependency
/// (the lowest-indexed affected dependency).
pub fn affected(
    graph: &ValidGraph,
    root: &Path,
    changed: &[String],
) -> Result<Affected, AffectedError> {
    let n = graph.len();
    let mut reasons: Vec<Option<AffectedBy>> = vec![None; n];
    for (i, reason) in reasons.iter_mut().enumerate() {
        let task = graph.task(i);
        if task.inputs.is_empty() {
            *reason = Some(AffectedBy::NoInputs);
            continue;
        }
        // One selection per glob, so the reason can name the glob that matched.
        let sels = task
            .inputs
            .iter()
            .map(|g| crate::cache::key::selection(&task.name, std::slice::from_ref(g), root))
            .collect::<Result<Vec<_>, _>>()?;
        'files: for file in changed {
            for (sel, glob) in sels.iter().zip(&task.inputs) {
                if sel.matches(file) {
                    *reason = Some(AffectedBy::Input {
                        file: file.clone(),
                        input: glob.clone(),
                    });
                    break 'files;
                }
            }
        }
    }
    // Dependents, in topological order: dependencies are settled first.
    for i in graph.topological_order() {
        if reasons[i].is_none()
            && let Some(&dependency) = graph.deps(i).iter().find(|&&d| reasons[d].is_some())
        {
            reasons[i] = Some(AffectedBy::DependsOn { dependency });
        }
    }
    Ok(Affected { reasons })
}

/// The files under `root` changed since git ref `reference`, relative to `root` and
/// `/`-separated, sorted: committed since, staged, unstaged (deleted ones included, renames
/// as their old and new path) and untracked files git does not ignore.
pub fn changed_since(root: &Path, reference: &str) -> Result<Vec<String>, AffectedError> {
    let git = |args: &[&str]| -> Result<std::process::Output, AffectedError> {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .map_err(|source| AffectedError::GitMissing {
                dir: root.display().to_string(),
                source,
            })
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).trim().to_owned();
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if !top.status.success() {
        return Err(AffectedError::NotARepository {
            dir: root.display().to_string(),
            message: stderr(&top),
        });
    }
    if reference.starts_with('-') {
        return Err(AffectedError::BadRef {
            reference: reference.to_owned(),
        });
    }
    let commit = format!("{reference}^{{commit}}");
    let verify = git(&["rev-parse", "--verify", "--quiet", &commit])?;
    if !verify.status.success() {
        return Err(AffectedError::BadRef {
            reference: reference.to_owned(),
        });
    }
    let mut files: Vec<String> = Vec::new();
    for args in [
        &[
            "diff",
            "--name-only",
            "--no-renames",
            "--relative",
            "-z",
            &commit,
            "--",
        ][..],
        &["ls-files", "--others", "--exclude-standard", "-z"][..],
    ] {
        let out = git(args)?;
        if !out.status.success() {
            return Err(AffectedError::Git {
                args: args.join(" "),
                message: stderr(&out),
            });
        }
        files.extend(
            out.stdout
                .split(|&b| b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                // `.git` and `.sykli` are sykli's and git's own state, never anyone's input.
                .filter(|p| !is_root_special(p.split('/').next().unwrap_or_default())),
        );
    }
    files.sort();
    files.dedup();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Graph, validate};

    #[test]
    fn inputs_no_inputs_and_dependents() {
        let g = Graph::from_json(
            r#"{"version": "1", "tasks": [
                {"name": "fmt", "command": "x"},
                {"name": "api", "command": "x", "inputs": ["api/**/*.rs", "Cargo.toml"]},
                {"name": "web", "command": "x", "inputs": ["web/**"]},
                {"name": "e2e", "command": "x", "inputs": ["e2e/*.ts"], "depends_on": ["api", "web"]},
                {"name": "deploy", "command": "x", "inputs": ["deploy.sh"], "depends_on": ["e2e"]}
            ]}"#,
        )
        .unwrap();
        let v = validate(&g).unwrap();
        let root = Path::new("/nonexistent-sykli-affected");
        let a = affected(&v, root, &["api/src/lib.rs".to_owned()]).unwrap();
        assert_eq!(a.indices(), vec![0, 1, 3, 4]);
        assert_eq!(a.reason(0), Some(&AffectedBy::NoInputs));
        assert_eq!(
            a.reason(1),
            Some(&AffectedBy::Input {
                file: "api/src/lib.rs".into(),
                input: "api/**/*.rs".into()
            })
        );
        assert_eq!(a.reason(3), Some(&AffectedBy::DependsOn { dependency: 1 }));
        assert_eq!(a.reason(4), Some(&AffectedBy::DependsOn { dependency: 3 }));
        assert_eq!(a.reason(4).unwrap().describe(&v), "depends on `e2e`");
        // `*` does not cross `/`, as in the cache.
        let a = affected(&v, root, &["e2e/deep/x.ts".to_owned()]).unwrap();
        assert_eq!(a.indices(), vec![0]);
        let a = affected(&v, root, &["web/index.html".to_owned()]).unwrap();
        assert_eq!(a.indices(), vec![0, 2, 3, 4]);
        assert_eq!(a.reason(3), Some(&AffectedBy::DependsOn { dependency: 2 }));
    }
}
