//! The dispatcher loop: the ready queue, slots, fail-fast, blocking, signals.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::RunError;
use super::config::{RunConfig, Signals};
use super::resume::{self, Replay};
use super::stack::Stacked;
use super::task::{Shared, TaskDone, run_task};
use crate::TaskStatus;
use crate::events::{Event, EventDispatcher, EventSink, Finished, RunSummary, TaskReport};
use crate::exec::ExecutorRegistry;
use crate::graph::ValidGraph;
use crate::plan::{Decision, Plan, PlanError};
use crate::redact::SecretSet;

/// How long a run only waits on gates before `park` parks it (a gate decided already
/// settles well within it).
const PARK_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether the running tasks `ids` only wait: each is a gate or waits out a retry backoff
/// with at least `at_least` left (`started`: any backoff still waiting counts, for the
/// check when the settle time is over).
fn only_waits(
    shared: &Shared,
    ids: &HashMap<tokio::task::Id, usize>,
    at_least: std::time::Duration,
    started: bool,
) -> bool {
    let backoff = shared
        .backoff_until
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let now = crate::events::now_ms();
    let min_due = now + at_least.as_millis() as u64;
    !ids.is_empty()
        && ids.values().all(|&i| {
            shared.graph.task(i).gate.is_some()
                || backoff[i].is_some_and(|due| started || due >= min_due)
        })
}

/// Sleeps until `at` (forever for `None`).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Plans `graph` ([`RunConfig::plan`]) and runs the plan with `config`, reporting every step
/// to `sink`, and returns the counts.
///
/// Task failures are statuses in the summary; `Err` means the run could not be carried out
/// (unknown filter name, unwritable state directory, signal handlers).
pub async fn run(
    graph: &ValidGraph,
    config: RunConfig,
    sink: Arc<dyn EventSink>,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let registry = config.registry();
    let plan = config.plan(graph, &registry).map_err(|e| match e {
        PlanError::UnknownFilter { name, suggestion } => {
            RunError::UnknownFilter { name, suggestion }
        }
    })?;
    run_plan(graph, plan, &registry, config, sink, started).await
}

/// Runs a plan made beforehand (to show it, or keep it) with
/// `config.plan(graph, &registry)`, on that same `registry`.
pub async fn run_planned(
    graph: &ValidGraph,
    plan: Plan,
    registry: &ExecutorRegistry,
    config: RunConfig,
    sink: Arc<dyn EventSink>,
) -> Result<RunSummary, RunError> {
    let registered = registry.names();
    if plan.len() != graph.len() || plan.executors() != registered.as_slice() {
        return Err(RunError::PlanMismatch {
            planned_on: plan.executors().to_vec(),
            registered: registered.into_iter().map(str::to_owned).collect(),
        });
    }
    run_plan(graph, plan, registry, config, sink, Instant::now()).await
}

