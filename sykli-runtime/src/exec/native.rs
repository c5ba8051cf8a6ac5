//! Native tasks: async Rust functions registered by name and run in-process.
//!
//! A task with `native: "<fn>"` calls the function registered under that name in a
//! [`NativeRegistry`], passing a [`TaskCtx`]. Child processes started through the context
//! ([`TaskCtx::sh`], [`TaskCtx::cmd`]) run exactly like shell tasks: own process group,
//! masked and logged output, stopped with SIGTERM then SIGKILL on timeout or Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::process::{ChildSpec, ProcessExecutor};
use super::{Action, ExecIo, ExecOutcome, ExecRequest, Executor, OutputSink, OutputStream};
use crate::secrets::Secret;

/// A registered native task function.
pub type NativeFn =
    Arc<dyn Fn(TaskCtx) -> BoxFuture<'static, Result<(), NativeError>> + Send + Sync>;

/// Why a native task failed: a message plus, optionally, the error that caused it.
pub struct NativeError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl NativeError {
    /// An error with a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        NativeError {
            message: message.to_string(),
            source: None,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for NativeError {
    fn from(e: E) -> Self {
        NativeError {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl fmt::Display for NativeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let mut src = self.source.as_ref().and_then(|s| s.source());
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for NativeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NativeError({self})")
    }
}

/// Native task functions by name.
#[derive(Clone, Default)]
pub struct NativeRegistry {
    fns: HashMap<String, NativeFn>,
}

impl fmt::Debug for NativeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl NativeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        NativeRegistry::default()
    }

    /// Registers a boxed function under `name`, replacing any earlier one.
    pub fn insert(&mut self, name: impl Into<String>, f: NativeFn) {
        self.fns.insert(name.into(), f);
    }

    /// Registers an async function under `name`, replacing any earlier one.
    pub fn register<F, Fut>(&mut self, name: impl Into<String>, f: F)
    where
        F: Fn(TaskCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), NativeError>> + Send + 'static,
    {
        self.insert(name, Arc::new(move |ctx| Box::pin(f(ctx))));
    }

    /// The function registered under `name`.
    pub fn get(&self, name: &str) -> Option<&NativeFn> {
        self.fns.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.fns.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.fns.is_empty()
    }
}

/// What a native task function receives: its name, environment, working directory,
/// secrets, a way to run commands, and a cancellation token.
#[derive(Clone)]
pub struct TaskCtx {
    inner: Arc<CtxInner>,
}

struct CtxInner {
    name: String,
    env: BTreeMap<String, String>,
    inherit_env: bool,
    workdir: PathBuf,
    cancel: CancellationToken,
    output: Arc<dyn OutputSink>,
    process: ProcessExecutor,
    kill_grace: Duration,
    outputs: Mutex<BTreeMap<String, PathBuf>>,
}

impl fmt::Debug for TaskCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The environment holds secret values: never print it.
        f.debug_struct("TaskCtx")
            .field("name", &self.inner.name)
            .field("workdir", &self.inner.workdir)
            .finish_non_exhaustive()
    }
}

impl TaskCtx {
    /// The task's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The task's working directory (absolute).
    pub fn workdir(&self) -> &Path {
        &self.inner.workdir
    }

    /// An environment variable as the task sees it: the task's env (including capabilities
    /// and secrets) over the runtime's own.
    pub fn env(&self, key: &str) -> Option<String> {
        match self.inner.env.get(key) {
            Some(v) => Some(v.clone()),
            None if self.inner.inherit_env => std::env::var(key).ok(),
            None => None,
        }
    }

    /// The variables the task sets (task env, capabilities, matrix values, secrets).
    pub fn task_env(&self) -> &BTreeMap<String, String> {
        &self.inner.env
    }

    /// A secret the task declared (in `secrets` or `secret_refs`), by the name it sees.
    pub fn secret(&self, name: &str) -> Result<Secret, NativeError> {
        self.inner
            .env
            .get(name)
            .map(|v| Secret::new(v.clone()))
            .ok_or_else(|| {
                NativeError::msg(format!(
                    "task `{}` has no secret {name} (declare it in `secrets` or `secret_refs`)",
                    self.inner.name
                ))
            })
    }

    /// Cancelled on Ctrl-C, SIGTERM and timeout: long work should stop when it fires.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Whether the task has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Writes a line to the task's output (masked and logged like a command's stdout).
    pub fn log(&self, line: impl fmt::Display) {
        let mut s = line.to_string();
        s.push('\n');
        self.inner.output.write(OutputStream::Stdout, s.as_bytes());
    }

    /// Runs `command` with `/bin/sh -c` in the workdir, like a shell task. Fails on a
    /// non-zero exit, and when the task is cancelled.
    pub async fn sh(&self, command: &str) -> Result<(), NativeError> {
        let args = [OsStr::new("-c"), OsStr::new(command)];
        let outcome = self
            .inner
            .process
            .run_program(OsStr::new("/bin/sh"), &args, self.spec())
            .await;
        check(outcome, command)
    }

