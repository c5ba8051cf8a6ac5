//! Placement rules: which registered executor runs a task, and why.
//!
//! 1. A gate runs on no executor (the scheduler waits for approval).
//! 2. The work the task needs: a native function when it names one that this process has
//!    (or it has no `command` to fall back on), else a container when it sets `container`,
//!    else a command. Only executors that run that kind of work are candidates.
//! 3. `target: NAME` picks the executor registered as NAME; an unknown name is an error
//!    naming the registered ones, unless the task also sets `remote: true`: NAME is then a
//!    target plugin of the remote worker (its action carries `sykli-target=NAME`,
//!    docs/plugins.md) and the task is placed as rule 4 says.
//! 4. `remote: true` keeps only remote candidates; with no remote executor registered the
//!    task is errored, saying how to configure one. It never runs locally.
//! 5. `prefer: remote` tries remote candidates first, then local ones; `prefer: local` (and
//!    no preference) the other way round. The placement says which one it got.
//! 6. `sandbox` (set by the task, or by `sykli run --sandbox`) keeps only local executors
//!    carrying the `sandbox` label (and remote ones: workers sandbox every action); a task
//!    without it never lands on a sandbox executor unless its `target` names one.
//! 7. `requires` labels must all be carried by the chosen executor: the first candidate (in
//!    the order above, then registration order) carrying them all wins; if none does, the
//!    task is errored naming the missing labels.
//!
//! See `docs/placement.md` for the user-facing description.

use std::fmt;

use crate::exec::native::NativeRegistry;
use crate::exec::sandbox::SANDBOX_LABEL;
use crate::exec::{ExecutorEntry, ExecutorRegistry, WorkKind};
use crate::graph::{Placement as Prefer, Task};

/// Where a task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Registry index of the executor; `None` for a gate.
    pub executor: Option<usize>,
    /// The work it needs; `None` for a gate.
    pub work: Option<WorkKind>,
    /// Why this executor.
    pub by: PlacedBy,
}

/// Why a task was placed where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacedBy {
    /// An approval gate: no executor.
    Gate,
    /// No placement setting: the first executor that runs this kind of work.
    Default,
    /// `target` named it.
    Target,
    /// `remote: true`: the first remote executor that fits.
    Remote,
    /// `prefer: remote`, and a remote executor fits.
    PreferredRemote,
    /// `prefer: remote`, but no remote executor fits: it runs locally.
    PreferRemoteFellBack {
        /// Whether any remote executor is registered at all.
        remote_configured: bool,
    },
    /// `prefer: remote`, but the remote executors that fit are unreachable: it runs locally.
    PreferRemoteUnreachable,
    /// `prefer: local`, and a local executor fits.
    PreferredLocal,
    /// `prefer: local`, but only a remote executor fits.
    PreferLocalFellBack,
    /// `sandbox`: the sandbox executor.
    Sandbox,
}

impl PlacedBy {
    /// Whether this placement is worth an event of its own (a setting was involved).
    pub fn is_notable(self) -> bool {
        !matches!(self, PlacedBy::Gate | PlacedBy::Default | PlacedBy::Sandbox)
    }
}

impl fmt::Display for PlacedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlacedBy::Gate => "approval gate: waits, runs on no executor",
            PlacedBy::Default => "the first registered executor for this kind of work",
            PlacedBy::Target => "`target` names it",
            PlacedBy::Remote => "`remote: true`: a remote executor",
            PlacedBy::PreferredRemote => "`prefer: remote`: a remote executor is available",
            PlacedBy::PreferRemoteFellBack {
                remote_configured: false,
            } => "`prefer: remote`, but no remote executor is configured: runs locally",
            PlacedBy::PreferRemoteFellBack {
                remote_configured: true,
            } => "`prefer: remote`, but no remote executor fits this task: runs locally",
            PlacedBy::PreferRemoteUnreachable => {
                "`prefer: remote`, but the remote executor is unreachable: runs locally"
            }
            PlacedBy::PreferredLocal => "`prefer: local`",
            PlacedBy::PreferLocalFellBack => {
                "`prefer: local`, but no local executor fits this task: runs remotely"
            }
            PlacedBy::Sandbox => "`sandbox`: namespaces and cgroups on this machine",
        })
    }
}