/// Runs `plan` (made for `graph` on `registry`).
async fn run_plan(
    graph: &ValidGraph,
    plan: Plan,
    registry: &ExecutorRegistry,
    config: RunConfig,
    sink: Arc<dyn EventSink>,
    started: Instant,
) -> Result<RunSummary, RunError> {
    let selected: Vec<bool> = (0..graph.len()).map(|i| plan.selected(i)).collect();
    let log_dir = config.log_dir();
    std::fs::create_dir_all(&log_dir).map_err(|source| RunError::StateDir {
        path: log_dir.clone(),
        source,
    })?;
    let escalate = config.kill.clone();
    let signal_task = match config.signals {
        Signals::Standard => Some(spawn_signal_handler(
            config.cancel.clone(),
            escalate.clone(),
        )?),
        Signals::Noop => None,
    };
    let mask = SecretSet::new(
        graph
            .graph()
            .tasks
            .iter()
            .flat_map(crate::secrets::known_values),
    );
    let jobs = config.jobs.max(1);
    let n = graph.len();

    let digest = resume::plan_digest(graph, &plan);
    let (replay, next_seq, earlier_ms) = match &config.resume {
        Some(point) => {
            if let Some(journalled) = &point.plan_digest
                && *journalled != digest
            {
                return Err(RunError::PlanChanged {
                    run: point.run_id.clone(),
                    journalled: journalled.clone(),
                    now: digest,
                });
            }
            (
                Replay::from_point(graph, &selected, point),
                point.next_seq,
                point.active_ms,
            )
        }
        None => (Replay::none(n), 1, 0),
    };
    // The one ordered channel of the run: every event is numbered and stamped here.
    let events = Arc::new(EventDispatcher::new(
        config.run_id.clone(),
        next_seq,
        resume::cache_keys(graph, &plan),
        sink,
    ));
    let sink: Arc<dyn EventSink> = events.clone();

    sink.emit(&Event::RunStarted {
        run_id: config.run_id.clone(),
        tasks: (0..n)
            .filter(|&i| selected[i])
            .map(|i| graph.task(i).name.clone())
            .collect(),
        jobs,
        started_at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        plan_digest: Some(digest),
        resumed: config.resume.is_some(),
    });
    for (i, why) in &replay.rerun {
        sink.emit(&Event::TaskRerun {
            task: graph.task(*i).name.clone(),
            reason: why.clone(),
        });
    }

    let plan = Arc::new(plan);
    let shared = Arc::new(Shared {
        graph: Arc::new(graph.clone()),
        plan: plan.clone(),
        executors: Stacked::all(registry, config.cache.clone()),
        mask: std::sync::Mutex::new(Arc::new(mask)),
        events: sink.clone(),
        log_dir,
        project_root: config.project_root.clone(),
        run_id: config.run_id.clone(),
        kill_grace: config.kill_grace,
        default_timeout: config.default_timeout.filter(|d| !d.is_zero()),
        retry_backoff: config.retry_backoff,
        cancel: config.cancel.clone(),
        task_cancels: config.task_cancels.clone(),
        outputs: std::sync::Mutex::new(replay.outputs),
        prompt_lock: tokio::sync::Mutex::new(()),
        state_dir: config.state_dir.clone(),
        retry: replay.retry,
        gate_opened: replay.gate_opened,
        attached: Mutex::new(replay.attached),
        started_before: replay.started,
        backoff_until: Mutex::new(vec![None; n]),
        waits_changed: tokio::sync::Notify::new(),
    });

    let mut d = Dispatcher {
        graph,
        events: &events,
        replayed: replay.reports,
        selected: &selected,
        priority: priorities(graph, &config.history),
        pending: (0..n).map(|i| graph.deps(i).len()).collect(),
        status: vec![None; n],
        ready: BinaryHeap::new(),
        summary: RunSummary {
            run_id: config.run_id.clone(),
            passed: 0,
            cached: 0,
            failed: 0,
            errored: 0,
            blocked: 0,
            skipped: 0,
            duration_ms: 0,
            interrupted: false,
        },
        first_failure: None,
        stop_starting: false,
        keep_going: config.keep_going,
        plan: &plan,
    };

    // The roots, taken before any is settled: settling a task (a journalled one, when
    // resuming) releases its dependents itself, which must not be admitted twice.
    let roots: Vec<usize> = (0..n)
        .filter(|&i| selected[i] && d.pending[i] == 0)
        .collect();
    for i in roots {
        d.admit_now(i);
    }

    let mut running: JoinSet<TaskDone> = JoinSet::new();
    let mut ids: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut slots_used = 0usize;
    let cancelled = config.cancel.cancelled();
    let killed = escalate.cancelled();
    tokio::pin!(cancelled, killed);
    let mut kill_seen = false;
    // Parking: when only gates are left waiting for a moment, the run is recorded as
    // parked and stops here (`config.park`).
    let mut park_at: Option<tokio::time::Instant> = None;
    let mut parked = false;
    loop {
        if config.cancel.is_cancelled() {
            d.summary.interrupted = true;
            d.stop_starting = true;
        }
        while !d.stop_starting && slots_used < jobs {
            let Some((_, Reverse(i))) = d.ready.pop() else {
                break;
            };
            if graph.task(i).gate.is_none() {
                slots_used += 1;
            }
            let h = running.spawn(run_task(shared.clone(), i));
            ids.insert(h.id(), i);
        }
        if running.is_empty() {
            break;
        }
        // Waiting only: every running task is a gate or waits out a long backoff.
        let only_waiting = config.park
            && (d.ready.is_empty() || d.stop_starting)
            && !d.summary.interrupted
            && only_waits(&shared, &ids, config.park_backoff, false);
        park_at = match (only_waiting, park_at) {
            (true, None) => Some(tokio::time::Instant::now() + PARK_SETTLE),
            (true, at) => at,
            (false, _) => None,
        };
        tokio::select! {
            () = sleep_until(park_at), if park_at.is_some() => {
                // Still only waiting (a backoff may have ended meanwhile)?
                if only_waits(&shared, &ids, config.park_backoff, true) {
                    parked = true;
                    break;
                }
                park_at = None;
            }
            () = shared.waits_changed.notified() => {}
            joined = running.join_next_with_id() => {
                // Take every completion that is already in before refilling the slots.
                let mut next = joined;
                while let Some(j) = next {
                    let done = match j {
                        Ok((id, done)) => {
                            ids.remove(&id);
                            done
                        }
                        Err(e) => {
                            let Some(i) = ids.remove(&e.id()) else {
                                next = running.try_join_next_with_id();
                                continue;
                            };
                            TaskDone {
                                index: i,
                                report: TaskReport {
                                    task: graph.task(i).name.clone(),
                                    status: TaskStatus::Errored,
                                    exit_code: None,
                                    duration_ms: 0,
                                    attempts: 0,
                                    message: Some(format!("internal error: the task's runner stopped: {e}")),
                                },
                            }
                        }
                    };
                    if graph.task(done.index).gate.is_none() {
                        slots_used -= 1;
                    }
                    let extra = resume::finished(&shared, done.index, &done.report);
                    d.finish_with(done.index, done.report, extra);
                    next = running.try_join_next_with_id();
                }
            }
            () = &mut cancelled, if !d.summary.interrupted => {
                d.summary.interrupted = true;
                d.stop_starting = true;
            }
            () = &mut killed, if !kill_seen => {
                kill_seen = true;
                config.cancel.cancel();
            }
        }
    }
    if parked {
        // Only gates wait: they are dropped here and restarted by `--resume`, which reads
        // their decisions (`sykli gate approve|reject`).
        let mut waiting: Vec<String> = ids.values().map(|&i| graph.task(i).name.clone()).collect();
        waiting.sort();
        let wake_at_ms = {
            let backoff = shared
                .backoff_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            ids.values().filter_map(|&i| backoff[i]).min()
        };
        running.abort_all();
        while running.join_next().await.is_some() {}
        for e in &shared.executors {
            e.shutdown().await;
        }
        if let Some(t) = signal_task {
            t.abort();
        }
        sink.emit(&Event::RunParked {
            waiting: waiting.clone(),
            wake_at_ms,
        });
        return Err(RunError::Parked {
            run_id: config.run_id.clone(),
            waiting,
            wake_at_ms,
        });
    }
    // The run is over: background tasks stop now (a second Ctrl-C meanwhile cuts their grace
    // period short through the process executor's escalation token). Every executor of the
    // run is told, in registration order.
    for e in &shared.executors {
        e.shutdown().await;
    }
    if let Some(t) = signal_task {
        t.abort();
    }
    if config.cancel.is_cancelled() {
        d.summary.interrupted = true;
    }
    d.block_rest();
    let mut summary = d.summary;
    summary.duration_ms = earlier_ms + started.elapsed().as_millis() as u64;
    sink.emit(&Event::RunFinished(summary.clone()));
    Ok(summary)
}

