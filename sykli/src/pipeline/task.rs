//! [`TaskBuilder`] and [`GateBuilder`], and the small value types they take.

use std::time::Duration;

use sykli_runtime::graph::{
    self as model, Background, GateStrategy, Mount, MountKind, Placement, Provide, Resource,
    Sandbox, SecretRef, Service, SuccessCriterion, Task, TaskInput,
};

use sykli_runtime::testreport::TestFormat;

use super::condition::Condition;
use super::pipeline::{CacheVolume, Directory, Group, Shared, lock};
use super::template::Template;

/// Whole seconds, rounded up, at least 1.
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// Builds one task of a [`Pipeline`](super::Pipeline). Every method writes into the pipeline
/// immediately and returns the builder for chaining.
#[derive(Debug, Clone)]
pub struct TaskBuilder {
    inner: Shared,
    index: usize,
}

impl TaskBuilder {
    pub(crate) fn new(inner: Shared, index: usize) -> Self {
        TaskBuilder { inner, index }
    }

    /// Applies `f` to the task under construction. The hook other builder extensions (native
    /// tasks) use.
    pub(crate) fn edit(self, f: impl FnOnce(&mut Task)) -> Self {
        f(&mut lock(&self.inner).tasks[self.index]);
        self
    }

    /// Makes this a native task: `f` is an async Rust function run in-process with the task's
    /// [`TaskCtx`](sykli_runtime::TaskCtx) (name, env, workdir, secrets, `ctx.sh(..)`,
    /// cancellation), with the same statuses, timeout, retries and logs as a shell task. The
    /// graph records it as `native: "<task name>"`.
    ///
    /// ```
    /// let p = sykli::Pipeline::new();
    /// p.task("generate").native(|ctx| async move {
    ///     ctx.sh("echo generating").await?;
    ///     Ok(())
    /// });
    /// ```
    pub fn native<F, Fut>(self, f: F) -> Self
    where
        F: Fn(sykli_runtime::TaskCtx) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), sykli_runtime::NativeError>> + Send + 'static,
    {
        {
            let mut inner = lock(&self.inner);
            let name = inner.tasks[self.index].name.clone();
            inner.natives.register(name.clone(), f);
            inner.tasks[self.index].native = Some(name);
        }
        self
    }

    /// The task's name.
    pub fn name(&self) -> String {
        lock(&self.inner).tasks[self.index].name.clone()
    }

    /// The shell command (`/bin/sh -c`).
    pub fn run(self, command: &str) -> Self {
        self.edit(|t| t.command = Some(command.to_string()))
    }

    /// Runs after these tasks (appended, duplicates dropped, first-seen order).
    pub fn after(self, names: &[&str]) -> Self {
        self.edit(|t| {
            for n in names {
                push_unique(&mut t.depends_on, n);
            }
        })
    }

    /// Runs after every task of the group.
    pub fn after_group(self, group: &Group) -> Self {
        self.edit(|t| {
            for n in group.tasks() {
                push_unique(&mut t.depends_on, n);
            }
        })
    }

    /// Runs in this container image.
    pub fn container(self, image: &str) -> Self {
        self.edit(|t| t.container = Some(image.to_string()))
    }

    /// Working directory.
    pub fn workdir(self, dir: &str) -> Self {
        self.edit(|t| t.workdir = Some(dir.to_string()))
    }

    /// Sets an environment variable.
    pub fn env(self, key: &str, value: &str) -> Self {
        self.edit(|t| {
            t.env.insert(key.to_string(), value.to_string());
        })
    }

    /// Input globs forming the cache key (appended).
    pub fn inputs(self, globs: &[&str]) -> Self {
        self.edit(|t| t.inputs.extend(globs.iter().map(|s| s.to_string())))
    }

    /// A named output path.
    pub fn output(self, name: &str, path: &str) -> Self {
        self.edit(|t| {
            t.outputs.insert(name.to_string(), path.to_string());
        })
    }

    /// Output paths named `output_<i>`, `i` counting from the number of outputs already set.
    pub fn outputs(self, paths: &[&str]) -> Self {
        self.edit(|t| {
            for p in paths {
                let name = format!("output_{}", t.outputs.len());
                t.outputs.insert(name, p.to_string());
            }
        })
    }

    /// Copies output `output` of task `task` to `dest` in this task's workdir, and runs after
    /// `task`.
    pub fn input_from(self, task: &str, output: &str, dest: &str) -> Self {
        self.edit(|t| {
            t.task_inputs.push(TaskInput {
                from_task: task.to_string(),
                output: output.to_string(),
                dest: dest.to_string(),
            });
            push_unique(&mut t.depends_on, task);
        })
    }

    /// Mounts a project directory at `path` (absolute).
    pub fn mount(self, dir: &Directory, path: &str) -> Self {
        self.edit(|t| {
            t.mounts.push(Mount {
                resource: dir.id().to_string(),
                path: path.to_string(),
                kind: MountKind::Directory,
            })
        })
    }

    /// Mounts a cache volume at `path` (absolute).
    pub fn mount_cache(self, cache: &CacheVolume, path: &str) -> Self {
        self.edit(|t| {
            t.mounts.push(Mount {
                resource: cache.name().to_string(),
                path: path.to_string(),
                kind: MountKind::Cache,
            })
        })
    }

    /// Mounts the project directory at `/work` and works there (registers resource `src:.`).
    pub fn mount_cwd(self) -> Self {
        register_cwd(&self.inner);
        self.edit(|t| {
            t.mounts.push(Mount {
                resource: "src:.".into(),
                path: "/work".into(),
                kind: MountKind::Directory,
            });
            t.workdir = Some("/work".into());
        })
    }

    /// The condition, verbatim (checked at validation).
    pub fn when(self, expr: &str) -> Self {
        self.edit(|t| t.when = Some(expr.to_string()))
    }

    /// The condition, from a typed [`Condition`].
    pub fn when_cond(self, cond: Condition) -> Self {
        self.edit(|t| t.when = Some(cond.into()))
    }

    /// A secret read from the environment variable of the same name.
    pub fn secret(self, name: &str) -> Self {
        self.edit(|t| t.secrets.push(name.to_string()))
    }

    /// Secrets read from the environment (appended).
    pub fn secrets(self, names: &[&str]) -> Self {
        self.edit(|t| t.secrets.extend(names.iter().map(|s| s.to_string())))
    }

    /// A secret exposed as `name`, read from `source`.
    pub fn secret_from(self, name: &str, source: SecretSource) -> Self {
        self.edit(|t| {
            t.secret_refs.push(SecretRef {
                name: name.to_string(),
                source: source.source,
                key: source.key,
            })
        })
    }

    /// A matrix dimension (replaces earlier values of `key`).
    pub fn matrix(self, key: &str, values: &[&str]) -> Self {
        self.edit(|t| {
            t.matrix.insert(
                key.to_string(),
                values.iter().map(|s| s.to_string()).collect(),
            );
        })
    }

    /// A sidecar container reachable by hostname `name`.
    pub fn service(self, image: &str, name: &str) -> Self {
        self.edit(|t| {
            t.services.push(Service {
                image: image.to_string(),
                name: name.to_string(),
                extra: Default::default(),
            })
        })
    }

    /// Extra attempts after a failure (emitted even when 0).
    pub fn retry(self, attempts: u32) -> Self {
        self.edit(|t| t.retry = Some(attempts))
    }

    /// Wall-clock limit: whole seconds, rounded up, at least 1.
    pub fn timeout(self, limit: Duration) -> Self {
        self.edit(|t| t.timeout = Some(whole_seconds(limit)))
    }

    /// Worker labels required to run the task (appended).
    pub fn requires(self, labels: &[&str]) -> Self {
        self.edit(|t| t.requires.extend(labels.iter().map(|s| s.to_string())))
    }

    /// Provides a capability.
    pub fn provides(self, name: &str) -> Self {
        self.edit(|t| {
            t.provides.push(Provide {
                name: name.to_string(),
                value: None,
            })
        })
    }

    /// Provides a capability with a value (exported to consumers as `SYKLI_CAP_<NAME>`).
    pub fn provides_value(self, name: &str, value: &str) -> Self {
        self.edit(|t| {
            t.provides.push(Provide {
                name: name.to_string(),
                value: Some(value.to_string()),
            })
        })
    }

    /// Needs a capability: runs after its provider.
    pub fn needs(self, name: &str) -> Self {
        self.edit(|t| t.needs.push(name.to_string()))
    }

    /// A success criterion checked after the command.
    pub fn success_criteria(self, criterion: Criterion) -> Self {
        self.edit(|t| t.success_criteria.push(criterion.0))
    }

    /// The task type label (`build`, `test`, `lint`, ...).
    pub fn task_type(self, kind: &str) -> Self {
        self.edit(|t| t.task_type = Some(kind.to_string()))
    }

    /// Makes the task a run-scoped host service: its command keeps running in the background
    /// once the `ready` shell check exits 0 (waiting at most `ready_timeout`), dependents start
    /// then, and the command is stopped when the run ends. If `ready` already passes, the
    /// running service is used and the command is not started.
    pub fn background(self, ready: &str, ready_timeout: Duration) -> Self {
        self.edit(|t| {
            t.background = Some(Background {
                ready: ready.to_string(),
                ready_timeout: whole_seconds(ready_timeout),
            })
        })
    }

    /// Runs the task hermetically in the sandbox (Linux namespaces and cgroups): it sees its
    /// declared inputs read-only, writes only its outputs and /tmp, has no network and no
    /// limits. See `docs/sandbox.md`.
    pub fn sandbox(self) -> Self {
        self.sandbox_with(Sandbox::default())
    }

    /// Runs the task in the sandbox with these settings (network, memory, CPUs, processes,
    /// extra read-only host paths).
    pub fn sandbox_with(self, sandbox: Sandbox) -> Self {
        self.edit(|t| t.sandbox = Some(sandbox))
    }

    /// Declares the test output format the command prints (`cargo test`'s, `go test -json`,
    /// TAP), so `sykli run --junit` and the GitHub Actions summary list each test. See
    /// `docs/reports.md`.
    pub fn tests(self, format: TestFormat) -> Self {
        self.edit(|t| t.tests = Some(format.as_str().to_string()))
    }

    /// The target (built-in or plugin) that runs the task.
    pub fn target(self, name: &str) -> Self {
        self.edit(|t| t.target = Some(name.to_string()))
    }

    /// Must run on a remote executor.
    pub fn remote(self) -> Self {
        self.edit(|t| t.remote = true)
    }

    /// Placement preference.
    pub fn prefer(self, placement: Placement) -> Self {
        self.edit(|t| t.prefer = Some(placement))
    }

    /// Never cache this task, even with inputs.
    pub fn no_cache(self) -> Self {
        self.edit(|t| t.cache = Some(false))
    }

    /// Copies the template's settings into the task now.
    pub fn from(self, template: &Template) -> Self {
        if template.mounts_cwd {
            register_cwd(&self.inner);
        }
        self.edit(|t| {
            if let Some(c) = &template.container {
                t.container = Some(c.clone());
            }
            if let Some(w) = &template.workdir {
                t.workdir = Some(w.clone());
            }
            t.env
                .extend(template.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            t.inputs.extend(template.inputs.iter().cloned());
            t.mounts.extend(template.mounts.iter().cloned());
            t.secrets.extend(template.secrets.iter().cloned());
            if template.retry.is_some() {
                t.retry = template.retry;
            }
            if template.timeout.is_some() {
                t.timeout = template.timeout;
            }
            t.requires.extend(template.requires.iter().cloned());
            if let Some(target) = &template.target {
                t.target = Some(target.clone());
            }
            if template.prefer.is_some() {
                t.prefer = template.prefer;
            }
        })
    }
}

