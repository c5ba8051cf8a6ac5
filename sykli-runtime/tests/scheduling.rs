//! Ordering, parallelism, fail-fast and keep-going, statuses, filters, retries, capabilities.

mod common;

use common::Project;
use serde_json::json;
use sykli_runtime::{Event, RunError, TaskStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_run_in_order() {
    let p = Project::new();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "c", "command": "echo c >> order", "depends_on": ["b"]},
                {"name": "b", "command": "echo b >> order", "depends_on": ["a"]},
                {"name": "a", "command": "sleep 0.2; echo a >> order"},
            ]}),
            p.config(),
        )
        .await;
    assert!(s.ok(), "{s:?}");
    assert_eq!(s.passed, 3);
    assert_eq!(p.read("order"), "a\nb\nc\n");
    // Each task starts only after its dependency finished.
    let order: Vec<String> = ev
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::TaskStarted { task, .. } => Some(format!("start {task}")),
            Event::TaskFinished(r) => Some(format!("end {}", r.task)),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        ["start a", "end a", "start b", "end b", "start c", "end c"]
    );
}

/// Reads `<name>.start` / `<name>.end` timestamps (nanoseconds) the task wrote.
fn interval(p: &Project, name: &str) -> (u128, u128) {
    let read =
        |suffix: &str| -> u128 { p.read(&format!("{name}.{suffix}")).trim().parse().unwrap() };
    (read("start"), read("end"))
}

