//! Background tasks: run-scoped host services that dependents use, stopped when the run ends.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Project, marker, processes_with, wait_for};
use serde_json::json;
use sykli_runtime::TaskStatus;
use sykli_runtime::graph::{Graph, validate};

/// A free loopback port (bound and released; the service binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_service_serves_its_dependents_and_stops_when_the_run_ends() {
    let p = Project::new();
    std::fs::create_dir(p.path("www")).unwrap();
    std::fs::write(p.path("www/index.txt"), "served by the background task\n").unwrap();
    let port = free_port();
    let www = p.path("www");
    let fetch = format!(
        "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/index.txt').read().decode())\" > fetched.txt"
    );
    let (summary, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "web", "command": format!("python3 -m http.server --bind 127.0.0.1 --directory {} {port}", www.display()),
                 "background": {"ready": format!("python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\""), "ready_timeout": 30}},
                {"name": "client-a", "command": fetch, "depends_on": ["web"]},
                {"name": "client-b", "command": format!("test \"$(cat fetched.txt)\" = 'served by the background task' && python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\""), "depends_on": ["client-a"]},
            ]}),
            p.config(),
        )
        .await;
    assert_eq!(
        ev.status("web"),
        TaskStatus::Passed,
        "{:?}",
        ev.report("web")
    );
    assert_eq!(
        ev.status("client-a"),
        TaskStatus::Passed,
        "{}",
        p.all_logs()
    );
    assert_eq!(
        ev.status("client-b"),
        TaskStatus::Passed,
        "{}",
        p.all_logs()
    );
    assert_eq!(summary.passed, 3);
    // The run has ended: the server is gone, nothing of it is left.
    assert!(
        !answers(port),
        "the background server still answers after the run"
    );
    let left = processes_with(&www.display().to_string());
    assert!(left.is_empty(), "left running: {left:?}");
    let logs = p.all_logs();
    assert!(
        logs.contains("runs in the background until the run ends"),
        "{logs}"
    );
    assert!(
        logs.contains("stopped background task `web` at the end of the run"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_already_running_is_used_and_not_started() {
    let p = Project::new();
    std::fs::write(p.path("engine.up"), "").unwrap();
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "engine", "command": "touch started-anyway", "background": {"ready": "test -f engine.up", "ready_timeout": 5}},
                {"name": "user", "command": "touch used", "depends_on": ["engine"]},
            ]}),
            p.config(),
        )
        .await;
    assert_eq!(ev.status("engine"), TaskStatus::Passed);
    assert_eq!(ev.status("user"), TaskStatus::Passed);
    assert!(p.path("used").exists());
    assert!(
        !p.path("started-anyway").exists(),
        "the command ran though the service was up"
    );
    let out = ev.output("engine").join("\n");
    assert!(
        out.contains("already passes: using the service that is running"),
        "{out}"
    );
}

