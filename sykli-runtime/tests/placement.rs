//! A remote executor slots in by registration alone: the scheduler places `remote`,
//! `prefer: remote` and `requires` tasks on it, and says so in the events.

mod common;

use std::sync::{Arc, Mutex};

use common::Project;
use futures::future::BoxFuture;
use serde_json::json;
use sykli_runtime::exec::process::ProcessExecutor;
use sykli_runtime::exec::{ExecIo, ExecOutcome, ExecRequest, Executor, ExecutorEntry, WorkKind};
use sykli_runtime::{Event, TaskStatus};

/// A "remote" executor that runs its tasks on this machine and remembers which it ran.
struct Loopback {
    process: ProcessExecutor,
    ran: Mutex<Vec<String>>,
}

impl Executor for Loopback {
    fn name(&self) -> &str {
        "farm"
    }

    fn execute<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, ExecOutcome> {
        self.ran.lock().unwrap().push(req.task.clone());
        self.process.execute(req, io)
    }
}

fn started_on(events: &[Event], task: &str) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::TaskStarted {
            task: t, executor, ..
        } if t == task => Some(executor.clone()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_remote_executor_takes_remote_preferred_and_labelled_tasks() {
    let p = Project::new();
    let farm = Arc::new(Loopback {
        process: ProcessExecutor::new(),
        ran: Mutex::new(Vec::new()),
    });
    let mut c = p.config();
    c.executors
        .register(ExecutorEntry::remote(
            farm.clone(),
            &[WorkKind::Command],
            ["gpu"],
        ))
        .unwrap();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "must", "command": "touch must", "remote": true},
                {"name": "likes", "command": "touch likes", "prefer": "remote"},
                {"name": "gpu", "command": "touch gpu", "requires": ["gpu"]},
                {"name": "here", "command": "touch here"},
                {"name": "local-please", "command": "true", "prefer": "local"},
            ]}),
            c,
        )
        .await;
    assert!(s.ok(), "{:#?}", ev.events());
    let events = ev.events();
    for (task, on) in [
        ("must", "farm"),
        ("likes", "farm"),
        ("gpu", "farm"),
        ("here", "process"),
        ("local-please", "process"),
    ] {
        assert_eq!(started_on(&events, task).as_deref(), Some(on), "{task}");
        assert_eq!(ev.status(task), TaskStatus::Passed, "{task}");
    }
    let mut ran = farm.ran.lock().unwrap().clone();
    ran.sort();
    assert_eq!(ran, ["gpu", "likes", "must"]);
    let placed: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::TaskPlaced {
                task,
                executor,
                reason,
            } => Some((task.clone(), format!("{executor}: {reason}"))),
            _ => None,
        })
        .collect();
    assert!(
        placed.contains(&(
            "likes".into(),
            "farm: `prefer: remote`: a remote executor is available".into()
        )),
        "{placed:?}"
    );
    assert!(
        placed.contains(&(
            "must".into(),
            "farm: `remote: true`: a remote executor".into()
        )),
        "{placed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_remote_executor_remote_tasks_error_and_preferences_fall_back() {
    let p = Project::new();
    let mut c = p.config();
    c.keep_going = true;
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "must", "command": "touch must", "remote": true},
                {"name": "after", "command": "true", "depends_on": ["must"]},
                {"name": "likes", "command": "touch likes", "prefer": "remote"},
            ]}),
            c,
        )
        .await;
    assert_eq!((s.errored, s.blocked, s.passed), (1, 1, 1));
    let must = ev.report("must");
    assert_eq!((must.status, must.attempts), (TaskStatus::Errored, 0));
    assert!(
        must.message
            .unwrap()
            .contains("no remote executor is configured")
    );
    assert!(!p.path("must").exists());
    assert!(p.path("likes").exists());
    let said = ev.events().into_iter().find_map(|e| match e {
        Event::TaskPlaced { task, reason, .. } if task == "likes" => Some(reason),
        _ => None,
    });
    assert_eq!(
        said.as_deref(),
        Some("`prefer: remote`, but no remote executor is configured: runs locally")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_made_beforehand_runs_as_made_and_only_on_its_executors() {
    use sykli_runtime::graph::{Graph, validate};
    use sykli_runtime::scheduler::{RunError, run_planned};
    let p = Project::new();
    let graph: Graph = serde_json::from_value(json!({"version": "1", "tasks": [
        {"name": "a", "command": "touch a"},
        {"name": "b", "command": "touch b", "when": "tag"},
    ]}))
    .unwrap();
    let valid = validate(&graph).unwrap();
    let config = p.config();
    let registry = config.registry();
    let plan = config.plan(&valid, &registry).unwrap();
    assert_eq!(plan.executor_name(0), Some("process"));
    let events = Arc::new(common::Collect::default());
    let s = run_planned(&valid, plan.clone(), &registry, config, events.clone())
        .await
        .unwrap();
    assert_eq!((s.passed, s.skipped), (1, 1));
    assert!(p.path("a").exists() && !p.path("b").exists());

    let mut other = p.config();
    other
        .executors
        .register(ExecutorEntry::remote(
            Arc::new(Loopback {
                process: ProcessExecutor::new(),
                ran: Mutex::new(Vec::new()),
            }),
            &[WorkKind::Command],
            Vec::<String>::new(),
        ))
        .unwrap();
    let e = run_planned(&valid, plan, &other.registry(), other, events)
        .await
        .unwrap_err();
    assert!(matches!(e, RunError::PlanMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("[process, native, sandbox, farm]")
            || e.to_string().contains("[process, native, farm]"),
        "{e}"
    );
}
