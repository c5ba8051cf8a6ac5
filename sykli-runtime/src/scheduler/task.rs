//! One task from start to final status: workdir, secrets, `task_inputs`, gate, cache,
//! attempts with retries and backoff, success criteria, outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::cache_hook::{CacheLookup, CacheQuery};
use super::gate;
use super::stack::Stacked;
use crate::TaskStatus;
use crate::events::{Event, EventSink, TaskReport};
use crate::exec::{
    Action, BackgroundSpec, ContainerMount, ContainerSpec, ExecIo, ExecOutcome, ExecRequest,
    Executed, MountSource, OperationJournal, OutputSink, OutputStream, ServiceSpec, WorkKind,
};
use crate::graph::{MountKind, Resource, SuccessCriterion, Task, ValidGraph};
use crate::logs::{TaskLog, log_file_name};
use crate::paths;
use crate::plan::Plan;
use crate::redact::SecretSet;

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A finished task's outputs: name -> absolute path.
pub(super) type Outputs = Arc<BTreeMap<String, PathBuf>>;

/// What every task of a run shares.
pub(super) struct Shared {
    pub graph: Arc<ValidGraph>,
    /// The plan: placement and decisions of every task.
    pub plan: Arc<Plan>,
    /// The executors with the run's layers around them, by registry index.
    pub executors: Vec<Stacked>,
    /// Every secret value known so far: environment secrets from the start, file secrets
    /// once their task has read them; masked in the output of every task started afterwards.
    pub mask: Mutex<Arc<SecretSet>>,
    pub events: Arc<dyn EventSink>,
    pub log_dir: PathBuf,
    pub project_root: PathBuf,
    pub run_id: String,
    pub kill_grace: Duration,
    pub default_timeout: Option<Duration>,
    pub retry_backoff: Duration,
    pub cancel: CancellationToken,
    /// Tokens of single tasks (children of `cancel`).
    pub task_cancels: super::TaskCancels,
    /// Outputs (name -> absolute path) of tasks that succeeded, by task index.
    pub outputs: Mutex<Vec<Option<Outputs>>>,
    /// One prompt gate asks at a time.
    pub prompt_lock: tokio::sync::Mutex<()>,
    /// The run's state directory (gate decisions live under it).
    pub state_dir: PathBuf,
    /// For a resumed run, by task: the attempt that failed and when the next is due (ms
    /// since the epoch), for tasks that were waiting to retry.
    pub retry: Vec<Option<(u32, u64)>>,
    /// For a resumed run, by task: when an open gate opened (ms since the epoch); its
    /// timeout counts from then.
    pub gate_opened: Vec<Option<u64>>,
    /// For a resumed run, by task: the remote operation it was running, taken by its first
    /// attempt to re-attach to.
    pub attached: Mutex<Vec<Option<String>>>,
    /// By task: when the retry backoff it is waiting out ends (ms since the epoch), while
    /// it waits. The dispatcher parks a run whose tasks only wait (`park`).
    pub backoff_until: Mutex<Vec<Option<u64>>>,
    /// For a resumed run, by task: the last attempt an earlier process started without
    /// journalling its end.
    pub started_before: Vec<Option<u32>>,
    /// Notified when a task starts or stops waiting out a backoff.
    pub waits_changed: tokio::sync::Notify,
}

impl Shared {
    /// Records that task `i` waits out a backoff until `due_ms` (or no longer, `None`).
    fn set_backoff(&self, i: usize, due_ms: Option<u64>) {
        self.backoff_until.lock().unwrap_or_else(|p| p.into_inner())[i] = due_ms;
        self.waits_changed.notify_one();
    }
}

/// A task's final report, back to the dispatcher.
pub(super) struct TaskDone {
    pub index: usize,
    pub report: TaskReport,
}

/// How a task ended, before timing and masking are added.
struct End {
    status: TaskStatus,
    exit_code: Option<i32>,
    attempts: u32,
    message: Option<String>,
}

