//! Collecting every `#[sykli::task]` of the program into wire tasks, with startup validation
//! of what the compiler cannot check across modules (duplicate task names).

use std::collections::BTreeMap;
use std::fmt;

use std::sync::Arc;

use sykli_runtime::exec::native::NativeRegistry;
use sykli_runtime::graph::Task;

use super::registration::{NativeTaskFn, TaskAction, TaskRegistration};

/// Where a task was declared: function path, file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// `module::path::fn_name`.
    pub function: String,
    /// Source file.
    pub file: String,
    /// Line in `file`.
    pub line: u32,
}

impl fmt::Display for Declaration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` at {}:{}", self.function, self.file, self.line)
    }
}

/// A problem with the declared tasks that only shows once they are all collected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    /// Two task functions declare the same task name.
    #[error("duplicate task name \"{name}\": declared by {first} and by {second}")]
    DuplicateTask {
        /// The task name.
        name: String,
        /// The declaration that comes first (by file, then line).
        first: Declaration,
        /// The other declaration.
        second: Declaration,
    },
}

/// Every task declared with `#[sykli::task]`, as wire tasks, plus the native functions by
/// task name.
pub struct DeclaredTasks {
    /// Wire tasks, ordered by source file, then line.
    pub tasks: Vec<Task>,
    /// Native task functions by task name.
    pub natives: BTreeMap<String, NativeTaskFn>,
}

impl DeclaredTasks {
    /// The native functions as a runtime registry, for in-process runs.
    pub fn registry(&self) -> NativeRegistry {
        let mut registry = NativeRegistry::new();
        for (name, f) in &self.natives {
            registry.insert(name.clone(), Arc::new(*f));
        }
        registry
    }
}

impl fmt::Debug for DeclaredTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeclaredTasks")
            .field("tasks", &self.tasks)
            .field("natives", &self.natives.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The registrations of the program, ordered by source file, then line, then name: a stable
/// order independent of link order.
fn registrations() -> Vec<&'static TaskRegistration> {
    let mut regs: Vec<&'static TaskRegistration> =
        inventory::iter::<TaskRegistration>.into_iter().collect();
    regs.sort_by(|a, b| (a.file, a.line, a.name).cmp(&(b.file, b.line, b.name)));
    regs
}

/// Collects every declared task. `native_command(name)` is the shell command other engines
/// run for the native task `name` (the pipeline binary with `--sykli-exec name`).
pub fn declared_tasks(
    native_command: impl Fn(&str) -> String,
) -> Result<DeclaredTasks, Vec<CollectError>> {
    from_registrations(&registrations(), native_command)
}

pub(crate) fn from_registrations(
    regs: &[&'static TaskRegistration],
    native_command: impl Fn(&str) -> String,
) -> Result<DeclaredTasks, Vec<CollectError>> {
    let mut errors = Vec::new();
    let mut first_by_name: BTreeMap<&str, &TaskRegistration> = BTreeMap::new();
    let mut tasks = Vec::with_capacity(regs.len());
    let mut natives = BTreeMap::new();
    for reg in regs {
        if let Some(first) = first_by_name.get(reg.name) {
            errors.push(CollectError::DuplicateTask {
                name: reg.name.to_string(),
                first: declaration(first),
                second: declaration(reg),
            });
            continue;
        }
        first_by_name.insert(reg.name, reg);
        if let TaskAction::Native(f) = reg.action {
            natives.insert(reg.name.to_string(), f);
        }
        tasks.push(wire_task(reg, &native_command));
    }
    if errors.is_empty() {
        Ok(DeclaredTasks { tasks, natives })
    } else {
        Err(errors)
    }
}

fn declaration(reg: &TaskRegistration) -> Declaration {
    Declaration {
        function: reg.function.to_string(),
        file: reg.file.to_string(),
        line: reg.line,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn wire_task(reg: &TaskRegistration, native_command: &impl Fn(&str) -> String) -> Task {
    let mut task = Task::named(reg.name);
    match reg.action {
        TaskAction::Native(_) => {
            task.command = Some(native_command(reg.name));
            task.native = Some(reg.name.to_string());
        }
        TaskAction::Shell(cmd) => task.command = Some(cmd.to_string()),
    }
    for dep in reg.after {
        if !task.depends_on.iter().any(|d| d == dep) {
            task.depends_on.push(dep.to_string());
        }
    }
    task.env = reg
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    task.workdir = reg.workdir.map(str::to_string);
    task.inputs = strings(reg.inputs);
    task.outputs = reg
        .outputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    task.container = reg.container.map(str::to_string);
    task.secrets = strings(reg.secrets);
    task.when = reg.when.map(str::to_string);
    task.retry = reg.retry;
    task.timeout = reg.timeout_secs;
    task.requires = strings(reg.requires);
    task.remote = reg.remote;
    task.prefer = reg.prefer;
    task.cache = reg.no_cache.then_some(false);
    task.target = reg.target.map(str::to_string);
    task.background =
        reg.background
            .map(|(ready, ready_timeout)| sykli_runtime::graph::Background {
                ready: ready.to_string(),
                ready_timeout,
            });
    task.sandbox = reg.sandbox.then(sykli_runtime::graph::Sandbox::default);
    task.tests = reg.tests.map(str::to_string);
    task
}
