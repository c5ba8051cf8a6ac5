//! [`Pipeline`]: the root builder, and the resources and groups it hands out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sykli_runtime::graph::{
    Gate, GateStrategy, Graph, Resource, Task, ValidGraph, ValidationError, ValidationErrors,
};

use super::task::{GateBuilder, TaskBuilder};
use super::template::Template;

/// What the builders of one pipeline share.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// Tasks in definition order.
    pub(crate) tasks: Vec<Task>,
    /// Registered resources by id.
    pub(crate) resources: BTreeMap<String, Resource>,
    /// Misuses of the builder (e.g. `chain` naming an unknown task), reported at validation.
    pub(crate) builder_errors: Vec<ValidationError>,
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pipeline: tasks, resources, and the JSON graph they make.
///
/// Builders returned by [`Pipeline::task`] and friends write into the pipeline as you call
/// them, so they can be kept in variables or dropped after one chained statement.
#[derive(Debug, Default)]
pub struct Pipeline {
    pub(crate) inner: Shared,
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Pipeline::default()
    }

    /// Adds a task named `name` (an empty or duplicate name is reported at validation).
    pub fn task(&self, name: &str) -> TaskBuilder {
        let index = self.push(Task::named(name));
        TaskBuilder::new(self.inner.clone(), index)
    }

    /// Adds an approval gate: `gate: {strategy: "prompt", timeout: 3600}`, no command.
    pub fn gate(&self, name: &str) -> GateBuilder {
        let index = self.push(Task {
            gate: Some(Gate {
                strategy: GateStrategy::Prompt,
                timeout: Some(3600),
                message: None,
                env_var: None,
                file_path: None,
                extra: BTreeMap::new(),
            }),
            ..Task::named(name)
        });
        GateBuilder::new(self.inner.clone(), index)
    }

    /// Registers the project directory `path` as resource `src:<path>`.
    pub fn dir(&self, path: &str) -> Directory {
        let id = format!("src:{path}");
        lock(&self.inner).resources.insert(
            id.clone(),
            Resource::Directory {
                path: path.to_string(),
                globs: Vec::new(),
            },
        );
        Directory {
            inner: self.inner.clone(),
            id,
        }
    }

    /// Registers a persistent cache volume; its resource id is `name`.
    pub fn cache(&self, name: &str) -> CacheVolume {
        lock(&self.inner).resources.insert(
            name.to_string(),
            Resource::Cache {
                name: name.to_string(),
            },
        );
        CacheVolume {
            name: name.to_string(),
        }
    }

    /// A reusable set of task settings, applied with [`TaskBuilder::from`].
    pub fn template(&self) -> Template {
        Template::default()
    }

    /// Makes each task depend on the one before it: `b` after `a`, `c` after `b`. The tasks
    /// must already exist.
    pub fn chain(&self, names: &[&str]) -> &Self {
        let mut inner = lock(&self.inner);
        let mut known = Vec::with_capacity(names.len());
        for name in names {
            match inner.tasks.iter().position(|t| t.name == *name) {
                Some(i) => known.push(Some(i)),
                None => {
                    inner
                        .builder_errors
                        .push(ValidationError::UnknownChainTask {
                            task: name.to_string(),
                        });
                    known.push(None);
                }
            }
        }
        for w in known.windows(2) {
            if let [Some(prev), Some(next)] = *w {
                let dep = inner.tasks[prev].name.clone();
                let t = &mut inner.tasks[next];
                if !t.depends_on.contains(&dep) {
                    t.depends_on.push(dep);
                }
            }
        }
        self
    }

    /// A set of tasks that may run side by side; adds no edges. See
    /// [`TaskBuilder::after_group`].
    pub fn parallel(&self, names: &[&str]) -> Group {
        Group {
            tasks: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The graph as emitted: tasks in definition order, version the lowest that covers them.
    pub fn to_graph(&self) -> Graph {
        let inner = lock(&self.inner);
        let mut g = Graph {
            tasks: inner.tasks.clone(),
            resources: inner.resources.clone(),
            ..Graph::new()
        };
        g.normalize_version();
        g
    }

    /// The canonical JSON: two-space indent, fields in model order, maps sorted, trailing
    /// newline. Byte-identical to the Go and TypeScript SDKs for the same pipeline.
    pub fn to_json(&self) -> String {
        self.to_graph().to_json_pretty()
    }

    /// Validates the pipeline, returning every error.
    pub fn validate(&self) -> Result<ValidGraph, ValidationErrors> {
        let builder_errors = lock(&self.inner).builder_errors.clone();
        let result = sykli_runtime::graph::validate_owned(self.to_graph());
        if builder_errors.is_empty() {
            return result;
        }
        let mut all = builder_errors;
        if let Err(e) = result {
            all.extend(e);
        }
        Err(ValidationErrors::new(all))
    }

    fn push(&self, task: Task) -> usize {
        let mut inner = lock(&self.inner);
        inner.tasks.push(task);
        inner.tasks.len() - 1
    }
}

/// A registered project directory (resource `src:<path>`), for [`TaskBuilder::mount`].
#[derive(Debug, Clone)]
pub struct Directory {
    inner: Shared,
    id: String,
}

impl Directory {
    /// The resource id, `src:<path>`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Restricts the directory to files matching `globs` (replaces earlier globs).
    pub fn globs(self, globs: &[&str]) -> Self {
        if let Some(Resource::Directory { globs: g, .. }) =
            lock(&self.inner).resources.get_mut(&self.id)
        {
            *g = globs.iter().map(|s| s.to_string()).collect();
        }
        self
    }
}

/// A registered cache volume, for [`TaskBuilder::mount_cache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheVolume {
    name: String,
}

impl CacheVolume {
    /// The volume name, which is also its resource id.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A set of task names, for [`TaskBuilder::after_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    tasks: Vec<String>,
}

impl Group {
    /// The member tasks, in the order given.
    pub fn tasks(&self) -> &[String] {
        &self.tasks
    }
}