fn register_cwd(inner: &Shared) {
    lock(inner)
        .resources
        .entry("src:.".into())
        .or_insert_with(|| Resource::Directory {
            path: ".".into(),
            globs: Vec::new(),
        });
}

/// Builds an approval gate (from [`Pipeline::gate`](super::Pipeline::gate)).
#[derive(Debug, Clone)]
pub struct GateBuilder {
    inner: Shared,
    index: usize,
}

impl GateBuilder {
    pub(crate) fn new(inner: Shared, index: usize) -> Self {
        GateBuilder { inner, index }
    }

    fn edit(self, f: impl FnOnce(&mut Task)) -> Self {
        f(&mut lock(&self.inner).tasks[self.index]);
        self
    }

    fn edit_gate(self, f: impl FnOnce(&mut model::Gate)) -> Self {
        self.edit(|t| {
            if let Some(g) = t.gate.as_mut() {
                f(g)
            }
        })
    }

    /// Waits for these tasks first (appended, deduplicated).
    pub fn after(self, names: &[&str]) -> Self {
        self.edit(|t| {
            for n in names {
                push_unique(&mut t.depends_on, n);
            }
        })
    }

    /// The message shown to the approver.
    pub fn message(self, message: &str) -> Self {
        self.edit_gate(|g| g.message = Some(message.to_string()))
    }