/// Regression: a `ready_timeout` past what an `Instant` can hold panicked the task's runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_timeout_of_u64_max_seconds_waits_without_a_panic() {
    let p = Project::new();
    let tag = marker("huge-timeout");
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "svc", "command": format!("sh -c 'touch svc.up; sleep 300; :' {tag}"),
                 "background": {"ready": "test -f svc.up", "ready_timeout": u64::MAX}},
                {"name": "user", "command": "touch used", "depends_on": ["svc"]},
            ]}),
            p.config(),
        )
        .await;
    assert_eq!(
        ev.status("svc"),
        TaskStatus::Passed,
        "{:?}",
        ev.report("svc")
    );
    assert_eq!(ev.status("user"), TaskStatus::Passed);
    let left = processes_with(&tag);
    assert!(left.is_empty(), "left running: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_command_that_exits_before_it_is_ready_errors_and_blocks_dependents() {
    let p = Project::new();
    let started = Instant::now();
    let (summary, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "db", "command": "echo cannot bind >&2; exit 3", "background": {"ready": "test -f never", "ready_timeout": 60}},
                {"name": "migrate", "command": "touch migrated", "depends_on": ["db"]},
            ]}),
            p.config(),
        )
        .await;
    let db = ev.report("db");
    assert_eq!(db.status, TaskStatus::Errored, "{db:?}");
    let msg = db.message.unwrap_or_default();
    assert!(
        msg.contains("exited with code 3 before `test -f never` passed"),
        "{msg}"
    );
    assert_eq!(ev.status("migrate"), TaskStatus::Blocked);
    assert!(!p.path("migrated").exists());
    assert_eq!(summary.errored, 1);
    assert!(p.all_logs().contains("cannot bind"));
    // The exit is noticed at once, not after the 60 s readiness wait.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_never_ready_is_stopped_after_its_ready_timeout() {
    let p = Project::new();
    let tag = marker("never-ready");
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "svc", "command": format!("sh -c 'sleep 300; :' {tag}"), "background": {"ready": "echo not listening yet; exit 1", "ready_timeout": 1}},
                {"name": "after", "command": "touch after", "depends_on": ["svc"]},
            ]}),
            p.config(),
        )
        .await;
    let svc = ev.report("svc");
    assert_eq!(svc.status, TaskStatus::Errored, "{svc:?}");
    let msg = svc.message.unwrap_or_default();
    assert!(msg.contains("did not pass within 1s"), "{msg}");
    assert!(
        msg.contains("not listening yet"),
        "the last check's output is shown: {msg}"
    );
    assert_eq!(ev.status("after"), TaskStatus::Blocked);
    let left = processes_with(&tag);
    assert!(left.is_empty(), "left running: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_stops_its_background_services() {
    let p = Project::new();
    let tag = marker("cancelled-service");
    let config = p.config();
    let cancel = config.cancel.clone();
    let ready_file = p.path("client.running");
    let canceller = tokio::spawn(async move {
        wait_for(Duration::from_secs(30), "the dependent to start", || {
            ready_file.exists()
        })
        .await;
        cancel.cancel();
    });
    let (summary, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "svc", "command": format!("sh -c 'touch svc.up; sleep 300; :' {tag}"), "background": {"ready": "test -f svc.up", "ready_timeout": 30}},
                {"name": "client", "command": "touch client.running; sleep 300", "depends_on": ["svc"]},
            ]}),
            config,
        )
        .await;
    canceller.await.unwrap();
    assert!(summary.interrupted);
    assert_eq!(ev.status("svc"), TaskStatus::Passed);
    assert_eq!(ev.status("client"), TaskStatus::Errored);
    let left = processes_with(&tag);
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn background_tasks_that_cannot_be_host_services_are_invalid() {
    let graph: Graph = serde_json::from_value(json!({"version": "2", "tasks": [
        {"name": "no-ready", "command": "dockerd", "background": {"ready": " ", "ready_timeout": 5}},
        {"name": "in-container", "command": "redis-server", "container": "redis", "background": {"ready": "true"}},
        {"name": "retried", "command": "svc", "retry": 2, "timeout": 10, "background": {"ready": "true"}},
        {"name": "fine", "command": "svc", "background": {"ready": "true"}},
    ]}))
    .unwrap();
    let errors = validate(&graph).expect_err("invalid background tasks");
    let text = errors.to_string();
    for expected in [
        "task \"no-ready\" is a background task but has an empty `ready` check",
        "task \"in-container\" is a background task but has a container",
        "task \"retried\" is a background task but has `retry`",
        "task \"retried\" is a background task but has `timeout`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("\"fine\""), "{text}");
    assert!(
        errors
            .errors()
            .iter()
            .all(|e| e.code() == "invalid_background")
    );
    // ready_timeout defaults to 60 s.
    assert_eq!(
        graph.tasks[3].background.as_ref().unwrap().ready_timeout,
        sykli_runtime::graph::Background::DEFAULT_READY_TIMEOUT
    );
}
