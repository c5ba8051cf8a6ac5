//! The one executor trait, and the owned request/outcome types that cross it.
//!
//! Every backend (process, container, native function, remote, plugin) implements
//! [`Executor`]. The scheduler knows executors only through this trait; executors know nothing
//! of reporters. Requests and outcomes are owned and serde-able so they can cross gRPC, WASM
//! and the journal unchanged.
//!
//! An executor reports *how the attempt ended* ([`ExecOutcome`]); mapping that to a
//! [`TaskStatus`](crate::TaskStatus) (retries, success criteria) is the scheduler's job.
//!
//! Executors are registered by name with labels in an [`ExecutorRegistry`]; the plan
//! ([`crate::plan`]) places each task on one of them (`target`, `remote`, `prefer`,
//! `requires`), and the run stacks its result cache around the chosen one. To add an
//! executor: implement [`Executor`], wrap it in an [`ExecutorEntry`] (`local` or `remote`,
//! with the [`WorkKind`]s it runs and its labels) and register it; nothing else changes.

mod background;
pub mod native;
pub mod process;
mod reaper;
mod registry;
pub mod sandbox;
mod simple_command;

pub use registry::{
    ExecutorEntry, ExecutorRegistry, LOCAL_LABEL, REMOTE_LABEL, RegistryError, WorkKind,
};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[cfg(feature = "docker")]
pub mod container;

/// Everything an executor needs to run one attempt of one task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Task name (after matrix expansion).
    pub task: String,
    /// What to run.
    pub action: Action,
    /// Environment for the task: task env, capabilities, matrix values and resolved secrets.
    /// Secret values are in here; never log a request.
    pub env: BTreeMap<String, String>,
    /// Whether the runtime's own environment is passed through beneath `env`.
    pub inherit_env: bool,
    /// Absolute working directory on the host (for a container: the project directory that
    /// relative mounts resolve against).
    pub workdir: PathBuf,
    /// Run inside this container instead of on the host.
    pub container: Option<ContainerSpec>,
    /// Wall-clock limit for this attempt; the executor enforces it and returns
    /// [`ExecOutcome::TimedOut`].
    pub timeout: Option<Duration>,
    /// Grace period between SIGTERM and SIGKILL when stopping the task.
    pub kill_grace: Duration,
    /// Run id, for labelling external resources (containers, networks).
    pub run_id: String,
    /// Keep the command running as a run-scoped host service once its readiness check
    /// passes (only the process executor accepts this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundSpec>,
    /// Run it in a sandbox (only the sandbox executor accepts this): the task's settings and
    /// what it declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<sandbox::SandboxRequest>,
}

/// How a background task's command becomes ready; see [`crate::graph::Background`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundSpec {
    /// A shell command that exits 0 once the service is ready.
    pub ready: String,
    /// How long to wait for `ready` to pass.
    pub ready_timeout: Duration,
}

/// The thing an attempt executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// A shell command, run with `/bin/sh -c`.
    Shell(String),
    /// A native Rust function registered in the pipeline binary, by name.
    Native(String),
}

/// Container settings of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Image reference.
    pub image: String,
    /// Working directory inside the container.
    pub workdir: Option<String>,
    /// Bind mounts and volumes.
    pub mounts: Vec<ContainerMount>,
    /// Sidecar services, reachable by name.
    pub services: Vec<ServiceSpec>,
}

/// One mount into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMount {
    /// What is mounted.
    pub source: MountSource,
    /// Absolute path inside the container.
    pub target: String,
}

/// The source side of a container mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSource {
    /// A host directory (absolute).
    HostDir(PathBuf),
    /// A named volume that persists between runs.
    Volume(String),
}

/// A sidecar container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Image reference.
    pub image: String,
    /// Hostname the task reaches it by.
    pub name: String,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Where an executor writes a task's output as it is produced.
///
/// Implementations mask secrets, write the full log and forward lines to reporters; they must
/// keep memory bounded however much a task prints.
pub trait OutputSink: Send + Sync {
    /// Accepts the next raw chunk of one stream (not necessarily whole lines).
    fn write(&self, stream: OutputStream, bytes: &[u8]);

    /// The attempt's processes started as process group `pgid` (the task log samples their
    /// resource use: [`crate::observe::resources`]). Default: nothing.
    fn processes_started(&self, pgid: u32) {
        let _ = pgid;
    }

    /// A sample of the attempt's resource use from its executor (a container engine's
    /// stats): CPU since the previous sample in percent of one core, resident bytes.
    /// Default: nothing.
    fn resource_sample(&self, cpu_percent: f64, rss_bytes: u64) {
        let _ = (cpu_percent, rss_bytes);
    }
}