/// Why a task cannot be placed (it is `errored` without running).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// `target` names no registered executor.
    #[error("unknown target `{target}`; registered executors: {}", registered.join(", "))]
    UnknownTarget {
        /// The name given.
        target: String,
        /// The registered names.
        registered: Vec<String>,
    },
    /// The `target` executor does not run this kind of work.
    #[error("target `{target}` does not run {work} tasks (it runs: {})", runs.join(", "))]
    TargetCannotRun {
        /// The executor.
        target: String,
        /// The work the task needs.
        work: WorkKind,
        /// What it runs.
        runs: Vec<String>,
    },
    /// `remote: true` with a `target` that is not remote.
    #[error("the task sets `remote: true`, but its target `{target}` is not a remote executor")]
    TargetNotRemote {
        /// The executor.
        target: String,
    },
    /// `remote: true`, and no remote executor is registered.
    #[error(
        "the task sets `remote: true`, but no remote executor is configured: register one \
         with `sykli run --remote grpc://HOST:PORT` (or SYKLI_REMOTE, or `executor` in the \
         [remote] table of sykli.toml; in code `RunBuilder::executor(ExecutorEntry::remote(..))`), \
         or drop `remote: true` (or use `prefer: remote`) to run it here"
    )]
    NoRemoteExecutor,
    /// No registered executor runs this kind of work (e.g. containers without an engine).
    #[error("{}", no_executor_message(*work, image.as_deref(), registered))]
    NoExecutorFor {
        /// The work.
        work: WorkKind,
        /// The image, for container work.
        image: Option<String>,
        /// Whether only remote ones were considered.
        registered: Vec<String>,
    },
    /// No candidate carries every `requires` label.
    #[error(
        "no executor carries the label{} the task requires: {} (closest: `{executor}`, which carries {})",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        carried.join(", ")
    )]
    MissingLabels {
        /// The labels the closest candidate lacks.
        missing: Vec<String>,
        /// The closest candidate.
        executor: String,
        /// What it carries.
        carried: Vec<String>,
    },
    /// A native task whose function this process does not have, and no command.
    #[error("no native function `{name}` is registered (registered: {})", if registered.is_empty() { "none".to_owned() } else { registered.join(", ") })]
    NoNativeFunction {
        /// The function.
        name: String,
        /// The registered functions.
        registered: Vec<String>,
    },
    /// A sandboxed task, and no sandbox executor is registered.
    #[error(
        "the task sets `sandbox`, but no sandbox executor is registered (the sandbox runs on \
         Linux only; registered executors: {})",
        registered.join(", ")
    )]
    NoSandboxExecutor {
        /// The registered names.
        registered: Vec<String>,
    },
    /// A sandboxed task whose `target` is a local executor that does not sandbox.
    #[error("the task sets `sandbox`, but its target `{target}` is not a sandbox executor")]
    TargetNotSandbox {
        /// The executor.
        target: String,
    },
    /// A review task: nothing local runs it.
    #[error("review tasks (kind \"review\") cannot run on the local runtime")]
    Review,
    /// Nothing to run.
    #[error("task has no command, native function or gate")]
    NoAction,
}

fn no_executor_message(work: WorkKind, image: Option<&str>, registered: &[String]) -> String {
    let list = registered.join(", ");
    match (work, image) {
        (WorkKind::Container, Some(image)) => format!(
            "task needs container image `{image}`, but no container executor is configured \
             (registered executors: {list})"
        ),
        _ => format!("no registered executor runs {work} tasks (registered executors: {list})"),
    }
}

/// The work `task` needs, or why it has none. `native` is this process's functions.
pub fn work_of(task: &Task, native: &NativeRegistry) -> Result<Option<WorkKind>, PlaceError> {
    if task.gate.is_some() {
        return Ok(None);
    }
    if let Some(f) = &task.native {
        // In-process when this process has the function; otherwise (e.g. `sykli run` on a
        // graph a pipeline binary emitted) its `command` runs the function in that binary.
        if native.get(f).is_some() {
            return Ok(Some(WorkKind::Native));
        }
        if task.command.is_none() {
            return Err(PlaceError::NoNativeFunction {
                name: f.clone(),
                registered: native.names().into_iter().map(str::to_owned).collect(),
            });
        }
    }
    if task.command.is_some() {
        return Ok(Some(if task.container.is_some() {
            WorkKind::Container
        } else {
            WorkKind::Command
        }));
    }
    if task.kind.as_deref() == Some("review") {
        return Err(PlaceError::Review);
    }
    Err(PlaceError::NoAction)
}

