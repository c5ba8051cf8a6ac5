//! Hermetic tasks through the real `sykli` binary: `sandbox: true`, `sykli run --sandbox`
//! and `sykli worker` (sandboxed by default). Real processes, real namespaces, real cgroups.
#![cfg(target_os = "linux")]

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::worker::Worker;
use common::{command, project, text};
use serde_json::{Value, json};

/// A run of the real binary, killed (and the test failed) past `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sykli");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    run_bounded(command(dir, args), Duration::from_secs(60))
}

/// Task name -> status of a `--json` run.
fn statuses(out: &Output) -> serde_json::Map<String, Value> {
    let env: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)));
    env["data"]["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks: {env}"))
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
        .collect()
}

fn status(tasks: &serde_json::Map<String, Value>, name: &str) -> String {
    tasks[name]["status"].as_str().unwrap_or("?").to_owned()
}

#[test]
fn a_sandboxed_task_cannot_read_a_file_outside_its_declared_inputs() {
    let outside = tempfile::tempdir().unwrap();
    let host_file = outside.path().join("host-secret.txt");
    std::fs::write(&host_file, "host").unwrap();
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "declared", "command": "cat in.txt", "inputs": ["in.txt"], "sandbox": true},
        {"name": "undeclared", "command": "cat secret.txt", "inputs": ["in.txt"], "sandbox": true},
        {"name": "host", "command": format!("cat {}", host_file.display()), "sandbox": true},
        {"name": "unsandboxed", "command": "cat secret.txt"},
    ]}));
    std::fs::write(dir.path().join("in.txt"), "in").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    let out = run(dir.path(), &["run", "--keep-going", "--no-cache"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("passed declared"), "{all}");
    assert!(
        all.contains("passed unsandboxed"),
        "the file is there: {all}"
    );
    assert!(all.contains("failed undeclared"), "{all}");
    assert!(all.contains("failed host"), "{all}");
    let advice = format!(
        "could not read {}: the sandbox hides undeclared inputs; declare it in `inputs`",
        dir.path().join("secret.txt").display()
    );
    assert!(all.contains(&advice), "the violation names the path: {all}");
}

#[test]
fn a_sandboxed_task_cannot_write_outside_its_outputs_and_its_outputs_reach_the_host() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "produce", "command": "tr a-z A-Z < in.txt > out.txt",
         "inputs": ["in.txt"], "outputs": ["out.txt"], "sandbox": true},
        {"name": "stray", "command": "echo x > stray.txt", "sandbox": true},
        {"name": "input", "command": "echo x >> in.txt", "inputs": ["in.txt"], "sandbox": true},
        {"name": "system", "command": "touch /usr/sykli-sandbox-test", "sandbox": true},
    ]}));
    std::fs::write(dir.path().join("in.txt"), "hello\n").unwrap();
    let out = run(dir.path(), &["run", "--keep-going", "--no-cache"]);
    let all = text(&out);
    assert!(all.contains("passed produce"), "{all}");
    for t in ["stray", "input", "system"] {
        assert!(all.contains(&format!("failed {t}")), "{t}: {all}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "HELLO\n"
    );
    assert!(!dir.path().join("stray.txt").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("in.txt")).unwrap(),
        "hello\n"
    );
    assert!(!Path::new("/usr/sykli-sandbox-test").exists());
    let advice = format!(
        "could not write {}: only its outputs and /tmp are writable in the sandbox; declare it in `outputs`",
        dir.path().join("stray.txt").display()
    );
    assert!(all.contains(&advice), "{all}");
}

/// Whether `listener` (non-blocking) gets a connection within `limit`.
fn accepted(listener: &TcpListener, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok(_) => return true,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return false,
        }
    }
}