/// The I/O handles of one attempt.
#[derive(Clone)]
pub struct ExecIo {
    /// Which attempt of the task this is, from 1 (retries count up).
    pub attempt: u32,
    /// Destination of stdout and stderr.
    pub output: Arc<dyn OutputSink>,
    /// Cancelled on Ctrl-C, SIGTERM or fail-fast: stop the task and return
    /// [`ExecOutcome::Cancelled`].
    pub cancel: CancellationToken,
    /// Where a remote executor journals the operation running the attempt, and finds the
    /// one to re-attach to when the run resumes; `None` outside a scheduled run.
    pub operations: Option<Arc<dyn OperationJournal>>,
}

/// The journal's side of a remote attempt's operation (docs/durable.md): a resumed run
/// re-attaches to the operation a killed process was waiting on instead of executing the
/// action again.
pub trait OperationJournal: Send + Sync {
    /// The operation an earlier process of the run journalled for this task, to re-attach
    /// to; given out once (later attempts start afresh).
    fn reattach(&self) -> Option<String>;
    /// The attempt runs as `operation`; `reattached` when it is the journalled one.
    fn attached(&self, operation: &str, reattached: bool);
    /// The journalled `operation` cannot be re-attached to (`reason`: the server's
    /// answer); the action is executed again.
    fn reattach_failed(&self, operation: &str, reason: &str);
}

/// How one attempt ended. A task that ran and failed is never confused with the runtime
/// failing to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecOutcome {
    /// The task ran to completion with this exit code (0 is success; a process killed by a
    /// signal reports 128 + the signal number).
    Exited {
        /// The exit code.
        code: i32,
    },
    /// The wall-clock timeout elapsed; the task was stopped.
    TimedOut,
    /// The run was cancelled while the task ran; the task was stopped.
    Cancelled,
    /// The task could not be run at all.
    Errored {
        /// What was being done, e.g. "spawning /bin/sh" or "pulling image busybox".
        stage: String,
        /// A human-readable reason.
        message: String,
    },
}

/// The stage of an [`ExecOutcome::Errored`] whose task was cancelled on request on the
/// remote server that ran it ([`ExecOutcome::cancelled_remotely`]).
const CANCELLED_REMOTELY: &str = "running on the remote server, which cancelled it";

impl ExecOutcome {
    /// An [`ExecOutcome::Errored`] from a stage and a message.
    pub fn errored(stage: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ExecOutcome::Errored {
            stage: stage.into(),
            message: message.to_string(),
        }
    }

    /// The task was cancelled on request on the remote server that ran it (`sykli cancel`
    /// there, REAPI `CancelOperation`): it is errored with `message`, and not tried again.
    pub fn cancelled_remotely(message: impl std::fmt::Display) -> Self {
        ExecOutcome::errored(CANCELLED_REMOTELY, message)
    }

    /// Whether the task was stopped on request (the run's cancel here, or a cancel on the
    /// remote server that ran it): such an outcome is final, never retried.
    pub fn was_cancelled(&self) -> bool {
        match self {
            ExecOutcome::Cancelled => true,
            ExecOutcome::Errored { stage, .. } => stage == CANCELLED_REMOTELY,
            ExecOutcome::Exited { .. } | ExecOutcome::TimedOut => false,
        }
    }
}

/// Runs one attempt of a task somewhere.
pub trait Executor: Send + Sync {
    /// A short name for messages and placement ("process", "docker", "native", ...).
    fn name(&self) -> &str;

    /// Runs the attempt to completion, honouring `req.timeout` and `io.cancel`. Must leave no
    /// process, container or network behind when it returns.
    fn execute<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, ExecOutcome>;

    /// Runs the attempt like [`Executor::execute`], also returning the outputs the task
    /// recorded while it ran (a native task's `TaskCtx::output`). Default: none recorded.
    fn execute_recorded<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, Executed> {
        Box::pin(async move {
            Executed {
                outcome: self.execute(req, io).await,
                recorded: BTreeMap::new(),
            }
        })
    }

    /// Identity of the code that carries out tasks here, when it changes their results beyond
    /// the task's own definition (a plugin's component digest and settings): part of the
    /// cache key of every task placed on this executor, so a new plugin version never
    /// serves results of the old one. Default: none (the task's definition is enough).
    fn code_identity(&self) -> Option<String> {
        None
    }

    /// Called once when the run ends (also after a cancelled run): releases what the
    /// executor keeps for the run's lifetime, such as background tasks' processes. The
    /// default has nothing to release.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// One attempt's result as [`Executor::execute_recorded`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// How the attempt ended.
    pub outcome: ExecOutcome,
    /// Outputs the task recorded while running, name -> absolute path.
    pub recorded: BTreeMap<String, PathBuf>,
}