/// Places `task` on one of `registry`'s executors (rules in the module docs).
pub fn place(
    task: &Task,
    registry: &ExecutorRegistry,
    native: &NativeRegistry,
) -> Result<Placement, PlaceError> {
    let Some(work) = work_of(task, native)? else {
        return Ok(Placement {
            executor: None,
            work: None,
            by: PlacedBy::Gate,
        });
    };
    let placed = |i: usize, by| Placement {
        executor: Some(i),
        work: Some(work),
        by,
    };
    let entries = registry.entries();
    // `remote: true` with a target no executor of the run is named after: the target is a
    // plugin of the remote worker (its actions carry `sykli-target=TARGET`).
    let remote_plugin = task.remote
        && task
            .target
            .as_ref()
            .is_some_and(|t| registry.index_of(t).is_none());
    if let Some(target) = task.target.as_ref().filter(|_| !remote_plugin) {
        let Some(i) = registry.index_of(target) else {
            return Err(PlaceError::UnknownTarget {
                target: target.clone(),
                registered: names(registry),
            });
        };
        let e = &entries[i];
        if !e.runs(work) {
            return Err(PlaceError::TargetCannotRun {
                target: target.clone(),
                work,
                runs: e.kinds().iter().map(|k| k.to_string()).collect(),
            });
        }
        if task.remote && !e.is_remote() {
            return Err(PlaceError::TargetNotRemote {
                target: target.clone(),
            });
        }
        if task.sandbox.is_some() && !e.is_remote() && !e.labels().contains(SANDBOX_LABEL) {
            return Err(PlaceError::TargetNotSandbox {
                target: target.clone(),
            });
        }
        check_labels(task, std::iter::once((i, e)))?;
        return Ok(placed(i, PlacedBy::Target));
    }
    let sandboxed = task.sandbox.is_some();
    let fits = |remote: bool| {
        entries.iter().enumerate().filter(move |(_, e)| {
            e.runs(work)
                && e.is_remote() == remote
                && (remote || e.labels().contains(SANDBOX_LABEL) == sandboxed)
        })
    };
    if task.remote {
        if !registry.has_remote() {
            return Err(PlaceError::NoRemoteExecutor);
        }
        if fits(true).next().is_none() {
            return Err(no_executor(task, work, registry));
        }
        let i = check_labels(task, fits(true))?;
        return Ok(placed(i, PlacedBy::Remote));
    }
    let remote_first = task.prefer == Some(Prefer::Remote);
    // Where the task may run either way, an unreachable remote executor is no candidate.
    let reachable = |(_, e): &(usize, &ExecutorEntry)| e.unreachable_reason().is_none();
    let ordered = fits(remote_first)
        .filter(reachable)
        .chain(fits(!remote_first).filter(reachable));
    if fits(true).next().is_none() && fits(false).next().is_none() {
        if sandboxed {
            return Err(PlaceError::NoSandboxExecutor {
                registered: names(registry),
            });
        }
        return Err(no_executor(task, work, registry));
    }
    let i = check_labels(task, ordered)?;
    let remote = entries[i].is_remote();
    let by = match (task.prefer, remote) {
        (None, false) if sandboxed => PlacedBy::Sandbox,
        (None, _) => PlacedBy::Default,
        (Some(Prefer::Remote), true) => PlacedBy::PreferredRemote,
        (Some(Prefer::Remote), false)
            if fits(true).next().is_some()
                && fits(true).all(|(_, e)| e.unreachable_reason().is_some()) =>
        {
            PlacedBy::PreferRemoteUnreachable
        }
        (Some(Prefer::Remote), false) => PlacedBy::PreferRemoteFellBack {
            remote_configured: registry.has_remote(),
        },
        (Some(Prefer::Local), false) => PlacedBy::PreferredLocal,
        (Some(Prefer::Local), true) => PlacedBy::PreferLocalFellBack,
    };
    Ok(placed(i, by))
}

fn names(registry: &ExecutorRegistry) -> Vec<String> {
    registry.names().into_iter().map(str::to_owned).collect()
}

fn no_executor(task: &Task, work: WorkKind, registry: &ExecutorRegistry) -> PlaceError {
    PlaceError::NoExecutorFor {
        work,
        image: task.container.clone(),
        registered: names(registry),
    }
}

