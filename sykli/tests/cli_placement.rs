//! Placement through the real `sykli` binary: `remote`, `requires`, `target`, `prefer`.

mod common;

use std::path::Path;

use common::{project, sykli, text};
use serde_json::{Value, json};

/// The only run of the project (its journal `.sykli/runs/<id>/journal`), as `sykli report
/// --json` reads it back.
fn record(dir: &Path) -> Value {
    let runs: Vec<_> = std::fs::read_dir(dir.join(".sykli/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let out = sykli(dir, &["report", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["data"].clone()
}

fn task<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name} in {record}"))
}

#[test]
fn a_remote_task_without_a_remote_executor_is_errored_and_says_how_to_configure_one() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "far", "command": "touch ran-far", "remote": true},
    ]}));
    let out = sykli(dir.path(), &["run"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!dir.path().join("ran-far").exists(), "never silently local");
    let r = record(dir.path());
    let far = task(&r, "far");
    assert_eq!(far["status"], "errored", "{far}");
    assert_eq!(far["attempts"], 0, "{far}");
    let msg = far["message"].as_str().unwrap();
    assert!(
        msg.contains("no remote executor is configured: register one"),
        "{msg}"
    );
}

#[test]
fn a_task_requiring_gpu_fails_naming_the_label() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "train", "command": "touch ran", "requires": ["gpu", "linux"]},
    ]}));
    let out = sykli(dir.path(), &["run"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!dir.path().join("ran").exists());
    let r = record(dir.path());
    let msg = task(&r, "train")["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("no executor carries the label the task requires: gpu"),
        "{msg}"
    );
    let (code, explained) = explain_json(dir.path(), &[]);
    assert_eq!(code, Some(0));
    assert_eq!(explained[0]["decision"], "error");
    assert_eq!(explained[0]["reason"], msg);
}

#[test]
fn target_docker_picks_the_container_executor() {
    let dir = project(json!({"version": "2", "tasks": [
        {"name": "boxed", "command": "cat /etc/hostname > /dev/null && test ! -e /work/sykli.json",
         "container": "sykli-test/busybox:latest", "target": "docker"},
        {"name": "host", "command": "test -e sykli.json", "target": "process"},
    ]}));
    let out = sykli(dir.path(), &["run", "--no-cache"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let r = record(dir.path());
    assert_eq!(task(&r, "boxed")["executor"], "docker", "{r}");
    assert_eq!(task(&r, "host")["executor"], "process", "{r}");

    let dir = project(json!({"version": "1", "tasks": [
        {"name": "t", "command": "true", "target": "nowhere"},
    ]}));
    let out = sykli(dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = task(&record(dir.path()), "t")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.starts_with(if cfg!(target_os = "linux") {
            "unknown target `nowhere`; registered executors: process, native, sandbox, docker"
        } else {
            "unknown target `nowhere`; registered executors: process, native, docker"
        }),
        "{msg}"
    );
}

fn explain_json(dir: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    let out = sykli(dir, &all);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (
        out.status.code(),
        v["data"]["tasks"].as_array().unwrap().clone(),
    )
}

#[test]
fn prefer_remote_falls_back_locally_and_says_so() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "build", "command": "touch built", "prefer": "remote"},
    ]}));
    let out = sykli(dir.path(), &["explain"]);
    let said = text(&out);
    assert!(
        said.contains(
            "placement: `prefer: remote`, but no remote executor is configured: runs locally"
        ),
        "{said}"
    );
    let out = sykli(dir.path(), &["run"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(dir.path().join("built").exists());
    assert!(
        said.contains("build on process: `prefer: remote`, but no remote executor is configured"),
        "{said}"
    );
}
