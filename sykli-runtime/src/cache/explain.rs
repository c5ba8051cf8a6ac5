//! Why a task missed the cache: the difference between its previous manifest and this one.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::key::{KeyManifest, NotCacheable};

/// The cache verdict for one task, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Explanation {
    /// The task is never cached.
    NotCacheable {
        /// Why.
        reason: NotCacheable,
    },
    /// The key has a stored result.
    Hit,
    /// Nothing was recorded for this task before.
    NoPreviousEntry,
    /// The key is the same as last time, but no result is stored under it (the run failed,
    /// was never stored, or was evicted).
    NotStored,
    /// The key differs from last time because of these changes.
    Changed {
        /// Every component that changed.
        changes: Vec<Change>,
    },
}

/// One component of a key that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The key schema version changed (a sykli upgrade).
    Schema,
    /// The command or native function changed.
    Command,
    /// The container image changed.
    Image {
        /// Before.
        before: Option<String>,
        /// After.
        after: Option<String>,
    },
    /// The workdir changed.
    Workdir {
        /// Before.
        before: String,
        /// After.
        after: String,
    },
    /// The platform changed.
    Platform {
        /// Before.
        before: String,
        /// After.
        after: String,
    },
    /// The `inputs` globs changed.
    InputGlobs,
    /// An input file's content changed.
    InputModified {
        /// Path relative to the project.
        path: String,
    },
    /// An input file appeared.
    InputAdded {
        /// Path relative to the project.
        path: String,
    },
    /// An input file disappeared.
    InputRemoved {
        /// Path relative to the project.
        path: String,
    },
    /// An input file moved (same content, new path).
    InputRenamed {
        /// Old path.
        from: String,
        /// New path.
        to: String,
    },
    /// An environment variable was added, removed or changed value.
    Env {
        /// Variable name.
        name: String,
        /// What happened to it.
        how: Delta,
    },
    /// A secret was added or removed (values are never part of keys).
    Secret {
        /// Secret name.
        name: String,
        /// What happened to it.
        how: Delta,
    },
    /// A dependency output was added, removed or changed.
    Dependency {
        /// `task/output`.
        name: String,
        /// What happened to it.
        how: Delta,
    },
    /// The declared outputs changed.
    Outputs,
    /// Another setting changed (`mounts`, `services`, `success_criteria`, `task_inputs`).
    Setting {
        /// The setting's name.
        name: String,
    },
}

/// How a named component changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delta {
    /// It is new.
    Added,
    /// It is gone.
    Removed,
    /// Its value changed.
    Changed,
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delta::Added => "added",
            Delta::Removed => "removed",
            Delta::Changed => "changed",
        })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(none)".into());
        match self {
            Change::Schema => f.write_str("cache key schema changed"),
            Change::Command => f.write_str("command changed"),
            Change::Image { before, after } => {
                write!(f, "image changed: {} -> {}", opt(before), opt(after))
            }
            Change::Workdir { before, after } => {
                write!(f, "workdir changed: \"{before}\" -> \"{after}\"")
            }
            Change::Platform { before, after } => {
                write!(f, "platform changed: {before} -> {after}")
            }
            Change::InputGlobs => f.write_str("inputs globs changed"),
            Change::InputModified { path } => write!(f, "input modified: {path}"),
            Change::InputAdded { path } => write!(f, "input added: {path}"),
            Change::InputRemoved { path } => write!(f, "input removed: {path}"),
            Change::InputRenamed { from, to } => write!(f, "input renamed: {from} -> {to}"),
            Change::Env { name, how } => write!(f, "env {name} {how}"),
            Change::Secret { name, how } => write!(f, "secret {name} {how}"),
            Change::Dependency { name, how } => write!(f, "dependency output {name} {how}"),
            Change::Outputs => f.write_str("declared outputs changed"),
            Change::Setting { name } => write!(f, "{name} changed"),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Explanation::NotCacheable { reason } => write!(f, "not cached: {reason}"),
            Explanation::Hit => f.write_str("cache hit"),
            Explanation::NoPreviousEntry => f.write_str("cache miss: no previous entry"),
            Explanation::NotStored => {
                f.write_str("cache miss: nothing changed, but no result is stored (last run failed or was evicted)")
            }
            Explanation::Changed { changes } => {
                f.write_str("cache miss: ")?;
                for (i, c) in changes.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
        }
    }
}

