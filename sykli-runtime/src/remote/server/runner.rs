//! Running one action: its input root laid out from the CAS in a fresh directory under the
//! store's `exec/`, its command run with the local executors (the process executor's
//! process-group kill and timeout, or the Docker executor for `container-image`), its
//! stdout/stderr written to files with secrets masked, its outputs collected into the CAS,
//! then the directory removed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::protobuf::Timestamp;
use bazel_remote_apis::google::rpc;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::digests::BlobDigest;
use super::inputs::{self, InputError};
use super::live::{LiveStreams, ProgressTx};
use super::outputs;
use super::platform::Placement;
use super::status;
use super::store::{DiskStore, StoreError, remove_tree};
use crate::cache::digest::DigestFunction;
use crate::exec::process::{ChildSpec, ProcessExecutor};
use crate::exec::{ExecOutcome, OutputSink, OutputStream};
use crate::redact::{SecretSet, StreamRedactor};

/// The exit code reported for an action stopped by its timeout (as `timeout(1)` does).
pub const TIMEOUT_EXIT_CODE: i32 = 124;

/// How often a spawn failing with ETXTBSY ("Text file busy") is tried again.
const TEXT_BUSY_RETRIES: u64 = 5;

/// The executor of sandboxed host actions (Linux only).
#[cfg(target_os = "linux")]
pub type Sandbox = crate::exec::sandbox::SandboxExecutor;
/// No sandbox off Linux.
#[cfg(not(target_os = "linux"))]
pub type Sandbox = std::convert::Infallible;

