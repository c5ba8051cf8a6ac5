//! What a sandboxed task asks for, as it crosses [`ExecRequest`](crate::exec::ExecRequest).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::graph::Sandbox;

/// The limits of one task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory in bytes (the task is OOM-killed above it).
    pub memory_bytes: Option<u64>,
    /// CPU time as a number of CPUs (1.5 = 150 ms per 100 ms).
    pub cpus: Option<f64>,
    /// Number of processes and threads.
    pub pids: Option<u64>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.memory_bytes.is_some() || self.cpus.is_some() || self.pids.is_some()
    }
}

/// The sandbox part of an [`ExecRequest`](crate::exec::ExecRequest): the task's settings and
/// what it declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxRequest {
    /// The task's `sandbox` settings.
    pub settings: Sandbox,
    /// The project directory `inputs` are relative to.
    pub project_root: PathBuf,
    /// Input globs, relative to the project.
    pub inputs: Vec<String>,
    /// Output paths, relative to the working directory.
    pub outputs: Vec<String>,
    /// Further paths relative to the working directory shown read-only (where other tasks'
    /// outputs were copied).
    pub visible: Vec<String>,
}

impl SandboxRequest {
    /// The request for `task`, whose project is `project_root`.
    pub fn for_task(
        task: &crate::graph::Task,
        settings: &Sandbox,
        project_root: &Path,
    ) -> SandboxRequest {
        SandboxRequest {
            settings: settings.clone(),
            project_root: project_root.to_path_buf(),
            inputs: task.inputs.clone(),
            outputs: task.outputs.values().cloned().collect(),
            visible: task.task_inputs.iter().map(|t| t.dest.clone()).collect(),
        }
    }

    /// The limits its settings ask for.
    pub fn limits(&self) -> Limits {
        limits_of(&self.settings)
    }
}

/// The cgroup limits of `settings`.
pub fn limits_of(settings: &Sandbox) -> Limits {
    Limits {
        memory_bytes: settings.memory_mb.map(|m| m.saturating_mul(1024 * 1024)),
        cpus: settings.cpus,
        pids: settings.pids,
    }
}