#[test]
fn a_sandboxed_task_reaches_the_network_only_when_it_asks_for_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect =
        format!("python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\"");
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "offline", "command": connect, "sandbox": true},
    ]}));
    let out = run(dir.path(), &["run", "--no-cache"]);
    let all = text(&out);
    assert!(all.contains("failed offline"), "{all}");
    assert!(all.contains("Connection refused"), "{all}");
    assert!(
        !accepted(&listener, Duration::from_millis(100)),
        "no connection arrived"
    );
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "online", "command": connect, "sandbox": {"network": true}},
    ]}));
    let out = run(dir.path(), &["run", "--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        accepted(&listener, Duration::from_secs(5)),
        "the connection arrived"
    );
}

#[test]
fn a_sandboxed_task_sees_only_its_own_processes() {
    let mut host = Command::new("sleep").arg("300").spawn().unwrap();
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "look", "sandbox": true, "command": format!(
            "test ! -e /proc/{pid} && echo PIDS $(ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' ')",
            pid = host.id())},
    ]}));
    let out = run(dir.path(), &["run", "--no-cache", "--verbose"]);
    let _ = host.kill();
    let _ = host.wait();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let line = all
        .lines()
        .find_map(|l| l.split_once("PIDS ").map(|(_, p)| p.to_owned()))
        .unwrap_or_else(|| panic!("no PIDS line: {all}"));
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    // The init (1), the shell (2) and what the command line started: a handful.
    assert!(pids.contains(&1), "{pids:?}");
    assert!(pids.iter().all(|p| *p < 20), "only its own: {pids:?}");
}

/// Host processes whose command line contains `marker`.
fn host_processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if !zombie
            && String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(marker)
        {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_sandboxed_task_leaves_no_process_behind_even_a_daemonised_one() {
    let marker = format!("{}", 900_000 + std::process::id() % 90_000);
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "daemonise", "sandbox": true, "command": format!(
            "setsid sh -c 'sleep {marker}' </dev/null >/dev/null 2>&1 & \
             for i in $(seq 50); do pgrep -f 'sleep {marker}' >/dev/null && exit 0; sleep 0.1; done; exit 1")},
    ]}));
    let out = run(dir.path(), &["run", "--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "the daemon ran: {}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = host_processes_with(&format!("sleep {marker}"));
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = host_processes_with(&format!("sleep {marker}"));
    }
    for pid in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(left.is_empty(), "the daemon outlived its task: {left:?}");
}

/// Why a memory limit cannot be enforced here, or `None` when it can (a writable v1 memory
/// hierarchy, or cgroup v2 offering the memory controller).
fn memory_cgroup_unavailable() -> Option<String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next()?, parts.next()?);
        if ctrls.split(',').any(|c| c == "memory") {
            let dir = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
            let probe = dir.join(format!("sykli-probe-{}", std::process::id()));
            if std::fs::create_dir(&probe).is_ok() {
                let _ = std::fs::remove_dir(&probe);
                return None;
            }
        }
    }
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers"))
        .unwrap_or_default();
    if v2.split_whitespace().any(|c| c == "memory") {
        return None;
    }
    Some("no writable memory cgroup (v1 or v2) on this machine".into())
}

#[test]
fn a_memory_limit_kills_an_allocating_task_with_a_clear_errored_reason() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "hog", "sandbox": {"memory_mb": 32}, "command":
            "python3 -c \"b = bytearray(512 * 1024 * 1024); print(len(b))\""},
    ]}));
    let out = run(dir.path(), &["run", "--no-cache", "--json"]);
    let tasks = statuses(&out);
    match memory_cgroup_unavailable() {
        None => {
            assert_eq!(status(&tasks, "hog"), "errored", "{}", text(&out));
            let msg = tasks["hog"].to_string();
            assert!(msg.contains("exceeded its memory limit of 32 MiB"), "{msg}");
        }
        Some(why) => {
            eprintln!("memory limit not enforceable here: {why}");
            let log = std::fs::read_dir(dir.path().join(".sykli/logs"))
                .unwrap()
                .flatten()
                .map(|d| std::fs::read_to_string(d.path().join("hog.log")).unwrap_or_default())
                .collect::<String>();
            assert!(
                log.contains("the memory limit is not enforced"),
                "the run says so: {log}"
            );
        }
    }
}