fn timed(name: &str) -> serde_json::Value {
    json!({"name": name, "command": format!("date +%s%N > {name}.start; sleep 1; date +%s%N > {name}.end")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_tasks_overlap() {
    let p = Project::new();
    let mut c = p.config();
    c.jobs = 2;
    let (s, _) = p
        .run(
            json!({"version": "1", "tasks": [timed("x"), timed("y")]}),
            c,
        )
        .await;
    assert!(s.ok());
    let (xs, xe) = interval(&p, "x");
    let (ys, ye) = interval(&p, "y");
    assert!(
        xs < ye && ys < xe,
        "x {xs}..{xe} and y {ys}..{ye} do not overlap"
    );
    assert!(
        s.duration_ms < 1900,
        "two 1 s sleeps took {} ms with 2 jobs",
        s.duration_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_job_runs_one_task_at_a_time() {
    let p = Project::new();
    let mut c = p.config();
    c.jobs = 1;
    let (s, _) = p
        .run(
            json!({"version": "1", "tasks": [timed("x"), timed("y")]}),
            c,
        )
        .await;
    assert!(s.ok());
    let (xs, xe) = interval(&p, "x");
    let (ys, ye) = interval(&p, "y");
    assert!(
        xe <= ys || ye <= xs,
        "x {xs}..{xe} and y {ys}..{ye} overlap with 1 job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_path_starts_first() {
    // With one slot, the head of the long chain goes before the short independent task,
    // although the short task comes first in the document.
    let p = Project::new();
    let mut c = p.config();
    c.jobs = 1;
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "short", "command": "true"},
                {"name": "head", "command": "true"},
                {"name": "mid", "command": "true", "depends_on": ["head"]},
                {"name": "tail", "command": "true", "depends_on": ["mid"]},
            ]}),
            c,
        )
        .await;
    assert!(s.ok());
    let first = ev.events().into_iter().find_map(|e| match e {
        Event::TaskStarted { task, .. } => Some(task),
        _ => None,
    });
    assert_eq!(first.as_deref(), Some("head"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_blocks_the_rest() {
    let p = Project::new();
    let mut c = p.config();
    c.jobs = 1;
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "bad", "command": "echo boom >&2; exit 3"},
                {"name": "after", "command": "touch after", "depends_on": ["bad"]},
                {"name": "other", "command": "touch other"},
            ]}),
            c,
        )
        .await;
    assert!(!s.ok());
    let bad = ev.report("bad");
    assert_eq!((bad.status, bad.exit_code), (TaskStatus::Failed, Some(3)));
    assert_eq!(bad.message.as_deref(), Some("exited with code 3"));
    assert_eq!(ev.output("bad"), ["boom"]);
    let after = ev.report("after");
    assert_eq!(after.status, TaskStatus::Blocked);
    assert!(after.message.unwrap().contains("`bad` failed"));
    let other = ev.report("other");
    assert_eq!(other.status, TaskStatus::Blocked);
    assert!(other.message.unwrap().contains("`bad`"));
    assert!(!p.path("after").exists() && !p.path("other").exists());
    assert_eq!((s.failed, s.blocked, s.passed), (1, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_going_runs_everything_not_downstream() {
    let p = Project::new();
    let mut c = p.config();
    c.jobs = 1;
    c.keep_going = true;
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "bad", "command": "exit 1"},
                {"name": "after", "command": "touch after", "depends_on": ["bad"]},
                {"name": "later", "command": "true", "depends_on": ["after"]},
                {"name": "other", "command": "touch other"},
            ]}),
            c,
        )
        .await;
    assert_eq!(ev.status("other"), TaskStatus::Passed);
    assert_eq!(ev.status("after"), TaskStatus::Blocked);
    let later = ev.report("later");
    assert_eq!(later.status, TaskStatus::Blocked);
    assert!(later.message.unwrap().contains("`after`"));
    assert!(p.path("other").exists() && !p.path("after").exists());
    assert_eq!((s.failed, s.blocked, s.passed), (1, 2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_skip_and_missing_container_executor_errors() {
    let p = Project::new();
    let mut c = p.config();
    // The container task is errored by the plan before anything starts; keep going so the
    // independent task still runs.
    c.keep_going = true;
    c.context = Some(sykli_runtime::graph::ConditionContext {
        branch: Some("dev".into()),
        ..Default::default()
    });
    let (s, ev) = p
        .run(
            json!({"version": "2", "tasks": [
                {"name": "deploy", "command": "touch deployed", "when": "branch == 'main'"},
                {"name": "notify", "command": "true", "depends_on": ["deploy"]},
                {"name": "devonly", "command": "touch dev", "when": "branch == 'dev'"},
                {"name": "boxed", "command": "true", "container": "alpine:3"},
            ]}),
            c,
        )
        .await;
    let deploy = ev.report("deploy");
    assert_eq!(deploy.status, TaskStatus::Skipped);
    assert_eq!(
        deploy.message.as_deref(),
        Some("condition `branch == 'main'` is false")
    );
    assert_eq!(ev.status("notify"), TaskStatus::Blocked);
    assert_eq!(ev.status("devonly"), TaskStatus::Passed);
    let boxed = ev.report("boxed");
    assert_eq!(boxed.status, TaskStatus::Errored);
    assert!(boxed.message.unwrap().contains("no container executor"));
    assert!(!p.path("deployed").exists() && p.path("dev").exists());
    assert_eq!((s.skipped, s.errored), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_runs_the_task_and_its_dependencies_only() {
    let p = Project::new();
    let graph = json!({"version": "1", "tasks": [
        {"name": "a", "command": "touch a"},
        {"name": "b", "command": "touch b", "depends_on": ["a"]},
        {"name": "c", "command": "touch c", "depends_on": ["b"]},
        {"name": "d", "command": "touch d"},
    ]});
    let mut c = p.config();
    c.filter = vec!["b".into()];
    let (s, ev) = p.run(graph.clone(), c).await;
    assert_eq!(s.passed, 2);
    assert!(p.path("a").exists() && p.path("b").exists());
    assert!(!p.path("c").exists() && !p.path("d").exists());
    match &ev.events()[0] {
        Event::RunStarted { tasks, .. } => assert_eq!(tasks, &["a", "b"]),
        e => panic!("{e:?}"),
    }

    let mut c = p.config();
    c.filter = vec!["bb".into()];
    let valid = sykli_runtime::graph::validate(&serde_json::from_value(graph).unwrap()).unwrap();
    let err = sykli_runtime::run(&valid, c, std::sync::Arc::new(common::Collect::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::UnknownFilter { ref name, .. } if name == "bb"));
    assert!(err.to_string().contains("`bb`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_exponentially() {
    let p = Project::new();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                // Fails twice, then passes.
                {"name": "flaky", "retry": 3, "command":
                    "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo try $n; [ $n -ge 3 ]"},
                {"name": "hopeless", "retry": 1, "command": "exit 7"},
            ]}),
            {
                let mut c = p.config();
                c.keep_going = true;
                c
            },
        )
        .await;
    let flaky = ev.report("flaky");
    assert_eq!((flaky.status, flaky.attempts), (TaskStatus::Passed, 3));
    let delays: Vec<(String, u32, u64)> = ev
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::TaskRetrying {
                task,
                attempt,
                delay_ms,
                ..
            } => Some((task, attempt, delay_ms)),
            _ => None,
        })
        .collect();
    assert!(delays.contains(&("flaky".into(), 1, 20)));
    assert!(delays.contains(&("flaky".into(), 2, 40)));
    assert!(delays.contains(&("hopeless".into(), 1, 20)));
    let hopeless = ev.report("hopeless");
    assert_eq!(
        (hopeless.status, hopeless.attempts, hopeless.exit_code),
        (TaskStatus::Failed, 2, Some(7))
    );
    assert_eq!(s.failed, 1);
    // The log keeps every attempt, separated.
    let log = p.all_logs();
    assert!(
        log.contains(
            "try 1\n\n=== sykli: attempt 2 ===\ntry 2\n\n=== sykli: attempt 3 ===\ntry 3\n"
        ),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_are_exported_to_consumers() {
    let p = Project::new();
    let (s, _) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "db", "command": "true", "provides": [{"name": "db-url", "value": "postgres://db"}]},
                {"name": "cache", "command": "true", "provides": ["redis"]},
                {"name": "app", "command": "echo \"$SYKLI_CAP_DB_URL $SYKLI_CAP_REDIS\" > caps", "needs": ["db-url", "redis"]},
            ]}),
            p.config(),
        )
        .await;
    assert!(s.ok());
    assert_eq!(p.read("caps"), "postgres://db 1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workdir_env_and_missing_workdir() {
    let p = Project::new();
    std::fs::create_dir(p.path("sub")).unwrap();
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "here", "command": "echo \"$GREETING\" > where; pwd >> where", "workdir": "sub", "env": {"GREETING": "hi"}},
                {"name": "nowhere", "command": "true", "workdir": "missing"},
            ]}),
            {
                let mut c = p.config();
                c.keep_going = true;
                c
            },
        )
        .await;
    assert_eq!(ev.status("here"), TaskStatus::Passed);
    let text = p.read("sub/where");
    assert!(
        text.starts_with("hi\n") && text.trim_end().ends_with("/sub"),
        "{text}"
    );
    let nowhere = ev.report("nowhere");
    assert_eq!(nowhere.status, TaskStatus::Errored);
    assert!(nowhere.message.unwrap().contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_the_head_of_a_long_chain_blocks_it_all() {
    // Regression: blocking used to recurse once per task down the chain.
    let p = Project::new();
    let mut tasks = vec![json!({"name": "t0", "command": "exit 1"})];
    for i in 1..20_000 {
        tasks.push(json!({"name": format!("t{i}"), "command": "true", "depends_on": [format!("t{}", i - 1)]}));
    }
    let (s, ev) = p
        .run(json!({"version": "1", "tasks": tasks}), p.config())
        .await;
    assert_eq!((s.failed, s.blocked), (1, 19_999));
    assert_eq!(
        ev.report("t19999").message.as_deref(),
        Some("dependency `t19998` was blocked")
    );
    assert_eq!(
        ev.report("t1").message.as_deref(),
        Some("dependency `t0` failed")
    );
}