    /// Runs `program` with `args` (no shell) in the workdir. Fails on a non-zero exit, and
    /// when the task is cancelled.
    pub async fn cmd<I, S>(&self, program: &str, args: I) -> Result<(), NativeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let owned: Vec<S> = args.into_iter().collect();
        let args: Vec<&OsStr> = owned.iter().map(AsRef::as_ref).collect();
        let outcome = self
            .inner
            .process
            .run_program(OsStr::new(program), &args, self.spec())
            .await;
        let shown = std::iter::once(program.to_owned())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        check(outcome, &shown)
    }

    /// Records that output `name` of this task is the file or directory at `path` (relative
    /// to the workdir); later tasks can take it through `task_inputs`. Returns its absolute
    /// path. The path must stay inside the workdir.
    pub fn output(&self, name: &str, path: impl AsRef<Path>) -> Result<PathBuf, NativeError> {
        let path = path.as_ref();
        let abs = crate::paths::contained(&self.inner.workdir, path).map_err(|e| {
            NativeError::msg(format!("task `{}`: output `{name}`: {e}", self.inner.name))
        })?;
        self.inner
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), abs.clone());
        Ok(abs)
    }

    fn spec(&self) -> ChildSpec<'_> {
        ChildSpec {
            env: &self.inner.env,
            inherit_env: self.inner.inherit_env,
            workdir: &self.inner.workdir,
            timeout: None,
            kill_grace: self.inner.kill_grace,
            output: self.inner.output.clone(),
            cancel: self.inner.cancel.clone(),
        }
    }
}

fn check(outcome: ExecOutcome, what: &str) -> Result<(), NativeError> {
    match outcome {
        ExecOutcome::Exited { code: 0 } => Ok(()),
        ExecOutcome::Exited { code } => Err(NativeError::msg(format!(
            "command `{what}` exited with code {code}"
        ))),
        ExecOutcome::TimedOut => Err(NativeError::msg(format!("command `{what}` timed out"))),
        ExecOutcome::Cancelled => Err(NativeError::msg(format!("command `{what}` was cancelled"))),
        ExecOutcome::Errored { message, .. } => Err(NativeError::msg(message)),
    }
}

/// Runs [`Action::Native`] tasks from a registry, in-process.
#[derive(Debug, Clone, Default)]
pub struct NativeExecutor {
    registry: NativeRegistry,
    process: ProcessExecutor,
}

impl NativeExecutor {
    /// An executor over `registry`; `process` runs the children of [`TaskCtx::sh`].
    pub fn new(registry: NativeRegistry, process: ProcessExecutor) -> Self {
        NativeExecutor { registry, process }
    }

    /// The registry.
    pub fn registry(&self) -> &NativeRegistry {
        &self.registry
    }

    /// Runs one attempt, returning its outcome and the outputs it recorded with
    /// [`TaskCtx::output`].
    pub async fn run(
        &self,
        req: &ExecRequest,
        io: ExecIo,
    ) -> (ExecOutcome, BTreeMap<String, PathBuf>) {
        if req.background.is_some() {
            return (
                ExecOutcome::errored(
                    "selecting an executor",
                    "the native executor does not run background tasks",
                ),
                BTreeMap::new(),
            );
        }
        let name = match &req.action {
            Action::Native(n) => n,
            Action::Shell(_) => {
                return (
                    ExecOutcome::errored(
                        "selecting an executor",
                        "the native executor runs only native tasks",
                    ),
                    BTreeMap::new(),
                );
            }
        };
        let Some(f) = self.registry.get(name) else {
            return (
                ExecOutcome::errored(
                    "looking up the native function",
                    format!(
                        "no native function `{name}` is registered (registered: {})",
                        list_or_none(&self.registry.names())
                    ),
                ),
                BTreeMap::new(),
            );
        };
        if io.cancel.is_cancelled() {
            return (ExecOutcome::Cancelled, BTreeMap::new());
        }
        let stop = io.cancel.child_token();
        let ctx = TaskCtx {
            inner: Arc::new(CtxInner {
                name: req.task.clone(),
                env: req.env.clone(),
                inherit_env: req.inherit_env,
                workdir: req.workdir.clone(),
                cancel: stop.clone(),
                output: io.output.clone(),
                process: self.process.clone(),
                kill_grace: req.kill_grace,
                outputs: Mutex::new(BTreeMap::new()),
            }),
        };
        let mut fut = AssertUnwindSafe(f(ctx.clone())).catch_unwind();
        let timeout = async {
            match req.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let stopped = tokio::select! {
            r = &mut fut => Ok(r),
            () = timeout => Err(ExecOutcome::TimedOut),
            () = io.cancel.cancelled() => Err(ExecOutcome::Cancelled),
        };
        let outcome = match stopped {
            Ok(Ok(Ok(()))) => ExecOutcome::Exited { code: 0 },
            Ok(Ok(Err(e))) => {
                io.output
                    .write(OutputStream::Stderr, format!("error: {e}\n").as_bytes());
                ExecOutcome::Exited { code: 1 }
            }
            Ok(Err(panic)) => ExecOutcome::errored(
                format!("running native function `{name}`"),
                format!(
                    "native function `{name}` panicked: {}",
                    panic_message(&panic)
                ),
            ),
            Err(outcome) => {
                // Ask the function to stop, give it the grace period, then drop it (which
                // kills any child it started).
                stop.cancel();
                let escalate = self.process.escalation().clone();
                tokio::select! {
                    _ = &mut fut => {}
                    () = tokio::time::sleep(req.kill_grace) => {}
                    () = escalate.cancelled() => {}
                }
                outcome
            }
        };
        drop(fut);
        let outputs =
            std::mem::take(&mut *ctx.inner.outputs.lock().unwrap_or_else(|p| p.into_inner()));
        (outcome, outputs)
    }
}

impl Executor for NativeExecutor {
    fn name(&self) -> &str {
        "native"
    }

    fn execute<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, ExecOutcome> {
        Box::pin(async move { self.run(req, io).await.0 })
    }

    fn execute_recorded<'a>(
        &'a self,
        req: &'a ExecRequest,
        io: ExecIo,
    ) -> BoxFuture<'a, super::Executed> {
        Box::pin(async move {
            let (outcome, recorded) = self.run(req, io).await;
            super::Executed { outcome, recorded }
        })
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