impl End {
    fn errored(message: impl Into<String>) -> Self {
        End {
            status: TaskStatus::Errored,
            exit_code: None,
            attempts: 0,
            message: Some(message.into()),
        }
    }
}

/// Runs task `i` to its final status.
pub(super) async fn run_task(shared: Arc<Shared>, i: usize) -> TaskDone {
    let started = Instant::now();
    let task = shared.graph.task(i);
    let mut mask = shared
        .mask
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let end = drive(&shared, i, task, &mut mask).await;
    let report = TaskReport {
        task: task.name.clone(),
        status: end.status,
        exit_code: end.exit_code,
        duration_ms: started.elapsed().as_millis() as u64,
        attempts: end.attempts,
        message: end.message.map(|m| mask.redact_str(&m)),
    };
    TaskDone { index: i, report }
}

async fn drive(shared: &Shared, i: usize, task: &Task, mask: &mut Arc<SecretSet>) -> End {
    let root = &shared.project_root;

    // What runs it: the plan decided.
    let Some(placement) = shared.plan.task(i).placement.as_ref() else {
        return End::errored("internal error: the plan placed this task nowhere");
    };
    let (Some(executor), Some(work)) = (placement.executor, placement.work) else {
        shared.events.emit(&Event::TaskStarted {
            task: task.name.clone(),
            attempt: 1,
            executor: "gate".to_owned(),
        });
        let Some(g) = &task.gate else {
            return End::errored("internal error: the plan made a gate of a task without one");
        };
        let (status, message) = gate::wait(shared, i, task, g).await;
        if status.is_success() {
            record_outputs(shared, i, BTreeMap::new());
        }
        return End {
            status,
            exit_code: None,
            attempts: 1,
            message,
        };
    };
    let stack = &shared.executors[executor];
    // Taken once: the key a result is stored under is the one it was looked up under.
    let executor_identity = stack.code_identity();
    let action = match (work, &task.native, &task.command) {
        (WorkKind::Native, Some(f), _) => Action::Native(f.clone()),
        (WorkKind::Command | WorkKind::Container, _, Some(c)) => Action::Shell(c.clone()),
        _ => return End::errored("internal error: the plan's work does not match the task"),
    };
    if placement.by.is_notable() {
        shared.events.emit(&Event::TaskPlaced {
            task: task.name.clone(),
            executor: stack.name().to_owned(),
            reason: placement.by.to_string(),
        });
    }

    // Where.
    let container = match work {
        WorkKind::Container => match container_spec(shared, task) {
            Ok(c) => Some(c),
            Err(e) => return End::errored(e),
        },
        _ => None,
    };
    let workdir = match (&task.workdir, &container) {
        (Some(w), None) => match paths::contained(root, Path::new(w)) {
            Ok(p) => p,
            Err(e) => return End::errored(format!("workdir: {e}")),
        },
        _ => root.clone(),
    };

    // Secrets, resolved now; their values join the mask.
    let secrets = match crate::secrets::resolve(task, root).await {
        Ok(s) => s,
        Err(e) => return End::errored(e.to_string()),
    };
    if !secrets.is_empty() {
        let mut run_mask = shared.mask.lock().unwrap_or_else(|p| p.into_inner());
        *run_mask = Arc::new(run_mask.with(secrets.iter().map(|(_, s)| s.expose().as_bytes())));
        *mask = run_mask.clone();
    }
    let log = Arc::new(TaskLog::new(
        task.name.clone(),
        shared.log_dir.join(log_file_name(&task.name)),
        mask.clone(),
        shared.events.clone(),
    ));

    // Inputs from other tasks.
    if let Err(e) = copy_task_inputs(shared, task, &workdir).await {
        return End::errored(e);
    }

    // Environment: task env, capabilities, secrets.
    let mut env = task_env(&shared.graph, task);
    for (name, value) in &secrets {
        env.insert(name.clone(), value.expose().to_owned());
    }

    // Cache, a layer of the stack (never for background tasks: their command is still
    // running when they pass).
    if task.background.is_none() {
        let query = CacheQuery {
            task,
            project_root: root,
            workdir: &workdir,
            env: &env,
            log_path: log.path(),
            executor_identity: executor_identity.as_deref(),
        };
        match stack.lookup(query).await {
            Ok(CacheLookup::Hit(hit)) => {
                if let Some(bytes) = &hit.log {
                    log.write(OutputStream::Stdout, bytes);
                }
                if let Err(e) = log.finish() {
                    return End::errored(e.to_string());
                }
                record_outputs(shared, i, hit.outputs);
                // Started by an earlier process of this run (so its lookup then missed) and
                // now in the cache: the result it stored before the process was killed.
                // An uninterrupted run would have reported it passed.
                if let Some(attempt) = shared.started_before[i] {
                    return End {
                        status: TaskStatus::Passed,
                        exit_code: Some(expected_exit(task)),
                        attempts: attempt,
                        message: None,
                    };
                }
                return End {
                    status: TaskStatus::Cached,
                    exit_code: None,
                    attempts: 0,
                    message: hit.message,
                };
            }
            Ok(CacheLookup::Miss { reason }) => {
                if let Some(reason) = reason {
                    shared.events.emit(&Event::TaskCacheMiss {
                        task: task.name.clone(),
                        reason,
                    });
                }
            }
            Err(e) => log.write(
                OutputStream::Stderr,
                format!("sykli: cache lookup failed: {e}\n").as_bytes(),
            ),
        }
    }

    let background = task.background.as_ref().map(|b| BackgroundSpec {
        ready: b.ready.clone(),
        ready_timeout: Duration::from_secs(b.ready_timeout),
    });
    // A background task runs until the run ends: the run's default timeout is not its own.
    let timeout = task
        .timeout
        .map(Duration::from_secs)
        .or(shared.default_timeout.filter(|_| background.is_none()))
        .filter(|d| !d.is_zero());
    let req = ExecRequest {
        task: task.name.clone(),
        action,
        env,
        inherit_env: true,
        workdir: workdir.clone(),
        container,
        timeout,
        kill_grace: shared.kill_grace,
        run_id: shared.run_id.clone(),
        background,
        sandbox: task
            .sandbox
            .as_ref()
            .map(|s| crate::exec::sandbox::SandboxRequest::for_task(task, s, root)),
    };
    let executor_name = stack.name().to_owned();

    let max_attempts = task.retry.unwrap_or(0).saturating_add(1);
    let mut end;
    let mut attempt = 1;
    // A resumed run continues a retry backoff where the journal left it.
    if let Some((failed, due_ms)) = shared.retry[i] {
        attempt = failed.saturating_add(1).min(max_attempts);
        let wait = Duration::from_millis(due_ms.saturating_sub(crate::events::now_ms()));
        shared.set_backoff(i, Some(due_ms));
        let _clear = ClearBackoff(shared, i);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.cancel.cancelled() => {
                return End {
                    status: TaskStatus::Errored,
                    exit_code: None,
                    attempts: failed,
                    message: Some("cancelled: the run was interrupted".into()),
                };
            }
        }
    }
    loop {
        log.begin_attempt(attempt);
        shared.events.emit(&Event::TaskStarted {
            task: task.name.clone(),
            attempt,
            executor: executor_name.clone(),
        });
        // Only the first attempt of this process re-attaches to a journalled operation.
        let reattach = shared.attached.lock().unwrap_or_else(|p| p.into_inner())[i].take();
        let io = ExecIo {
            attempt,
            output: log.clone(),
            // The task's own token, a child of the run's: `sykli cancel RUN TASK` stops it.
            cancel: shared.task_cancels.token(&task.name, &shared.cancel),
            operations: Some(Arc::new(TaskOperations {
                events: shared.events.clone(),
                task: task.name.clone(),
                reattach: Mutex::new(reattach),
            })),
        };
        let Executed { outcome, recorded } = stack.execute(&req, io).await;
        let cancelled_alone =
            shared.task_cancels.is_cancelled(&task.name) && !shared.cancel.is_cancelled();
        shared.task_cancels.done(&task.name);
        let mut verdict = judge(&outcome, task, &workdir, timeout);
        if cancelled_alone && matches!(outcome, ExecOutcome::Cancelled) {
            verdict = Err((
                TaskStatus::Errored,
                None,
                "cancelled: the task was cancelled on request (sykli cancel)".into(),
            ));
        }
        end = match verdict {
            Ok(code) => match collect_outputs(task, &workdir, recorded) {
                Ok(outputs) => {
                    if stack.records() && task.background.is_none() && log.flush().is_ok() {
                        let query = CacheQuery {
                            task,
                            project_root: root,
                            workdir: &workdir,
                            env: &req.env,
                            log_path: log.path(),
                            executor_identity: executor_identity.as_deref(),
                        };
                        if let Err(e) = stack.passed(query, &outputs).await {
                            log.write(
                                OutputStream::Stderr,
                                format!("sykli: cache store failed: {e}\n").as_bytes(),
                            );
                        }
                    }
                    record_outputs(shared, i, outputs);
                    End {
                        status: TaskStatus::Passed,
                        exit_code: code,
                        attempts: attempt,
                        message: None,
                    }
                }
                Err(msg) => End {
                    status: TaskStatus::Failed,
                    exit_code: code,
                    attempts: attempt,
                    message: Some(msg),
                },
            },
            Err((status, code, msg)) => End {
                status,
                exit_code: code,
                attempts: attempt,
                message: Some(msg),
            },
        };
        let retryable = end.status != TaskStatus::Passed
            && !cancelled_alone
            && !outcome.was_cancelled()
            && !shared.cancel.is_cancelled();
        if !retryable || attempt >= max_attempts {
            break;
        }
        let delay = backoff(shared.retry_backoff, attempt);
        shared.events.emit(&Event::TaskRetrying {
            task: task.name.clone(),
            attempt,
            delay_ms: delay.as_millis() as u64,
            reason: mask.redact_str(end.message.as_deref().unwrap_or("failed")),
        });
        shared.set_backoff(i, Some(crate::events::now_ms() + delay.as_millis() as u64));
        let waited = {
            let _clear = ClearBackoff(shared, i);
            tokio::select! {
                () = tokio::time::sleep(delay) => true,
                () = shared.cancel.cancelled() => false,
            }
        };
        if !waited {
            break;
        }
        attempt += 1;
    }
    if let Err(e) = log.finish() {
        if end.status == TaskStatus::Passed {
            end.status = TaskStatus::Errored;
        }
        end.message = Some(match end.message {
            Some(m) => format!("{m}; {e}"),
            None => e.to_string(),
        });
    }
    end
}