struct Dispatcher<'a> {
    graph: &'a ValidGraph,
    events: &'a EventDispatcher,
    /// Final reports from the journal of a resumed run: settled without being reported
    /// again.
    replayed: Vec<Option<TaskReport>>,
    selected: &'a [bool],
    priority: Vec<u64>,
    pending: Vec<usize>,
    status: Vec<Option<TaskStatus>>,
    ready: BinaryHeap<(u64, Reverse<usize>)>,
    summary: RunSummary,
    first_failure: Option<usize>,
    stop_starting: bool,
    keep_going: bool,
    plan: &'a Plan,
}

impl Dispatcher<'_> {
    /// A task whose dependencies all succeeded: settles what the plan decided needs no
    /// execution (a false condition, an error) into a report, else queues the task.
    fn admit(&mut self, i: usize) -> Option<TaskReport> {
        if let Some(r) = &self.replayed[i] {
            return Some(r.clone());
        }
        match &self.plan.task(i).decision {
            Decision::Run => {
                self.ready.push((self.priority[i], Reverse(i)));
                None
            }
            Decision::Skip => {
                let expr = self.graph.task(i).condition_expr().unwrap_or_default();
                Some(self.report(
                    i,
                    TaskStatus::Skipped,
                    format!("condition `{expr}` is false"),
                ))
            }
            Decision::Error { message } => {
                Some(self.report(i, TaskStatus::Errored, message.clone()))
            }
            // Never admitted: a dependency does not succeed. Settled as the plan says.
            Decision::Blocked { dependency } => Some(self.report(
                i,
                TaskStatus::Blocked,
                format!(
                    "dependency `{}` did not succeed",
                    self.graph.task(*dependency).name
                ),
            )),
            Decision::NotSelected => None,
        }
    }

    /// Admits a task whose dependencies all succeeded, settling it at once if it needs no run.
    fn admit_now(&mut self, i: usize) {
        if let Some(r) = self.admit(i) {
            self.finish(i, r);
        }
    }

    /// A report for a status decided without running the task.
    fn report(&self, i: usize, status: TaskStatus, message: String) -> TaskReport {
        TaskReport {
            task: self.graph.task(i).name.clone(),
            status,
            exit_code: None,
            duration_ms: 0,
            attempts: 0,
            message: Some(message),
        }
    }

    /// Records a final status, reports it, and releases or blocks the dependents (with a
    /// work list, not recursion: a long chain must not grow the stack).
    fn finish(&mut self, i: usize, report: TaskReport) {
        self.finish_with(i, report, Finished::default());
    }

    /// [`Dispatcher::finish`] with what the task's envelope carries (outputs, log). A task
    /// whose report came from the journal is settled without being reported again.
    fn finish_with(&mut self, i: usize, report: TaskReport, extra: Finished) {
        let mut work = vec![(i, report, extra)];
        while let Some((i, mut report, extra)) = work.pop() {
            if self.status[i].is_some() {
                continue;
            }
            let announce = match self.replayed[i].take() {
                Some(r) => {
                    report = r;
                    false
                }
                None => true,
            };
            let status = report.status;
            self.status[i] = Some(status);
            match status {
                TaskStatus::Passed => self.summary.passed += 1,
                TaskStatus::Cached => self.summary.cached += 1,
                TaskStatus::Failed => self.summary.failed += 1,
                TaskStatus::Errored => self.summary.errored += 1,
                TaskStatus::Blocked => self.summary.blocked += 1,
                TaskStatus::Skipped => self.summary.skipped += 1,
            }
            if announce {
                self.events.emit_finished(report, extra);
            }
            if matches!(status, TaskStatus::Failed | TaskStatus::Errored) {
                if self.first_failure.is_none() {
                    self.first_failure = Some(i);
                }
                if !self.keep_going {
                    self.stop_starting = true;
                }
            }
            let graph = self.graph;
            if status.is_success() {
                for &dep in graph.dependents(i) {
                    if !self.selected[dep] {
                        continue;
                    }
                    self.pending[dep] -= 1;
                    if self.pending[dep] == 0
                        && self.status[dep].is_none()
                        && let Some(r) = self.admit(dep)
                    {
                        work.push((dep, r, Finished::default()));
                    }
                }
            } else {
                let name = &graph.task(i).name;
                let why = match status {
                    TaskStatus::Failed => format!("dependency `{name}` failed"),
                    TaskStatus::Errored => format!("dependency `{name}` errored"),
                    TaskStatus::Skipped => format!("dependency `{name}` was skipped"),
                    _ => format!("dependency `{name}` was blocked"),
                };
                for &dep in graph.dependents(i) {
                    if self.selected[dep] && self.status[dep].is_none() {
                        work.push((
                            dep,
                            self.report(dep, TaskStatus::Blocked, why.clone()),
                            Finished::default(),
                        ));
                    }
                }
            }
        }
    }

    /// Blocks every task that never got a status (fail-fast or interruption).
    fn block_rest(&mut self) {
        let why = if self.summary.interrupted {
            "not started: the run was interrupted".to_owned()
        } else if let Some(f) = self.first_failure {
            format!(
                "not started: `{}` failed and the run stops at the first failure (keep going to run the rest)",
                self.graph.task(f).name
            )
        } else {
            "not started".to_owned()
        };
        for i in 0..self.graph.len() {
            if self.selected[i] && self.status[i].is_none() {
                let r = self.report(i, TaskStatus::Blocked, why.clone());
                self.finish(i, r);
            }
        }
    }
}