    /// Approved when environment variable `var` is set (strategy `env`).
    pub fn env_var(self, var: &str) -> Self {
        self.edit_gate(|g| {
            g.strategy = GateStrategy::Env;
            g.env_var = Some(var.to_string());
        })
    }

    /// Approved when `path` exists (strategy `file`).
    pub fn file(self, path: &str) -> Self {
        self.edit_gate(|g| {
            g.strategy = GateStrategy::File;
            g.file_path = Some(path.to_string());
        })
    }

    /// Approved by a person at the terminal (strategy `prompt`, the default).
    pub fn prompt(self) -> Self {
        self.edit_gate(|g| g.strategy = GateStrategy::Prompt)
    }

    /// How long to wait before the gate errors (whole seconds, rounded up, at least 1).
    pub fn timeout(self, limit: Duration) -> Self {
        self.edit_gate(|g| g.timeout = Some(whole_seconds(limit)))
    }
}

/// A success criterion for [`TaskBuilder::success_criteria`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criterion(SuccessCriterion);

impl Criterion {
    /// The exit code equals `code`.
    pub fn exit_code(code: i32) -> Criterion {
        Criterion(SuccessCriterion::ExitCode { equals: code })
    }

    /// The file at `path` (relative to the workdir) exists.
    pub fn file_exists(path: &str) -> Criterion {
        Criterion(SuccessCriterion::FileExists {
            path: path.to_string(),
        })
    }

    /// The file at `path` (relative to the workdir) exists and is not empty.
    pub fn file_non_empty(path: &str) -> Criterion {
        Criterion(SuccessCriterion::FileNonEmpty {
            path: path.to_string(),
        })
    }
}

/// Where a secret's value comes from, for [`TaskBuilder::secret_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSource {
    source: model::SecretSource,
    key: String,
}

impl SecretSource {
    /// The runtime's environment variable `key`.
    pub fn env(key: &str) -> SecretSource {
        SecretSource {
            source: model::SecretSource::Env,
            key: key.to_string(),
        }
    }

    /// The file at `path`, relative to the project: a regular file inside it (no absolute
    /// path, no `..`, no symlink out) of at most 64 KiB, read when the task starts.
    pub fn file(path: &str) -> SecretSource {
        SecretSource {
            source: model::SecretSource::File,
            key: path.to_string(),
        }
    }

    /// A Vault path (resolved only where a Vault client is configured).
    pub fn vault(path: &str) -> SecretSource {
        SecretSource {
            source: model::SecretSource::Vault,
            key: path.to_string(),
        }
    }
}
