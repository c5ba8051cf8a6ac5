//! The sandbox executor itself: scratch directory, cgroups, init, outcome.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::layout::{self, DEFAULT_HOST_PATHS, Layout};
use super::spec::{INIT_ARG, InitSpec, STATUS_FD};
use super::{SandboxRequest, cgroup, violation};
use crate::exec::process::{ChildSpec, run_child};
use crate::exec::simple_command::direct_argv;
use crate::exec::{Action, ExecIo, ExecOutcome, ExecRequest, Executor, OutputStream};

/// How the sandbox executor runs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The binary re-executed as the sandbox's init (it must call
    /// [`run_init_if_requested`]); default: the running executable.
    pub init_program: PathBuf,
    /// Host paths shown read-only to every task (those that exist).
    pub host_paths: Vec<PathBuf>,
    /// Where per-task scratch directories go (default: the system temp directory).
    pub scratch: PathBuf,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            init_program: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
            host_paths: DEFAULT_HOST_PATHS.iter().map(PathBuf::from).collect(),
            scratch: std::env::temp_dir(),
        }
    }
}

/// Runs [`Action::Shell`] tasks in a sandbox (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct SandboxExecutor {
    config: SandboxConfig,
    escalate: CancellationToken,
}

impl SandboxExecutor {
    /// A sandbox executor with `config`.
    pub fn new(config: SandboxConfig) -> Self {
        SandboxExecutor {
            config,
            escalate: CancellationToken::new(),
        }
    }

    /// Cuts grace periods short once `token` is cancelled (see
    /// [`ProcessExecutor::with_escalation`](super::process::ProcessExecutor::with_escalation)).
    pub fn with_escalation(mut self, token: CancellationToken) -> Self {
        self.escalate = token;
        self
    }

    /// Its configuration.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Runs `program` (absolute) with `args` in a sandbox laid out by `make_layout` (given a
    /// fresh scratch directory): own process group, streamed output, timeout and
    /// cancellation with grace, no process left behind.
    pub async fn run_program(
        &self,
        program: &Path,
        args: &[&OsStr],
        spec: ChildSpec<'_>,
        make_layout: impl FnOnce(&Path) -> Result<Layout, String>,
    ) -> ExecOutcome {
        let stage = "setting up the sandbox";
        let scratch = match tempfile::Builder::new()
            .prefix("sykli-sandbox-")
            .tempdir_in(&self.config.scratch)
        {
            Ok(d) => d,
            Err(e) => {
                return ExecOutcome::errored(
                    stage,
                    format!(
                        "failed to create a scratch directory in {}: {e}",
                        self.config.scratch.display()
                    ),
                );
            }
        };
        let layout = match make_layout(scratch.path()) {
            Ok(l) => l,
            Err(e) => return ExecOutcome::errored(stage, e),
        };
        let root = scratch.path().join("root");
        if let Err(e) = std::fs::create_dir(&root) {
            return ExecOutcome::errored(
                stage,
                format!("failed to create {}: {e}", root.display()),
            );
        }
        let (cgroup, notes) = cgroup::TaskCgroup::create(&layout.limits);
        for n in notes {
            spec.output
                .write(OutputStream::Stderr, format!("{n}\n").as_bytes());
        }
        let init = InitSpec {
            root,
            skeleton: layout.skeleton.clone(),
            mounts: layout.mounts.clone(),
            workdir: layout.workdir.clone(),
            program: program.to_path_buf(),
            args: args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            network: layout.network,
            user_ns: !nix::unistd::geteuid().is_root(),
            cgroup_procs: cgroup.procs_files(),
        };
        let spec_path = scratch.path().join("spec.json");
        let written = serde_json::to_vec(&init)
            .map_err(|e| e.to_string())
            .and_then(|b| std::fs::write(&spec_path, b).map_err(|e| e.to_string()));
        if let Err(e) = written {
            return ExecOutcome::errored(stage, format!("failed to write the sandbox spec: {e}"));
        }
        let (status_r, status_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => p,
            Err(e) => return ExecOutcome::errored(stage, format!("failed to create a pipe: {e}")),
        };
        let mut cmd = tokio::process::Command::new(&self.config.init_program);
        cmd.arg(INIT_ARG).arg(&spec_path);
        let w = status_w.as_raw_fd();
        // SAFETY: dup2 and fcntl are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if w == STATUS_FD {
                    if libc::fcntl(w, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(w, STATUS_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The sandbox has no home of the host's and its own /tmp.
        let mut env = spec.env.clone();
        env.entry("HOME".into()).or_insert_with(|| "/tmp".into());
        env.insert("TMPDIR".into(), "/tmp".into());
        let tail = Arc::new(violation::TailSink::new(spec.output.clone()));
        let child = ChildSpec {
            env: &env,
            inherit_env: spec.inherit_env,
            workdir: spec.workdir,
            timeout: spec.timeout,
            kill_grace: spec.kill_grace,
            output: tail.clone(),
            cancel: spec.cancel.clone(),
        };
        let name = program.display().to_string();
        let outcome = run_child(cmd, &name, child, &self.escalate).await;
        drop(status_w);
        let status = read_status(status_r, &self.config.init_program);
        if let Some((stage, message)) = status {
            return ExecOutcome::Errored { stage, message };
        }
        if let Some(limit) = cgroup.oom_killed() {
            return ExecOutcome::errored(
                "running in the sandbox",
                format!(
                    "the task exceeded its memory limit of {} MiB and was killed by the \
                     kernel's OOM killer (raise `memory_mb` in its `sandbox`)",
                    limit / (1024 * 1024)
                ),
            );
        }
        drop(cgroup);
        if let ExecOutcome::Exited { code } = outcome
            && code != 0
        {
            let found = violation::scan(
                &tail.stderr(),
                &layout.workdir,
                |p| layout.shows(p),
                |p| std::fs::symlink_metadata(p).is_ok(),
            );
            for v in found {
                spec.output
                    .write(OutputStream::Stderr, format!("{v}\n").as_bytes());
            }
        }
        match layout.move_outputs_out() {
            Ok(discarded) => {
                for p in discarded {
                    let line = format!(
                        "sykli: sandbox: the task wrote {}, which is not a declared output: \
                         discarded (declare it in `outputs` to keep it)\n",
                        p.display()
                    );
                    spec.output.write(OutputStream::Stderr, line.as_bytes());
                }
            }
            Err(e) => return ExecOutcome::errored("collecting the sandbox's outputs", e),
        }
        outcome
    }
}

/// The init's report: `None` when it started and set the sandbox up, else the stage and
/// message of what went wrong (`stage\tmessage` after its `started` line).
fn read_status(fd: OwnedFd, init: &Path) -> Option<(String, String)> {
    let _ = nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut text = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut text);
    let mut lines = text.lines();
    if lines.next() != Some(super::init::STARTED) {
        return Some((
            "setting up the sandbox".to_owned(),
            format!(
                "{} did not run the sandbox's init: a binary that runs sandboxed tasks must \
                 call sykli_runtime::exec::sandbox::run_init_if_requested() first in main \
                 (or set SandboxConfig::init_program to one that does, such as `sykli`)",
                init.display()
            ),
        ));
    }
    let line = lines.next()?;
    let (stage, message) = line
        .split_once('\t')
        .unwrap_or(("setting up the sandbox", line));
    Some((stage.to_owned(), message.to_owned()))
}

impl Executor for SandboxExecutor {
    fn name(&self) -> &str {
        "sandbox"
    }