/// Clears a task's backoff when its wait ends (or is dropped: parked, cancelled).
struct ClearBackoff<'a>(&'a Shared, usize);

impl Drop for ClearBackoff<'_> {
    fn drop(&mut self) {
        self.0.set_backoff(self.1, None);
    }
}

/// A task attempt's [`OperationJournal`]: operations become journalled events.
struct TaskOperations {
    events: Arc<dyn EventSink>,
    task: String,
    reattach: Mutex<Option<String>>,
}

impl OperationJournal for TaskOperations {
    fn reattach(&self) -> Option<String> {
        self.reattach
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn attached(&self, operation: &str, reattached: bool) {
        self.events.emit(&Event::TaskAttached {
            task: self.task.clone(),
            operation: operation.to_owned(),
            reattached,
        });
    }

    fn reattach_failed(&self, operation: &str, reason: &str) {
        self.events.emit(&Event::TaskReattachFailed {
            task: self.task.clone(),
            operation: operation.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

/// Delay before the retry after attempt `attempt` (1-based): base, 2x base, 4x base, ...
fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(MAX_BACKOFF.max(base))
}

/// `Ok(exit code)` when the attempt passed, else the status, exit code and reason.
/// The exit code a task must end with to pass (its `exit_code` criterion, else 0).
fn expected_exit(task: &Task) -> i32 {
    task.success_criteria
        .iter()
        .find_map(|c| match c {
            SuccessCriterion::ExitCode { equals } => Some(*equals),
            _ => None,
        })
        .unwrap_or(0)
}

fn judge(
    outcome: &ExecOutcome,
    task: &Task,
    workdir: &Path,
    timeout: Option<Duration>,
) -> Result<Option<i32>, (TaskStatus, Option<i32>, String)> {
    let code = match outcome {
        ExecOutcome::Exited { code } => *code,
        ExecOutcome::TimedOut => {
            let after = timeout
                .map(|t| format!(" after {}", humantime::format_duration(t)))
                .unwrap_or_default();
            return Err((TaskStatus::Errored, None, format!("timed out{after}")));
        }
        ExecOutcome::Cancelled => {
            return Err((
                TaskStatus::Errored,
                None,
                "cancelled: the run was interrupted".into(),
            ));
        }
        ExecOutcome::Errored { stage, message } => {
            return Err((
                TaskStatus::Errored,
                None,
                format!("{message} (while {stage})"),
            ));
        }
    };
    let expected = expected_exit(task);
    if code != expected {
        let msg = if expected == 0 {
            format!("exited with code {code}")
        } else {
            format!("exited with code {code}, expected {expected}")
        };
        return Err((TaskStatus::Failed, Some(code), msg));
    }
    for c in &task.success_criteria {
        let (path, non_empty) = match c {
            SuccessCriterion::ExitCode { .. } => continue,
            SuccessCriterion::FileExists { path } => (path, false),
            SuccessCriterion::FileNonEmpty { path } => (path, true),
        };
        let fail = |m: String| Err((TaskStatus::Failed, Some(code), m));
        let abs = match paths::contained(workdir, Path::new(path)) {
            Ok(p) => p,
            Err(e) => return fail(format!("success criterion: {e}")),
        };
        match std::fs::metadata(&abs) {
            Err(_) => return fail(format!("success criterion failed: `{path}` does not exist")),
            Ok(m) if non_empty && m.is_file() && m.len() == 0 => {
                return fail(format!("success criterion failed: `{path}` is empty"));
            }
            Ok(m) if non_empty && m.is_dir() && dir_is_empty(&abs) => {
                return fail(format!(
                    "success criterion failed: directory `{path}` is empty"
                ));
            }
            Ok(_) => {}
        }
    }
    Ok(Some(code))
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).map_or(true, |mut d| d.next().is_none())
}

/// Declared outputs (which must exist, inside the workdir) plus those a native task recorded.
fn collect_outputs(
    task: &Task,
    workdir: &Path,
    recorded: BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    for (name, path) in &task.outputs {
        if recorded.contains_key(name) {
            continue;
        }
        let abs = paths::contained(workdir, Path::new(path))
            .map_err(|e| format!("output `{name}`: {e}"))?;
        if std::fs::symlink_metadata(&abs).is_err() {
            return Err(format!(
                "declared output `{name}` (`{path}`) was not produced"
            ));
        }
        out.insert(name.clone(), abs);
    }
    out.extend(recorded);
    Ok(out)
}

fn record_outputs(shared: &Shared, i: usize, outputs: BTreeMap<String, PathBuf>) {
    let mut all = shared.outputs.lock().unwrap_or_else(|p| p.into_inner());
    all[i] = Some(Arc::new(outputs));
}

/// Copies every `task_inputs` entry into the workdir.
async fn copy_task_inputs(shared: &Shared, task: &Task, workdir: &Path) -> Result<(), String> {
    for input in &task.task_inputs {
        let src = {
            let Some(p) = shared.graph.index_of(&input.from_task) else {
                return Err(format!("task input: unknown task `{}`", input.from_task));
            };
            let all = shared.outputs.lock().unwrap_or_else(|p| p.into_inner());
            match all[p].as_ref().and_then(|o| o.get(&input.output)) {
                Some(path) => path.clone(),
                None => {
                    return Err(format!(
                        "task input: `{}` has no output `{}` in this run",
                        input.from_task, input.output
                    ));
                }
            }
        };
        let dst_base = workdir.to_path_buf();
        let root = shared.project_root.clone();
        let dest = PathBuf::from(&input.dest);
        let res = tokio::task::spawn_blocking(move || {
            paths::copy_contained(&root, &src, &dst_base, &dest)
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "failed to copy output `{}` of `{}` to `{}`: {e}",
                    input.output, input.from_task, input.dest
                ));
            }
            Err(e) => return Err(format!("failed to copy task input: {e}")),
        }
    }
    Ok(())
}

/// `SYKLI_CAP_<NAME>`: uppercase, anything not alphanumeric becomes `_`.
pub(crate) fn capability_var(name: &str) -> String {
    let mut s = String::with_capacity(10 + name.len());
    s.push_str("SYKLI_CAP_");
    s.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    s
}

/// The value a capability's provider gives it, or "1".
/// The environment a task gets on top of the runtime's, secrets aside: its own `env` plus a
/// `SYKLI_CAP_<NAME>` for each capability it needs.
pub fn task_env(graph: &ValidGraph, task: &Task) -> BTreeMap<String, String> {
    let mut env = task.env.clone();
    for need in &task.needs {
        env.insert(capability_var(need), capability_value(graph, need));
    }
    env
}

fn capability_value(graph: &ValidGraph, name: &str) -> String {
    graph
        .graph()
        .tasks
        .iter()
        .flat_map(|t| &t.provides)
        .find(|p| p.name == name)
        .and_then(|p| p.value.clone())
        .unwrap_or_else(|| "1".to_owned())
}

/// The container settings of a task: image, workdir, mounts (resources resolved against the
/// project), services.
fn container_spec(shared: &Shared, task: &Task) -> Result<ContainerSpec, String> {
    let image = task.container.clone().unwrap_or_default();
    let mut mounts = Vec::with_capacity(task.mounts.len());
    for m in &task.mounts {
        let source = match (shared.graph.graph().resources.get(&m.resource), m.kind) {
            (Some(Resource::Directory { path, .. }), _) => MountSource::HostDir(
                paths::contained(&shared.project_root, Path::new(path))
                    .map_err(|e| format!("mount `{}`: {e}", m.resource))?,
            ),
            (Some(Resource::Cache { name }), _) => MountSource::Volume(name.clone()),
            (None, MountKind::Directory) => {
                let rel = m.resource.strip_prefix("src:").unwrap_or(&m.resource);
                MountSource::HostDir(
                    paths::contained(&shared.project_root, Path::new(rel))
                        .map_err(|e| format!("mount `{}`: {e}", m.resource))?,
                )
            }
            (None, MountKind::Cache) => MountSource::Volume(m.resource.clone()),
        };
        mounts.push(ContainerMount {
            source,
            target: m.path.clone(),
        });
    }
    Ok(ContainerSpec {
        image,
        workdir: task.workdir.clone(),
        mounts,
        services: task
            .services
            .iter()
            .map(|s| ServiceSpec {
                image: s.image.clone(),
                name: s.name.clone(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!(capability_var("db-url.v2"), "SYKLI_CAP_DB_URL_V2");
    }

    #[test]
    fn backoff_doubles() {
        let b = Duration::from_millis(10);
        assert_eq!(backoff(b, 1), b);
        assert_eq!(backoff(b, 2), b * 2);
        assert_eq!(backoff(b, 3), b * 4);
    }
}