fn delta_map<V: PartialEq>(
    before: &BTreeMap<String, V>,
    after: &BTreeMap<String, V>,
    mut emit: impl FnMut(String, Delta),
) {
    for (k, v) in after {
        match before.get(k) {
            None => emit(k.clone(), Delta::Added),
            Some(old) if old != v => emit(k.clone(), Delta::Changed),
            Some(_) => {}
        }
    }
    for k in before.keys() {
        if !after.contains_key(k) {
            emit(k.clone(), Delta::Removed);
        }
    }
}

/// Every component that differs between `before` and `after`, in a fixed order. Input files
/// removed and added with the same content are reported as renames.
pub fn diff(before: &KeyManifest, after: &KeyManifest) -> Vec<Change> {
    let mut out = Vec::new();
    if before.schema != after.schema {
        out.push(Change::Schema);
    }
    if before.action != after.action {
        out.push(Change::Command);
    }
    if before.image != after.image {
        out.push(Change::Image {
            before: before.image.clone(),
            after: after.image.clone(),
        });
    }
    if before.workdir != after.workdir {
        out.push(Change::Workdir {
            before: before.workdir.clone(),
            after: after.workdir.clone(),
        });
    }
    if before.platform != after.platform {
        out.push(Change::Platform {
            before: before.platform.clone(),
            after: after.platform.clone(),
        });
    }
    if before.input_globs != after.input_globs {
        out.push(Change::InputGlobs);
    }
    let mut added: Vec<(&String, &Digest)> = Vec::new();
    let mut removed: Vec<(&String, &Digest)> = Vec::new();
    for (p, d) in &after.inputs {
        match before.inputs.get(p) {
            None => added.push((p, d)),
            Some(old) if old != d => out.push(Change::InputModified { path: p.clone() }),
            Some(_) => {}
        }
    }
    for (p, d) in &before.inputs {
        if !after.inputs.contains_key(p) {
            removed.push((p, d));
        }
    }
    let mut renamed_to = Vec::new();
    removed.retain(|(from, d)| {
        match added
            .iter()
            .position(|(to, ad)| ad == d && !renamed_to.contains(to))
        {
            Some(i) => {
                let to = added[i].0;
                renamed_to.push(to);
                out.push(Change::InputRenamed {
                    from: (*from).clone(),
                    to: to.clone(),
                });
                false
            }
            None => true,
        }
    });
    for (p, _) in added {
        if !renamed_to.contains(&p) {
            out.push(Change::InputAdded { path: p.clone() });
        }
    }
    for (p, _) in removed {
        out.push(Change::InputRemoved { path: p.clone() });
    }
    delta_map(&before.env, &after.env, |name, how| {
        out.push(Change::Env { name, how })
    });
    let to_map = |s: &std::collections::BTreeSet<String>| -> BTreeMap<String, ()> {
        s.iter().map(|n| (n.clone(), ())).collect()
    };
    delta_map(
        &to_map(&before.secrets),
        &to_map(&after.secrets),
        |name, how| out.push(Change::Secret { name, how }),
    );
    delta_map(&before.dependencies, &after.dependencies, |name, how| {
        out.push(Change::Dependency { name, how })
    });
    if before.outputs != after.outputs {
        out.push(Change::Outputs);
    }
    delta_map(&before.settings, &after.settings, |name, _| {
        out.push(Change::Setting { name })
    });
    out
}
