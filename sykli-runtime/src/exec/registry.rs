//! The executor registry: every executor a run may place tasks on, by name, with the labels
//! it carries and the kinds of work it runs.
//!
//! Placement (see [`crate::plan`]) only reads this table; the scheduler only calls the
//! executor the plan chose. A remote or plugin executor is one more [`ExecutorEntry`]: no
//! scheduler change.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use super::Executor;

/// A kind of work a task needs done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkKind {
    /// A shell command on the executor's host.
    Command,
    /// A shell command inside a container image.
    Container,
    /// A native function of the pipeline binary, called in-process.
    Native,
}

impl WorkKind {
    /// A short name: `command`, `container`, `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::Command => "command",
            WorkKind::Container => "container",
            WorkKind::Native => "native",
        }
    }
}

impl fmt::Display for WorkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The label every remote executor carries (and no local one does).
pub const REMOTE_LABEL: &str = "remote";
/// The label every executor on this machine carries.
pub const LOCAL_LABEL: &str = "local";

/// One registered executor.
#[derive(Clone)]
pub struct ExecutorEntry {
    name: String,
    labels: BTreeSet<String>,
    runs: Vec<WorkKind>,
    executor: Arc<dyn Executor>,
    layer: Option<Arc<dyn crate::scheduler::TaskCache>>,
    unreachable: Option<String>,
}

impl fmt::Debug for ExecutorEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorEntry")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("runs", &self.runs)
            .finish_non_exhaustive()
    }
}

impl ExecutorEntry {
    /// An executor on this machine, registered under its own [`Executor::name`], running
    /// `runs`, carrying `local`, its name, this machine's OS and architecture
    /// (`linux`, `x86_64`, ...) and `labels`.
    pub fn local(
        executor: Arc<dyn Executor>,
        runs: &[WorkKind],
        labels: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let name = executor.name().to_owned();
        let mut set: BTreeSet<String> = labels.into_iter().map(Into::into).collect();
        set.extend(
            [
                LOCAL_LABEL,
                &name,
                std::env::consts::OS,
                std::env::consts::ARCH,
            ]
            .map(str::to_owned),
        );
        ExecutorEntry {
            name,
            labels: set,
            runs: runs.to_vec(),
            executor,
            layer: None,
            unreachable: None,
        }
    }

    /// A remote executor: carries `remote`, its name and `labels` (the worker's platform
    /// properties), never `local`.
    pub fn remote(
        executor: Arc<dyn Executor>,
        runs: &[WorkKind],
        labels: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let name = executor.name().to_owned();
        let mut set: BTreeSet<String> = labels.into_iter().map(Into::into).collect();
        set.remove(LOCAL_LABEL);
        set.extend([REMOTE_LABEL.to_owned(), name.clone()]);
        ExecutorEntry {
            name,
            labels: set,
            runs: runs.to_vec(),
            executor,
            layer: None,
            unreachable: None,
        }
    }

    /// Stacks `layer` right around this executor, beneath the run's cache: a remote
    /// executor that brings its own action cache (or must prepare each task before it
    /// runs) is registered with it. The run's cache is asked first; on its miss, the layer.
    pub fn with_layer(mut self, layer: Arc<dyn crate::scheduler::TaskCache>) -> Self {
        self.layer = Some(layer);
        self
    }

    /// Marks it unreachable (a remote endpoint that did not answer): placement never
    /// prefers it, and tasks that must run on it are errored with `reason`.
    pub fn unreachable(mut self, reason: impl Into<String>) -> Self {
        self.unreachable = Some(reason.into());
        self
    }

    /// Why it is unreachable, if it is.
    pub fn unreachable_reason(&self) -> Option<&str> {
        self.unreachable.as_deref()
    }

    /// The executor's own layer, if any (see [`ExecutorEntry::with_layer`]).
    pub fn layer(&self) -> Option<&Arc<dyn crate::scheduler::TaskCache>> {
        self.layer.as_ref()
    }

    /// The name tasks select it by (`target`), and that events report.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The labels it carries (matched against a task's `requires`).
    pub fn labels(&self) -> &BTreeSet<String> {
        &self.labels
    }

    /// Whether it runs `kind` of work.
    pub fn runs(&self, kind: WorkKind) -> bool {
        self.runs.contains(&kind)
    }

    /// The kinds of work it runs.
    pub fn kinds(&self) -> &[WorkKind] {
        &self.runs
    }

    /// Whether it is remote (carries [`REMOTE_LABEL`]).
    pub fn is_remote(&self) -> bool {
        self.labels.contains(REMOTE_LABEL)
    }

    /// The executor itself.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }
}

/// Why an executor could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Another executor already has this name.
    #[error("failed to register executor `{0}`: an executor with that name is registered")]
    Duplicate(String),
}

/// The executors of a run, in registration order (earlier wins among equals).
#[derive(Debug, Clone, Default)]
pub struct ExecutorRegistry {
    entries: Vec<ExecutorEntry>,
}

impl ExecutorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ExecutorRegistry::default()
    }

    /// Adds an executor; its name must be new.
    pub fn register(&mut self, entry: ExecutorEntry) -> Result<(), RegistryError> {
        if self.get(&entry.name).is_some() {
            return Err(RegistryError::Duplicate(entry.name));
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Adds an executor, replacing one of the same name (kept at its position).
    pub fn replace(&mut self, entry: ExecutorEntry) {
        match self.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(slot) => *slot = entry,
            None => self.entries.push(entry),
        }
    }

    /// The executor registered as `name`.
    pub fn get(&self, name: &str) -> Option<&ExecutorEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The executor at `index` (indices are stable for the registry's life).
    pub fn entry(&self, index: usize) -> &ExecutorEntry {
        &self.entries[index]
    }

    /// Position of the executor named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// Every executor, in registration order.
    pub fn entries(&self) -> &[ExecutorEntry] {
        &self.entries
    }

    /// The registered names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// Whether any remote executor is registered.
    pub fn has_remote(&self) -> bool {
        self.entries.iter().any(ExecutorEntry::is_remote)
    }

    /// Number of executors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::process::ProcessExecutor;

    #[test]
    fn local_entries_carry_local_name_os_and_arch() {
        let e = ExecutorEntry::local(
            Arc::new(ProcessExecutor::new()),
            &[WorkKind::Command],
            ["ssd"],
        );
        for l in ["local", "process", "ssd", std::env::consts::OS] {
            assert!(e.labels().contains(l), "{l} in {:?}", e.labels());
        }
        assert!(!e.is_remote() && e.runs(WorkKind::Command) && !e.runs(WorkKind::Native));
    }

    #[test]
    fn names_are_unique() {
        let mut r = ExecutorRegistry::new();
        let p =
            || ExecutorEntry::local(Arc::new(ProcessExecutor::new()), &[], Vec::<String>::new());
        r.register(p()).unwrap();
        let e = r.register(p()).unwrap_err();
        assert!(e.to_string().contains("`process`"), "{e}");
        r.replace(p());
        assert_eq!(r.names(), ["process"]);
    }
}