/// Longest remaining path from each task to the end of the graph, each task weighted by its
/// earlier duration in milliseconds (unknown durations count as the mean of the known ones,
/// or 1 when none is known).
fn priorities(graph: &ValidGraph, history: &HashMap<String, std::time::Duration>) -> Vec<u64> {
    let n = graph.len();
    let known: Vec<u64> = (0..n)
        .filter_map(|i| history.get(&graph.task(i).name))
        .map(|d| (d.as_millis() as u64).max(1))
        .collect();
    let default = if known.is_empty() {
        1
    } else {
        (known.iter().sum::<u64>() / known.len() as u64).max(1)
    };
    let weight = |i: usize| {
        history
            .get(&graph.task(i).name)
            .map_or(default, |d| (d.as_millis() as u64).max(1))
    };
    let mut prio = vec![0u64; n];
    for &i in graph.topological_order().iter().rev() {
        let tail = graph
            .dependents(i)
            .iter()
            .map(|&d| prio[d])
            .max()
            .unwrap_or(0);
        prio[i] = weight(i).saturating_add(tail);
    }
    prio
}

fn spawn_signal_handler(
    cancel: CancellationToken,
    escalate: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if cancel.is_cancelled() {
                escalate.cancel();
                return;
            }
            cancel.cancel();
        }
    }))
}
