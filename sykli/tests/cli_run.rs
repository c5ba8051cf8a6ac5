//! `sykli run`, `history` and `logs` through the real binary on temporary projects.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{project, text};

/// `sykli` in `dir`, without the secret the secret test sets for its own runs.
fn sykli(dir: &Path, args: &[&str]) -> Output {
    common::command(dir, args)
        .env_remove("MY_TOKEN")
        .output()
        .unwrap()
}
use serde_json::{Value, json};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn last_line(o: &Output) -> String {
    stdout(o).lines().last().unwrap_or_default().to_string()
}

fn mixed() -> Value {
    json!({"version": "1", "tasks": [
        {"name": "build", "command": "echo building; echo built >&2"},
        {"name": "test", "command": "echo oops-from-test; exit 3", "depends_on": ["build"]},
        {"name": "deploy", "command": "echo deploying", "depends_on": ["test"]},
        {"name": "release", "command": "echo releasing", "when": "branch == 'never-this-branch'"},
        {"name": "slow", "command": "sleep 5", "timeout": 1},
    ]})
}

#[test]
fn statuses_exit_code_and_the_last_line() {
    let dir = project(mixed());
    let out = sykli(dir.path(), &["run", "--keep-going", "--jobs", "4"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("[build] building"), "{all}");
    assert!(all.contains("passed build"), "{all}");
    assert!(all.contains("failed test"), "{all}");
    assert!(all.contains("blocked deploy"), "{all}");
    assert!(all.contains("skipped release"), "{all}");
    assert!(all.contains("errored slow"), "{all}");
    // The failed task's output is shown again at the end with its full log's path.
    let tail = all.rsplit_once("--- failed test").expect(&all).1;
    assert!(tail.contains("oops-from-test"), "{all}");
    assert!(tail.contains(".sykli/logs/"), "{all}");
    assert!(
        all.contains("1 passed, 1 failed, 1 errored, 1 blocked, 1 skipped in "),
        "{all}"
    );
    assert_eq!(last_line(&out), "sykli: 1 passed, 2 failed, 2 skipped");
    assert!(
        !all.contains('\x1b'),
        "no ANSI codes when not on a terminal: {all}"
    );
}

#[test]
fn a_passing_run_exits_zero() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "true"},
        {"name": "b", "command": "echo hi", "depends_on": ["a"]},
    ]}));
    // `sykli` with no command means `sykli run`; the path may be given.
    let out = sykli(Path::new("/"), &[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(last_line(&out), "sykli: 2 passed, 0 failed, 0 skipped");
}

#[test]
fn json_is_one_envelope_without_ansi() {
    let dir = project(mixed());
    let out = sykli(dir.path(), &["run", "--json", "--keep-going"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    assert!(!s.contains('\x1b'));
    let v: Value = serde_json::from_str(&s).expect(&s);
    // The command worked; the failures are in `data` and the exit code.
    assert_eq!(v["ok"], true);
    assert_eq!(v["version"], "1");
    assert_eq!(v["error"], Value::Null);
    let data = &v["data"];
    assert_eq!(data["outcome"], "failed");
    assert!(data["run_id"].as_str().is_some_and(|r| !r.is_empty()));
    let tasks = data["tasks"].as_array().unwrap();
    let status = |n: &str| {
        let t = tasks.iter().find(|t| t["name"] == n).expect(n);
        for key in ["duration_ms", "attempts", "exit_code", "message", "cached"] {
            assert!(t.get(key).is_some(), "task {n} lacks {key}: {t}");
        }
        t["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status("build"), "passed");
    assert_eq!(status("test"), "failed");
    assert_eq!(status("deploy"), "blocked");
    assert_eq!(status("release"), "skipped");
    assert_eq!(status("slow"), "errored");
    let t = tasks.iter().find(|t| t["name"] == "test").unwrap();
    assert_eq!(t["exit_code"], 3);
    assert_eq!(t["attempts"], 1);
    assert_eq!(data["summary"]["passed"], 1);
    assert_eq!(data["summary"]["blocked"], 1);

    let ok = project(json!({"version": "1", "tasks": [{"name": "a", "command": "true"}]}));
    let out = sykli(ok.path(), &["run", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(v["ok"], true);
    assert_eq!(v["error"], Value::Null);
}

#[test]
fn invalid_pipeline_exits_two_listing_every_error() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "true", "depends_on": ["nope"]},
        {"name": "b"},
    ]}));
    let out = sykli(dir.path(), &["run"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("nope"), "{all}");
    assert!(all.contains("\"b\""), "{all}");
    let out = sykli(dir.path(), &["run", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "invalid_pipeline");
    assert_eq!(v["data"]["valid"], false);
    assert_eq!(v["data"]["errors"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn bad_usage_exits_two() {
    let dir = project(json!({"version": "1", "tasks": [{"name": "a", "command": "true"}]}));
    let out = sykli(dir.path(), &["run", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = sykli(dir.path(), &["run", "--filter", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nope"));
    let empty = tempfile::tempdir().unwrap();
    let out = sykli(empty.path(), &["run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn filter_runs_the_task_and_its_dependencies_only() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "touch ran-a"},
        {"name": "b", "command": "touch ran-b", "depends_on": ["a"]},
        {"name": "c", "command": "touch ran-c"},
        {"name": "d", "command": "touch ran-d", "depends_on": ["b"]},
    ]}));
    let out = sykli(dir.path(), &["run", "--filter", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (f, exists) in [
        ("ran-a", true),
        ("ran-b", true),
        ("ran-c", false),
        ("ran-d", false),
    ] {
        assert_eq!(dir.path().join(f).exists(), exists, "{f}: {}", text(&out));
    }
    assert_eq!(last_line(&out), "sykli: 2 passed, 0 failed, 0 skipped");
}

#[test]
fn default_timeout_applies_to_tasks_without_one() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "slow", "command": "sleep 5"},
    ]}));
    let started = std::time::Instant::now();
    let out = sykli(dir.path(), &["run", "--timeout", "1s", "--json"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data"]["tasks"][0]["status"], "errored");
}

#[test]
fn history_and_logs_after_runs() {
    let dir = project(mixed());
    let first = sykli(dir.path(), &["run", "--keep-going", "--json"]);
    let first: Value = serde_json::from_slice(&first.stdout).unwrap();
    let first_id = first["data"]["run_id"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = sykli(dir.path(), &["run", "--keep-going", "--json"]);
    let second: Value = serde_json::from_slice(&second.stdout).unwrap();
    let second_id = second["data"]["run_id"].as_str().unwrap().to_string();
    assert_ne!(first_id, second_id);

    // The run, read back from its journal (docs/durable.md).
    assert!(
        dir.path()
            .join(".sykli/runs")
            .join(&second_id)
            .join("journal")
            .is_file()
    );
    let out = sykli(dir.path(), &["report", &second_id, "--json"]);
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    let record = &record["data"];
    let test = record["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "test")
        .unwrap();
    assert_eq!(test["status"], "failed");
    assert_eq!(test["exit_code"], 3);
    assert!(test["started_at_ms"].as_u64().is_some());

    let out = sykli(dir.path(), &["history"]);
    let h = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{h}");
    let (a, b) = (h.find(&second_id).expect(&h), h.find(&first_id).expect(&h));
    assert!(a < b, "newest first: {h}");
    assert!(h.contains("failed"));

    let out = sykli(dir.path(), &["history", "--json", "-n", "1"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["data"]["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["runs"][0]["run_id"], second_id.as_str());

    let out = sykli(dir.path(), &["logs", "last", "test"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("oops-from-test"));
    let out = sykli(dir.path(), &["logs", &first_id, "build"]);
    assert!(stdout(&out).contains("building"), "{}", text(&out));
    assert!(
        stdout(&out).contains("built"),
        "stderr is logged too: {}",
        text(&out)
    );
    // Every task of the run.
    let out = sykli(dir.path(), &["logs", "last"]);
    let all = stdout(&out);
    assert!(
        all.contains("==> build <==") && all.contains("oops-from-test"),
        "{all}"
    );

    let out = sykli(dir.path(), &["logs", "last", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out);
    assert!(
        e.contains("nope") && e.contains("build") && e.contains("deploy"),
        "{e}"
    );
    let out = sykli(dir.path(), &["logs", "no-such-run"]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out);
    assert!(e.contains("no-such-run") && e.contains(&first_id), "{e}");
}

#[test]
fn secrets_never_appear_in_output_json_logs_or_records() {
    const SECRET: &str = "s3cr3t-VALUE-4f7b";
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "leak", "command": "echo token=$MY_TOKEN; echo $MY_TOKEN >&2; exit 1",
         "secrets": ["MY_TOKEN"]},
    ]}));
    for args in [&["run"][..], &["run", "--json"], &["run", "--verbose"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_sykli"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("CI")
            .env("MY_TOKEN", SECRET)
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{all}");
        if !args.contains(&"--json") {
            assert!(all.contains("token="), "the task ran: {all}");
        }
        assert!(!all.contains(SECRET), "{args:?} leaked: {all}");
    }
    let out = sykli(dir.path(), &["logs", "last", "leak"]);
    assert!(stdout(&out).contains("token="), "{}", text(&out));
    assert!(!text(&out).contains(SECRET));
    let mut files = 0;
    for entry in walk(&dir.path().join(".sykli")) {
        let bytes = std::fs::read(&entry).unwrap();
        files += 1;
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{} leaked the secret",
            entry.display()
        );
    }
    assert!(files >= 4, "records and logs were written ({files} files)");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_closed_stdout_does_not_disturb_the_run() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "for i in $(seq 1 2000); do echo line $i; done"},
        {"name": "b", "command": "touch ran-b", "depends_on": ["a"]},
    ]}));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .arg("run")
        .current_dir(dir.path())
        .env_remove("CI")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `sykli run | head -0`
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(dir.path().join("ran-b").exists());
    let out = sykli(dir.path(), &["history", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data"]["runs"][0]["summary"]["passed"], 2);
}

/// On a terminal (a pseudo-terminal from util-linux `script`) the live view draws, and the
/// last line is still exactly the summary line.
#[test]
fn live_view_on_a_terminal_ends_with_the_summary_line() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: util-linux `script` is not installed, no pseudo-terminal to test with");
        return;
    }
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "sleep 0.5; echo done-a"},
        {"name": "b", "command": "echo bad; exit 1", "depends_on": ["a"]},
    ]}));
    let cmd = format!("{} run", env!("CARGO_BIN_EXE_sykli"));
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("CI")
        .env("TERM", "xterm-256color")
        .output()
        .unwrap();
    let raw = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(raw.contains('\x1b'), "a terminal gets the live view: {raw}");
    let s = console::strip_ansi_codes(&raw).into_owned();
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert!(
        s.contains("--- failed b"),
        "the failure block is shown: {s}"
    );
    assert!(s.contains("bad"), "{s}");
    let last = s.trim_end().lines().last().unwrap_or_default().to_string();
    assert_eq!(last, "sykli: 1 passed, 1 failed, 0 skipped", "{s:?}");
}