#[test]
fn the_same_pipeline_gives_the_same_outputs_sandboxed_and_not() {
    let graph = json!({"version": "1", "tasks": [
        {"name": "sort", "command": "mkdir -p build && sort words.txt > build/sorted.txt",
         "inputs": ["words.txt"], "outputs": ["build/sorted.txt"]},
        {"name": "count", "command": "wc -l < build/sorted.txt > count.txt && tr a-z A-Z < build/sorted.txt > upper.txt",
         "depends_on": ["sort"], "inputs": ["build/sorted.txt"],
         "outputs": {"count": "count.txt", "upper": "upper.txt"}},
    ]});
    let mut results = Vec::new();
    for flags in [
        &["run", "--no-cache"][..],
        &["run", "--no-cache", "--sandbox"][..],
    ] {
        let dir = project(graph.clone());
        std::fs::write(dir.path().join("words.txt"), "pear\napple\nfig\n").unwrap();
        let out = run(dir.path(), flags);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {}", text(&out));
        if flags.contains(&"--sandbox") {
            assert!(text(&out).contains("[sandbox]"), "{}", text(&out));
        }
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        results.push([
            read("build/sorted.txt"),
            read("count.txt"),
            read("upper.txt"),
        ]);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0][0], "apple\nfig\npear\n");
}

#[test]
fn explain_shows_a_tasks_sandbox() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "t", "command": "true", "sandbox": {"memory_mb": 64, "pids": 32}},
    ]}));
    let out = run(dir.path(), &["explain"]);
    let all = text(&out);
    assert!(
        all.contains("sandbox: network off, memory 64 MiB, pids 32"),
        "{all}"
    );
    assert!(all.contains("where: sandbox"), "{all}");
}

#[test]
fn the_worker_runs_actions_sandboxed_by_default_away_from_its_store_and_token() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let store = tmp.path().join("store");
    let graph = |_: ()| {
        json!({"version": "1", "tasks": [
            {"name": "store", "remote": true, "command": format!("ls {}", store.join("cas").display())},
            {"name": "token", "remote": true, "command": format!("cat {}", token.display())},
            {"name": "work", "remote": true, "command": "echo hi > out.txt", "outputs": ["out.txt"]},
        ]})
    };
    let worker = Worker::start(&store, &["--token-file", token.to_str().unwrap()]);
    let dir = project(graph(()));
    let url = worker.url.clone();
    let args = [
        "run",
        "--json",
        "--keep-going",
        "--no-cache",
        "--remote",
        &url,
        "--token-file",
        token.to_str().unwrap(),
    ];
    let out = run(dir.path(), &args);
    let tasks = statuses(&out);
    assert!(store.join("cas").is_dir(), "the store has a CAS to hide");
    assert_eq!(status(&tasks, "work"), "passed", "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "hi\n"
    );
    assert_eq!(status(&tasks, "store"), "failed", "{}", text(&out));
    assert_eq!(status(&tasks, "token"), "failed", "{}", text(&out));
    drop(worker);
    // Without the sandbox the same actions do read them: the test can fail.
    let worker = Worker::start(
        &tmp.path().join("store2"),
        &["--no-sandbox", "--token-file", token.to_str().unwrap()],
    );
    let dir = project(graph(()));
    let mut args = args.to_vec();
    let url2 = worker.url.clone();
    args[5] = &url2;
    let out = run(dir.path(), &args);
    let tasks = statuses(&out);
    assert_eq!(status(&tasks, "token"), "passed", "{}", text(&out));
    assert_eq!(status(&tasks, "store"), "passed", "{}", text(&out));
}
