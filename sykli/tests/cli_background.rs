//! Long-lived host processes in a pipeline, through the real `sykli` binary.
//!
//! Regression: README's test command failed on a fresh machine because the task that started
//! `dockerd` in the background was killed with its process group when the task ended (no
//! orphans), so the tests after it found no engine. A background task keeps its service for
//! the whole run and stops it when the run ends.

mod common;

use std::net::TcpStream;
use std::path::Path;

use std::time::Duration;

use common::{project, sykli, text};
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

fn connect(port: u16) -> String {
    format!("python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\"")
}

fn serve(port: u16, dir: &Path) -> String {
    format!(
        "python3 -m http.server --bind 127.0.0.1 --directory {} {port}",
        dir.display()
    )
}

#[test]
fn a_daemon_started_by_a_task_serves_the_tasks_after_it_until_the_run_ends() {
    let port = free_port();
    let www = tempfile::tempdir().unwrap();
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "engine", "command": serve(port, www.path()),
         "background": {"ready": connect(port), "ready_timeout": 30}},
        // Tasks after the one that needs the engine, as the image build and the tests were.
        {"name": "images", "command": connect(port), "depends_on": ["engine"]},
        {"name": "tests", "command": connect(port), "depends_on": ["images"]},
    ]}));
    let out = sykli(dir.path(), &["run", "--verbose"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("sykli: 3 passed, 0 failed, 0 skipped"),
        "{all}"
    );
    assert!(
        all.contains("runs in the background until the run ends"),
        "the run says the service is kept: {all}"
    );
    assert!(!answers(port), "the engine outlived the run");
}

#[test]
fn without_background_a_daemon_dies_with_its_task() {
    // The default stays: no process outlives its task.
    let port = free_port();
    let www = tempfile::tempdir().unwrap();
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "engine", "command": format!("{} >/dev/null 2>&1 & for i in $(seq 100); do {} && exit 0; sleep 0.1; done; exit 1", serve(port, www.path()), connect(port))},
        {"name": "tests", "command": connect(port), "depends_on": ["engine"]},
    ]}));
    let out = sykli(dir.path(), &["run"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("sykli: 1 passed, 1 failed, 0 skipped"),
        "{all}"
    );
    assert!(!answers(port));
}

#[test]
fn an_invalid_background_task_is_a_validation_error_naming_it() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "engine", "command": "dockerd", "retry": 3, "background": {"ready": ""}},
    ]}));
    let out = sykli(dir.path(), &["validate"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("task \"engine\" is a background task but has an empty `ready` check"),
        "{all}"
    );
    assert!(
        all.contains("task \"engine\" is a background task but has `retry`"),
        "{all}"
    );
}