    fn execute<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, ExecOutcome> {
        Box::pin(async move {
            let command = match &req.action {
                Action::Shell(c) => c,
                Action::Native(f) => {
                    return ExecOutcome::errored(
                        "selecting an executor",
                        format!("the sandbox executor cannot run native function `{f}`"),
                    );
                }
            };
            if req.background.is_some() {
                return ExecOutcome::errored(
                    "selecting an executor",
                    "the sandbox executor does not run background tasks",
                );
            }
            let sandbox = req.sandbox.clone().unwrap_or_else(|| SandboxRequest {
                settings: Default::default(),
                project_root: req.workdir.clone(),
                inputs: Vec::new(),
                outputs: Vec::new(),
                visible: Vec::new(),
            });
            let path = req
                .env
                .get("PATH")
                .map(std::ffi::OsString::from)
                .or_else(|| req.inherit_env.then(|| std::env::var_os("PATH")).flatten());
            let (program, args): (PathBuf, Vec<std::ffi::OsString>) =
                match direct_argv(command, path.as_ref()) {
                    Some((p, a)) if p.is_absolute() => (p, a.into_iter().map(Into::into).collect()),
                    _ => ("/bin/sh".into(), vec!["-c".into(), command.into()]),
                };
            let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            let spec = ChildSpec {
                env: &req.env,
                inherit_env: req.inherit_env,
                workdir: &req.workdir,
                timeout: req.timeout,
                kill_grace: req.kill_grace,
                output: io.output,
                cancel: io.cancel,
            };
            let host_paths = self.config.host_paths.clone();
            self.run_program(&program, &args, spec, |scratch| {
                layout::for_task(&sandbox, &req.workdir, &host_paths, scratch)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::exec::OutputSink;

    #[derive(Default)]
    struct Sink(Mutex<Vec<u8>>);
    impl OutputSink for Sink {
        fn write(&self, _: OutputStream, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
    }

    /// Regression guard: a binary without the init hook (here the test harness, which takes
    /// the argument for a filter and exits 0) must not pass for a task that ran.
    #[tokio::test]
    async fn an_init_program_without_the_hook_is_an_error_not_a_pass() {
        let sandbox = SandboxExecutor::default();
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::new();
        let spec = ChildSpec {
            env: &env,
            inherit_env: true,
            workdir: dir.path(),
            timeout: Some(Duration::from_secs(30)),
            kill_grace: Duration::from_secs(1),
            output: Arc::new(Sink::default()),
            cancel: CancellationToken::new(),
        };
        let outcome = sandbox
            .run_program(Path::new("/bin/true"), &[], spec, |_| {
                Ok(Layout {
                    workdir: dir.path().to_path_buf(),
                    ..Layout::default()
                })
            })
            .await;
        match outcome {
            ExecOutcome::Errored { message, .. } => {
                assert!(
                    message.contains("did not run the sandbox's init"),
                    "{message}"
                )
            }
            other => panic!("expected errored, got {other:?}"),
        }
    }
}