/// The first candidate carrying every `requires` label, or the labels the closest one lacks.
fn check_labels<'a>(
    task: &Task,
    candidates: impl Iterator<Item = (usize, &'a ExecutorEntry)>,
) -> Result<usize, PlaceError> {
    let mut closest: Option<(usize, &ExecutorEntry, Vec<String>)> = None;
    for (i, e) in candidates {
        let missing: Vec<String> = task
            .requires
            .iter()
            .filter(|l| !e.labels().contains(l.as_str()))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(i);
        }
        if closest.as_ref().is_none_or(|c| missing.len() < c.2.len()) {
            closest = Some((i, e, missing));
        }
    }
    match closest {
        Some((_, e, missing)) => Err(PlaceError::MissingLabels {
            missing,
            executor: e.name().to_owned(),
            carried: e.labels().iter().cloned().collect(),
        }),
        // Callers pass at least one candidate.
        None => Err(PlaceError::NoAction),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::exec::process::ProcessExecutor;
    use crate::exec::{ExecIo, ExecOutcome, ExecRequest, Executor};

    struct Named(&'static str);
    impl Executor for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn execute<'a>(
            &'a self,
            _: &'a ExecRequest,
            _: ExecIo,
        ) -> futures::future::BoxFuture<'a, ExecOutcome> {
            Box::pin(async { ExecOutcome::Exited { code: 0 } })
        }
    }

    fn local_only() -> ExecutorRegistry {
        let mut r = ExecutorRegistry::new();
        r.register(ExecutorEntry::local(
            Arc::new(ProcessExecutor::new()),
            &[WorkKind::Command],
            Vec::<String>::new(),
        ))
        .unwrap();
        r.register(ExecutorEntry::local(
            Arc::new(Named("docker")),
            &[WorkKind::Container],
            ["container"],
        ))
        .unwrap();
        r
    }

    fn with_remote() -> ExecutorRegistry {
        let mut r = local_only();
        r.register(ExecutorEntry::remote(
            Arc::new(Named("farm")),
            &[WorkKind::Command, WorkKind::Container],
            ["gpu", "linux"],
        ))
        .unwrap();
        r
    }

    fn task(json: &str) -> Task {
        serde_json::from_str(json).unwrap()
    }

    fn on(r: &ExecutorRegistry, t: &str) -> Result<(String, PlacedBy), PlaceError> {
        let p = place(&task(t), r, &NativeRegistry::new())?;
        Ok((r.entry(p.executor.unwrap()).name().to_owned(), p.by))
    }

    #[test]
    fn an_unreachable_remote_is_never_preferred_but_remote_tasks_still_go_there() {
        let mut r = local_only();
        r.register(
            ExecutorEntry::remote(Arc::new(Named("farm")), &[WorkKind::Command], ["linux"])
                .unreachable("connection refused"),
        )
        .unwrap();
        let (name, by) = on(&r, r#"{"name": "t", "command": "x", "prefer": "remote"}"#).unwrap();
        assert_eq!(
            (name.as_str(), by),
            ("process", PlacedBy::PreferRemoteUnreachable)
        );
        assert!(by.to_string().contains("unreachable: runs locally"), "{by}");
        let (name, by) = on(&r, r#"{"name": "t", "command": "x", "remote": true}"#).unwrap();
        assert_eq!((name.as_str(), by), ("farm", PlacedBy::Remote));
    }

    #[test]
    fn remote_without_a_remote_executor_is_an_error_that_says_how_to_configure_one() {
        let e = on(
            &local_only(),
            r#"{"name": "t", "command": "x", "remote": true}"#,
        )
        .unwrap_err();
        assert_eq!(e, PlaceError::NoRemoteExecutor);
        assert!(
            e.to_string()
                .contains("no remote executor is configured: register one")
        );
        let ok = on(
            &with_remote(),
            r#"{"name": "t", "command": "x", "remote": true}"#,
        );
        assert_eq!(ok.unwrap(), ("farm".into(), PlacedBy::Remote));
    }

    #[test]
    fn prefer_remote_falls_back_locally_and_says_so() {
        let t = r#"{"name": "t", "command": "x", "prefer": "remote"}"#;
        assert_eq!(
            on(&local_only(), t).unwrap(),
            (
                "process".into(),
                PlacedBy::PreferRemoteFellBack {
                    remote_configured: false
                }
            )
        );
        assert_eq!(
            on(&with_remote(), t).unwrap(),
            ("farm".into(), PlacedBy::PreferredRemote)
        );
        let by = on(&local_only(), t).unwrap().1;
        assert!(by.to_string().contains("runs locally"), "{by}");
    }

    #[test]
    fn requires_picks_an_executor_carrying_the_labels_or_names_the_missing_ones() {
        let t = r#"{"name": "t", "command": "x", "requires": ["gpu", "linux"]}"#;
        assert_eq!(on(&with_remote(), t).unwrap().0, "farm");
        let e = on(&local_only(), t).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("the label the task requires: gpu"), "{msg}");
        assert!(msg.contains("closest: `process`"), "{msg}");
    }

    #[test]
    fn a_remote_task_may_target_a_plugin_of_the_worker() {
        let mut r = ExecutorRegistry::new();
        r.register(ExecutorEntry::local(
            Arc::new(Named("process")),
            &[WorkKind::Command],
            Vec::<String>::new(),
        ))
        .unwrap();
        let t = task(r#"{"name": "t", "command": "x", "target": "spawn", "remote": true}"#);
        let e = place(&t, &r, &NativeRegistry::new()).unwrap_err();
        assert!(matches!(e, PlaceError::NoRemoteExecutor), "{e}");
        r.register(ExecutorEntry::remote(
            Arc::new(Named("remote")),
            &[WorkKind::Command],
            Vec::<String>::new(),
        ))
        .unwrap();
        let p = place(&t, &r, &NativeRegistry::new()).unwrap();
        assert_eq!(p.executor, Some(1));
    }

    #[test]
    fn target_picks_by_name_and_unknown_targets_list_the_registered_ones() {
        let t = r#"{"name": "t", "command": "x", "container": "busybox", "target": "docker"}"#;
        assert_eq!(
            on(&local_only(), t).unwrap(),
            ("docker".into(), PlacedBy::Target)
        );
        let e = on(
            &local_only(),
            r#"{"name": "t", "command": "x", "target": "nope"}"#,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "unknown target `nope`; registered executors: process, docker"
        );
        let e = on(
            &local_only(),
            r#"{"name": "t", "command": "x", "target": "docker"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not run command tasks"), "{e}");
    }

    #[test]
    fn containers_without_an_engine_name_the_image() {
        let mut r = ExecutorRegistry::new();
        r.register(ExecutorEntry::local(
            Arc::new(ProcessExecutor::new()),
            &[WorkKind::Command],
            Vec::<String>::new(),
        ))
        .unwrap();
        let e = on(
            &r,
            r#"{"name": "t", "command": "x", "container": "alpine:3"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no container executor is configured"), "{e}");
        assert!(e.contains("`alpine:3`"), "{e}");
    }

    #[test]
    fn sandboxed_tasks_go_to_the_sandbox_executor_and_others_never_do() {
        let mut r = local_only();
        r.register(ExecutorEntry::local(
            Arc::new(Named("sandbox")),
            &[WorkKind::Command],
            [SANDBOX_LABEL],
        ))
        .unwrap();
        let sandboxed = r#"{"name": "t", "command": "x", "sandbox": true}"#;
        assert_eq!(
            on(&r, sandboxed).unwrap(),
            ("sandbox".into(), PlacedBy::Sandbox)
        );
        assert_eq!(
            on(&r, r#"{"name": "t", "command": "x"}"#).unwrap(),
            ("process".into(), PlacedBy::Default)
        );
        let e = on(
            &r,
            r#"{"name": "t", "command": "x", "sandbox": true, "target": "process"}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("`process` is not a sandbox executor"),
            "{e}"
        );
        let e = on(&local_only(), sandboxed).unwrap_err().to_string();
        assert!(e.contains("no sandbox executor is registered"), "{e}");
        // Workers sandbox every action: a sandboxed task may go remote.
        let t = r#"{"name": "t", "command": "x", "sandbox": true, "remote": true}"#;
        assert_eq!(on(&with_remote(), t).unwrap().0, "farm");
    }

    #[test]
    fn native_with_a_command_runs_the_command_when_the_function_is_not_here() {
        let t = task(r#"{"name": "t", "native": "f", "command": "ci --sykli-exec t"}"#);
        let mut native = NativeRegistry::new();
        assert_eq!(work_of(&t, &native), Ok(Some(WorkKind::Command)));
        native.register("f", |_ctx| async { Ok(()) });
        assert_eq!(work_of(&t, &native), Ok(Some(WorkKind::Native)));
    }
}