/// Runs actions; shared by every execution of a worker.
pub struct Runner {
    store: Arc<DiskStore>,
    process: ProcessExecutor,
    sandbox: Option<Sandbox>,
    #[cfg(feature = "docker")]
    docker: Option<Arc<crate::exec::container::DockerExecutor>>,
    worker: String,
    kill_grace: Duration,
    #[cfg(feature = "plugins")]
    plugins: Option<crate::plugin::Plugins>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

/// One action to run.
#[derive(Debug)]
pub struct Job {
    /// The digest function of everything the action names.
    pub function: DigestFunction,
    /// The Action's digest.
    pub action_digest: BlobDigest,
    /// The Action.
    pub action: reapi::Action,
    /// Its Command.
    pub command: reapi::Command,
    /// Where it runs (host or container).
    pub placement: Placement,
    /// Secret values for its environment (never stored; masked in its logs).
    pub secrets: BTreeMap<String, String>,
    /// Which attempt of its task this is (from 1), for plugins.
    pub attempt: u32,
    /// A unique name for its directory under `exec/`.
    pub dir_name: String,
    /// When it was queued.
    pub queued: SystemTime,
    /// Where its log sink reports progress for live readers.
    pub live: Option<LiveStreams>,
}

/// Runs an action's program in the sandbox: it sees its input root `root` (writable: the
/// worker collects outputs from it), the read-only host tools and a private /tmp; never the
/// worker's store, token file or other actions. A bare program name is looked up on the
/// action's PATH inside the sandbox (through `/usr/bin/env`).
#[cfg(target_os = "linux")]
async fn run_sandboxed(
    sandbox: &Sandbox,
    program: &OsStr,
    args: &[&OsStr],
    spec: ChildSpec<'_>,
    root: &Path,
) -> ExecOutcome {
    use crate::exec::sandbox::layout::{Layout, host_mounts};
    use crate::exec::sandbox::spec::MountSpec;
    let workdir = spec.workdir.to_path_buf();
    let program_path = Path::new(program);
    let (program, args): (&Path, Vec<&OsStr>) = if program_path.is_absolute() {
        (program_path, args.to_vec())
    } else {
        let mut all = vec![program];
        all.extend_from_slice(args);
        (Path::new("/usr/bin/env"), all)
    };
    let host_paths = sandbox.config().host_paths.clone();
    sandbox
        .run_program(program, &args, spec, |_| {
            let mut mounts = host_mounts(&host_paths, &[])?;
            mounts.push(MountSpec {
                source: root.to_path_buf(),
                target: root.to_path_buf(),
                writable: true,
            });
            Ok(Layout {
                mounts,
                workdir,
                ..Layout::default()
            })
        })
        .await
}

#[cfg(not(target_os = "linux"))]
async fn run_sandboxed(
    sandbox: &Sandbox,
    _: &OsStr,
    _: &[&OsStr],
    _: ChildSpec<'_>,
    _: &Path,
) -> ExecOutcome {
    match *sandbox {}
}

/// The shell command of an action's arguments, for a plugin's `task.command`:
/// `sh -c X` (or `/bin/sh -c X`) is `X`; anything else is its arguments shell-quoted.
pub fn shell_command(arguments: &[String]) -> String {
    match arguments {
        [sh, c, cmd, ..] if (sh == "sh" || sh == "/bin/sh") && c == "-c" => cmd.clone(),
        args => args
            .iter()
            .map(|a| {
                if !a.is_empty()
                    && a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
                {
                    a.clone()
                } else {
                    format!("'{}'", a.replace('\'', r"'\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The REAPI timestamp of `t`.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

impl Runner {
    /// The name this runner reports as `ExecutedActionMetadata.worker`.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// A runner over `store`; `docker` runs `container-image` actions.
    pub fn new(
        store: Arc<DiskStore>,
        process: ProcessExecutor,
        sandbox: Option<Sandbox>,
        #[cfg(feature = "docker")] docker: Option<Arc<crate::exec::container::DockerExecutor>>,
        worker: String,
        kill_grace: Duration,
    ) -> Runner {
        Runner {
            store,
            process,
            sandbox,
            #[cfg(feature = "docker")]
            docker,
            worker,
            kill_grace,
            #[cfg(feature = "plugins")]
            plugins: None,
        }
    }

    /// Runs actions whose platform says `sykli-target=NAME` through plugin NAME of
    /// `plugins` (hot-swappable: each action takes the version loaded when it starts).
    #[cfg(feature = "plugins")]
    pub fn with_plugins(mut self, plugins: crate::plugin::Plugins) -> Runner {
        self.plugins = Some(plugins);
        self
    }

    /// Runs an action through the target plugin `target`.
    #[allow(clippy::too_many_arguments)]
    async fn run_plugin(
        &self,
        target: &str,
        job: &Job,
        env: &BTreeMap<String, String>,
        workdir: &Path,
        timeout: Option<Duration>,
        sink: Arc<dyn OutputSink>,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        let stage = format!(
            "running action {} through target `{target}`",
            job.action_digest
        );
        #[cfg(feature = "plugins")]
        {
            let Some(plugins) = &self.plugins else {
                return ExecOutcome::errored(stage, "this worker has no plugin host");
            };
            let Some(exec) = plugins.executor(target) else {
                let loaded = plugins.names();
                return ExecOutcome::errored(
                    stage,
                    format!(
                        "no plugin named `{target}` is loaded on this worker (loaded: {})",
                        if loaded.is_empty() {
                            "none".to_owned()
                        } else {
                            loaded.join(", ")
                        }
                    ),
                );
            };
            let req =
                crate::exec::ExecRequest {
                    task: format!("action {}", job.action_digest),
                    action: crate::exec::Action::Shell(shell_command(&job.command.arguments)),
                    env: env.clone(),
                    inherit_env: false,
                    workdir: workdir.to_path_buf(),
                    container: job.placement.image.clone().map(|image| {
                        crate::exec::ContainerSpec {
                            image,
                            workdir: None,
                            mounts: Vec::new(),
                            services: Vec::new(),
                        }
                    }),
                    timeout,
                    kill_grace: self.kill_grace,
                    run_id: self.worker.clone(),
                    background: None,
                    sandbox: None,
                };
            use crate::exec::Executor;
            exec.execute(
                &req,
                crate::exec::ExecIo {
                    attempt: job.attempt,
                    output: sink,
                    cancel,
                    operations: None,
                },
            )
            .await
        }
        #[cfg(not(feature = "plugins"))]
        {
            let _ = (job, env, workdir, timeout, sink, cancel);
            ExecOutcome::errored(stage, "this worker was built without plugin support")
        }
    }

    /// Runs `job` to an `ExecuteResponse` (never a bare error: what went wrong is its
    /// `status`), caching a successful result unless the action says `do_not_cache`. Its
    /// directory stays until [`Runner::clean_up`].
    pub async fn run(&self, job: &Job, cancel: CancellationToken) -> reapi::ExecuteResponse {
        let dir = match self.store.exec_dir(&job.dir_name) {
            Ok(d) => d,
            Err(e) => return failed(status::status(Code::Internal, e.to_string())),
        };
        let response = self.run_in(job, &dir, cancel).await;
        let cacheable = response
            .status
            .as_ref()
            .is_none_or(|s| s.code == Code::Ok as i32)
            && response.result.as_ref().is_some_and(|r| r.exit_code == 0)
            && !job.action.do_not_cache
            // A plugin's version is not in the action's key (it can be swapped under it):
            // its results are never cached here (docs/plugins.md).
            && job.placement.target.is_none();
        if let Some(result) = response.result.clone().filter(|_| cacheable) {
            let store = self.store.clone();
            let (function, key) = (job.function, job.action_digest);
            // A result that cannot be cached is still the answer to this execution.
            let _ = tokio::task::spawn_blocking(move || store.put_action(function, &key, &result))
                .await;
        }
        response
    }

    /// Removes the directory of `job` (after its answer went out: the client need not wait).
    pub async fn clean_up(&self, job: &Job) {
        let dir = self.store.root().join("exec").join(&job.dir_name);
        let _ = tokio::task::spawn_blocking(move || remove_tree(&dir)).await;
    }

    async fn run_in(
        &self,
        job: &Job,
        dir: &Path,
        cancel: CancellationToken,
    ) -> reapi::ExecuteResponse {
        let mut meta = reapi::ExecutedActionMetadata {
            worker: self.worker.clone(),
            queued_timestamp: Some(timestamp(job.queued)),
            worker_start_timestamp: Some(timestamp(SystemTime::now())),
            ..Default::default()
        };
        let command = &job.command;
        let Some(program) = command.arguments.first() else {
            return failed(status::status(
                Code::InvalidArgument,
                "Command.arguments is empty: the first argument names the program",
            ));
        };
        if let Err(e) = inputs::check_relative(&command.working_directory, "working_directory") {
            return failed(status::status(Code::InvalidArgument, e));
        }
        for p in outputs::declared(command) {
            if let Err(e) = inputs::check_relative(p, "output path") {
                return failed(status::status(Code::InvalidArgument, e));
            }
        }
        let root = dir.join("root");
        let workdir = root.join(&command.working_directory);

        // Inputs.
        meta.input_fetch_start_timestamp = Some(timestamp(SystemTime::now()));
        let laid_out = {
            let store = self.store.clone();
            let (function, root, workdir) = (job.function, root.clone(), workdir.clone());
            let input_root = job.action.input_root_digest.clone();
            let outs: Vec<String> = outputs::declared(command)
                .into_iter()
                .map(String::from)
                .collect();
            tokio::task::spawn_blocking(move || -> Result<(), InputError> {
                let input_root =
                    BlobDigest::required(input_root.as_ref(), "Action.input_root_digest")
                        .map_err(|s| InputError::Invalid(s.message().to_owned()))?;
                mkdir(&root)?;
                inputs::materialise(&store, function, &input_root, &root)?;
                mkdir(&workdir)?;
                // The worker creates the parents of every output path.
                for p in &outs {
                    if let Some(parent) = workdir.join(p).parent() {
                        mkdir(parent)?;
                    }
                }
                Ok(())
            })
            .await
        };
        match laid_out {
            Ok(Ok(())) => {}
            Ok(Err(InputError::Missing(missing))) => {
                return failed(status::missing_blobs(job.function, &missing));
            }
            Ok(Err(InputError::Invalid(m))) => {
                return failed(status::status(Code::InvalidArgument, m));
            }
            Ok(Err(InputError::Store(e))) => {
                return failed(status::status(Code::Internal, e.to_string()));
            }
            Err(e) => {
                return failed(status::status(
                    Code::Internal,
                    format!("input task failed: {e}"),
                ));
            }
        }
        meta.input_fetch_completed_timestamp = Some(timestamp(SystemTime::now()));

        // Logs, masked.
        let secrets = Arc::new(SecretSet::new(job.secrets.values()));
        let sink = match LogSink::create(dir, secrets, job.live.clone()) {
            Ok(s) => Arc::new(s),
            Err(e) => return failed(status::status(Code::Internal, e.to_string())),
        };

        // Environment: what the Command sets, over PATH and HOME of the worker; secrets last.
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for key in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(key) {
                env.insert(key.to_owned(), v);
            }
        }
        for v in &command.environment_variables {
            env.insert(v.name.clone(), v.value.clone());
        }
        for (k, v) in &job.secrets {
            env.insert(k.clone(), v.clone());
        }
        let timeout = job
            .action
            .timeout
            .as_ref()
            .filter(|t| t.seconds > 0 || t.nanos > 0)
            .map(|t| {
                Duration::from_secs(u64::try_from(t.seconds).unwrap_or(0))
                    + Duration::from_nanos(u64::try_from(t.nanos).unwrap_or(0))
            });

        meta.execution_start_timestamp = Some(timestamp(SystemTime::now()));
        let outcome = if let Some(target) = job.placement.target.as_deref() {
            self.run_plugin(
                target,
                job,
                &env,
                &workdir,
                timeout,
                sink.clone(),
                cancel.clone(),
            )
            .await
        } else {
            match &job.placement.image {
                None => {
                    // An argv[0] with a slash is relative to the working directory; a bare name
                    // is looked up in the action's PATH (REAPI `Command.arguments`).
                    let program_path = if program.contains('/') && !program.starts_with('/') {
                        workdir.join(program).into_os_string()
                    } else {
                        program.into()
                    };
                    let args: Vec<&OsStr> = command.arguments[1..].iter().map(OsStr::new).collect();
                    let mut attempt = 0;
                    loop {
                        let spec = ChildSpec {
                            env: &env,
                            inherit_env: false,
                            workdir: &workdir,
                            timeout,
                            kill_grace: self.kill_grace,
                            output: sink.clone(),
                            cancel: cancel.clone(),
                        };
                        let outcome = match &self.sandbox {
                            Some(sandbox) => {
                                run_sandboxed(sandbox, &program_path, &args, spec, &root).await
                            }
                            None => self.process.run_program(&program_path, &args, spec).await,
                        };
                        // A binary just materialised can be "busy" for a moment: another
                        // thread's fork may still hold a descriptor of its temp copy until
                        // that child execs. The program never started, so trying again is safe.
                        let busy = matches!(&outcome, ExecOutcome::Errored { message, .. }
                        if message.contains("os error 26") || message.contains("ETXTBSY"));
                        if !busy || attempt == TEXT_BUSY_RETRIES {
                            break outcome;
                        }
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                    }
                }
                Some(image) => {
                    self.run_container(
                        job,
                        image,
                        &root,
                        &env,
                        timeout,
                        sink.clone(),
                        cancel.clone(),
                    )
                    .await
                }
            }
        };
        meta.execution_completed_timestamp = Some(timestamp(SystemTime::now()));

        // Outputs and logs.
        meta.output_upload_start_timestamp = Some(timestamp(SystemTime::now()));
        let logs = sink.finish();
        let collected = {
            let store = self.store.clone();
            let (function, workdir, command) = (job.function, workdir.clone(), command.clone());
            let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
            tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                logs?;
                let collected = outputs::collect(&store, function, &workdir, &command)?;
                let stdout = store.insert_file(function, &out_path)?;
                let stderr = store.insert_file(function, &err_path)?;
                Ok((collected, stdout, stderr))
            })
            .await
        };
        let (collected, stdout, stderr) = match collected {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return failed(status::status(
                    Code::Internal,
                    format!("failed to store the outputs: {e}"),
                ));
            }
            Err(e) => {
                return failed(status::status(
                    Code::Internal,
                    format!("output task failed: {e}"),
                ));
            }
        };
        meta.output_upload_completed_timestamp = Some(timestamp(SystemTime::now()));
        meta.worker_completed_timestamp = Some(timestamp(SystemTime::now()));

        let (exit_code, st) = match outcome {
            ExecOutcome::Exited { code } => (code, status::ok()),
            ExecOutcome::TimedOut => (
                TIMEOUT_EXIT_CODE,
                status::status(
                    Code::DeadlineExceeded,
                    format!(
                        "action {} timed out after {}",
                        job.action_digest,
                        humantime::format_duration(timeout.unwrap_or_default())
                    ),
                ),
            ),
            ExecOutcome::Cancelled => (
                -1,
                status::status(Code::Unavailable, "the worker stopped while the action ran"),
            ),
            ExecOutcome::Errored { stage, message } => (
                -1,
                status::status(Code::FailedPrecondition, format!("{stage}: {message}")),
            ),
        };
        #[allow(deprecated)]
        let result = reapi::ActionResult {
            output_files: collected.files,
            output_file_symlinks: collected.file_symlinks,
            output_symlinks: collected.symlinks,
            output_directories: collected.directories,
            output_directory_symlinks: collected.directory_symlinks,
            exit_code,
            stdout_raw: Vec::new(),
            stdout_digest: Some(stdout.to_reapi()),
            stderr_raw: Vec::new(),
            stderr_digest: Some(stderr.to_reapi()),
            execution_metadata: Some(meta),
        };
        reapi::ExecuteResponse {
            result: Some(result),
            cached_result: false,
            status: Some(st),
            server_logs: Default::default(),
            message: String::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_container(
        &self,
        job: &Job,
        image: &str,
        root: &Path,
        env: &BTreeMap<String, String>,
        timeout: Option<Duration>,
        sink: Arc<LogSink>,
        cancel: CancellationToken,
    ) -> ExecOutcome {
        #[cfg(feature = "docker")]
        {
            use crate::exec::{
                Action, ContainerMount, ContainerSpec, ExecIo, ExecRequest, Executor, MountSource,
            };
            let Some(docker) = &self.docker else {
                return ExecOutcome::errored(
                    "selecting an executor",
                    "this worker has no container engine",
                );
            };
            // The input root is mounted at the same path inside the container; the command
            // runs in its working directory there, exec'd from a shell with every argument
            // quoted.
            let mount = root.to_string_lossy().into_owned();
            let workdir = root.join(&job.command.working_directory);
            let script = format!(
                "exec {}",
                job.command
                    .arguments
                    .iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let mut env = env.clone();
            // The host's PATH and HOME mean nothing inside the image.
            for key in ["PATH", "HOME"] {
                if !job
                    .command
                    .environment_variables
                    .iter()
                    .any(|v| v.name == key)
                {
                    env.remove(key);
                }
            }
            let req = ExecRequest {
                task: format!("action-{}", &job.action_digest.hash.to_hex()[..12]),
                action: Action::Shell(script),
                env,
                inherit_env: false,
                workdir: root.to_owned(),
                container: Some(ContainerSpec {
                    image: image.to_owned(),
                    workdir: Some(workdir.to_string_lossy().into_owned()),
                    mounts: vec![ContainerMount {
                        source: MountSource::HostDir(PathBuf::from(&mount)),
                        target: mount,
                    }],
                    services: Vec::new(),
                }),
                timeout,
                kill_grace: self.kill_grace,
                run_id: job.dir_name.clone(),
                background: None,
                sandbox: None,
            };
            let io = ExecIo {
                attempt: job.attempt,
                output: sink,
                cancel,
                operations: None,
            };
            docker.execute(&req, io).await
        }
        #[cfg(not(feature = "docker"))]
        {
            let _ = (job, image, root, env, timeout, sink, cancel);
            ExecOutcome::errored(
                "selecting an executor",
                "this worker was built without container support",
            )
        }
    }
}

fn mkdir(path: &Path) -> Result<(), InputError> {
    std::fs::create_dir_all(path).map_err(|source| {
        InputError::Store(StoreError::Io {
            action: "create",
            path: path.to_owned(),
            source,
        })
    })
}

/// A response that carries only a status (the action did not run).
fn failed(st: rpc::Status) -> reapi::ExecuteResponse {
    reapi::ExecuteResponse {
        result: None,
        cached_result: false,
        status: Some(st),
        server_logs: Default::default(),
        message: String::new(),
    }
}

/// Quotes `s` for `/bin/sh`.
#[cfg(feature = "docker")]
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Writes stdout and stderr to files, secrets masked.
struct LogSink {
    state: Mutex<LogState>,
}

struct LogState {
    stdout: (File, StreamRedactor, Option<Arc<ProgressTx>>),
    stderr: (File, StreamRedactor, Option<Arc<ProgressTx>>),
    pgid: Option<Arc<tokio::sync::watch::Sender<Option<u32>>>>,
    buf: Vec<u8>,
    error: Option<StoreError>,
}

impl LogState {
    /// Writes the redacted `buf` to one log and tells live readers.
    fn emit(&mut self, stream: OutputStream) {
        let (file, _, progress) = match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        };
        match file.write_all(&self.buf) {
            Ok(()) => {
                if let Some(p) = progress
                    && !self.buf.is_empty()
                {
                    let n = self.buf.len() as u64;
                    p.send_modify(|p| p.len += n);
                }
            }
            Err(source) => {
                if self.error.is_none() {
                    self.error = Some(StoreError::Io {
                        action: "write",
                        path: PathBuf::from("action log"),
                        source,
                    });
                }
            }
        }
    }
}

impl LogSink {
    fn create(
        dir: &Path,
        secrets: Arc<SecretSet>,
        live: Option<LiveStreams>,
    ) -> Result<LogSink, StoreError> {
        let open = |name: &str| {
            let path = dir.join(name);
            File::create(&path).map_err(|source| StoreError::Io {
                action: "create",
                path,
                source,
            })
        };
        let (out_live, err_live, pgid) = match live {
            Some(l) => (Some(l.stdout), Some(l.stderr), Some(l.pgid)),
            None => (None, None, None),
        };
        Ok(LogSink {
            state: Mutex::new(LogState {
                stdout: (
                    open("stdout")?,
                    StreamRedactor::new(secrets.clone()),
                    out_live,
                ),
                stderr: (open("stderr")?, StreamRedactor::new(secrets), err_live),
                pgid,
                buf: Vec::new(),
                error: None,
            }),
        })
    }

    /// Flushes what the redactors held back and marks the logs complete; the first write
    /// error, if any.
    fn finish(&self) -> Result<(), StoreError> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *guard;
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            state.buf.clear();
            let redactor = match stream {
                OutputStream::Stdout => &mut state.stdout.1,
                OutputStream::Stderr => &mut state.stderr.1,
            };
            redactor.finish(&mut state.buf);
            state.emit(stream);
        }
        for p in [&state.stdout.2, &state.stderr.2].into_iter().flatten() {
            p.send_modify(|p| p.done = true);
        }
        match state.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl OutputSink for LogSink {
    fn write(&self, stream: OutputStream, bytes: &[u8]) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *guard;
        state.buf.clear();
        let redactor = match stream {
            OutputStream::Stdout => &mut state.stdout.1,
            OutputStream::Stderr => &mut state.stderr.1,
        };
        redactor.push(bytes, &mut state.buf);
        state.emit(stream);
    }

    fn processes_started(&self, pgid: u32) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = &state.pgid {
            tx.send_replace(Some(pgid));
        }
    }
}
