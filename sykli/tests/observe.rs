//! Observing runs from another process: `sykli run --serve` serves a run's events, `sykli
//! observe` (a second process) follows them over loopback gRPC and must print every event
//! once, in order, as the run's journal has them, also across a dropped connection and a
//! killed-and-restarted observer; `sykli ps` lists the run; `sykli cancel` cancels a task.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::observer::Observer;
use serde_json::json;
use sykli::runtime::state::journal::{journal_path, read_journal};

const DEADLINE: Duration = Duration::from_secs(120);

/// A `sykli run --serve 0` in `dir`: the child, its run id and address, and its stderr lines
/// as they come.
struct Served {
    child: Child,
    run_id: String,
    addr: String,
    stderr: mpsc::Receiver<String>,
}

fn spawn_run(dir: &Path, args: &[&str]) -> Served {
    let mut child = common::command(dir, &["run", "--serve", "0"])
        .args(args)
        .env_remove("SYKLI_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        run_id: String::new(),
        addr: String::new(),
        stderr: rx,
    };
    let until = Instant::now() + DEADLINE;
    loop {
        let line = served
            .stderr
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                let said: Vec<String> = served.stderr.try_iter().collect();
                panic!("sykli run printed no serving line: {said:?}")
            });
        // serving run RUN on grpc://127.0.0.1:PORT (...)
        if let Some(rest) = line.strip_prefix("serving run ") {
            let mut words = rest.split(' ');
            served.run_id = words.next().unwrap().to_owned();
            served.addr = words.nth(1).unwrap().to_owned();
            return served;
        }
    }
}

/// A run left behind by a failed test is killed.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit (killing it past the deadline), returning its exit code.
fn wait(child: &mut Child) -> Option<i32> {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("process did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `sykli observe ADDR ARGS` in `dir`.
fn observe(dir: &Path, addr: &str, args: &[&str]) -> Observer {
    Observer::start(dir, addr, args)
}

/// The `#SEQ KIND TASK` of an observer line.
fn key_of_line(line: &str) -> (u64, String) {
    let rest = line
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("not an event line: {line}"));
    let (seq, rest) = rest.split_once(' ').unwrap();
    let head = rest.split(':').next().unwrap().to_owned();
    (seq.parse().unwrap(), head)
}

/// Checks the observer's lines against the run: sequence numbers 1, 2, 3, ... with no gap
/// and no duplicate, ending with `run_finished`, and every event but output lines (which
/// the journal leaves to the log files) and resource samples (live only) equal to the
/// journal's, in its order. Returns the
/// output lines by task.
fn check(
    lines: &[String],
    dir: &Path,
    run_id: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let got: Vec<(u64, String)> = lines.iter().map(|l| key_of_line(l)).collect();
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    let expect: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expect, "gap-free, no duplicate");
    assert!(lines.last().unwrap().contains("run_finished"), "{lines:?}");
    let journal = journal_keys(dir, run_id);
    let not_output: Vec<(u64, String)> = got
        .iter()
        .filter(|(_, k)| !k.starts_with("task_output") && !k.starts_with("task_resources"))
        .cloned()
        .collect();
    assert_eq!(
        not_output, journal,
        "the observer saw the journal's events, in its order"
    );
    let mut outputs = std::collections::BTreeMap::<String, Vec<String>>::new();
    for l in lines {
        let (_, key) = key_of_line(l);
        if let Some(task) = key.strip_prefix("task_output ") {
            let text = l.split_once(": ").unwrap().1.to_owned();
            outputs.entry(task.to_owned()).or_default().push(text);
        }
    }
    outputs
}

/// The `#SEQ KIND TASK` of every event in the run's journal.
fn journal_keys(dir: &Path, run_id: &str) -> Vec<(u64, String)> {
    let read = read_journal(&journal_path(&dir.join(".sykli"), run_id)).unwrap();
    read.records
        .iter()
        .map(|e| {
            let kind = serde_json::to_value(&e.event).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned();
            let head = match &e.task {
                Some(t) => format!("{kind} {t}"),
                None => kind,
            };
            (e.seq, head)
        })
        .collect()
}

fn write_pipeline(dir: &Path, tasks: serde_json::Value) {
    std::fs::write(
        dir.join("sykli.json"),
        json!({"version": "2", "tasks": tasks}).to_string(),
    )
    .unwrap();
}

/// Waits (bounded) for `path` inside a task's shell command.
const WAIT_GO: &str =
    "i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; test -e go";

#[test]
fn a_second_process_observes_a_running_pipeline_and_gets_every_event_in_order() {
    let p = tempfile::tempdir().unwrap();
    let dir = p.path();
    let mut tasks = vec![json!({"name": "hold", "command": WAIT_GO})];
    for i in 0..8 {
        tasks.push(json!({
            "name": format!("t{i}"),
            "command": format!("for n in 1 2 3 4 5; do echo t{i}-$n; done"),
            "depends_on": ["hold"],
        }));
    }
    write_pipeline(dir, json!(tasks));
    let mut run = spawn_run(dir, &["-j", "4"]);
    let obs = observe(dir, &run.addr, &[]);
    // The observer is attached while the run waits on `hold`: its first event arrives, then
    // the run goes on.
    let first = obs.next();
    assert!(first.starts_with("#1 run_started"), "{first}");
    std::fs::write(dir.join("go"), "").unwrap();
    assert_eq!(wait(&mut run.child), Some(0));
    let (mut lines, code, stderr) = obs.rest();
    assert_eq!(code, Some(0), "observe exit; stderr: {stderr}");
    lines.insert(0, first);
    let outputs = check(&lines, dir, &run.run_id);
    for i in 0..8 {
        let want: Vec<String> = (1..=5).map(|n| format!("t{i}-{n}")).collect();
        assert_eq!(outputs[&format!("t{i}")], want);
    }
}

/// A TCP proxy on 127.0.0.1 that cuts its first connection once it has forwarded `cut_after`
/// bytes from the server, and forwards every later connection whole.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
}

fn proxy(upstream: &str, cut_after: u64) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = upstream.trim_start_matches("grpc://").to_owned();
    let cut = Arc::new(AtomicBool::new(false));
    let cut_flag = cut.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(client) = conn else { break };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let limit = if n == 0 { cut_after } else { u64::MAX };
            let forwarded = Arc::new(AtomicU64::new(0));
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            // client -> server
            std::thread::spawn(move || pipe(c2, s2, None));
            // server -> client, cut past the limit
            let cut_flag = cut_flag.clone();
            std::thread::spawn(move || {
                pipe(server, client, Some((limit, forwarded)));
                if limit != u64::MAX {
                    cut_flag.store(true, Ordering::SeqCst);
                }
            });
        }
    });
    Proxy { port, cut }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, limit: Option<(u64, Arc<AtomicU64>)>) {
    let mut buf = [0u8; 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some((limit, done)) = &limit
            && done.fetch_add(n as u64, Ordering::SeqCst) + n as u64 >= *limit
        {
            break;
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

#[test]
fn after_a_dropped_connection_observe_resumes_from_its_last_seq_with_no_gap_and_no_duplicate() {
    let p = tempfile::tempdir().unwrap();
    let dir = p.path();
    // Enough output that the cut falls in the middle of the stream, then a wait so the run
    // is still going when the observer reconnects.
    write_pipeline(
        dir,
        json!([
            {"name": "talk", "command": format!("i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; {WAIT_GO}")},
            {"name": "after", "command": "echo done", "depends_on": ["talk"]},
        ]),
    );
    let mut run = spawn_run(dir, &[]);
    let proxy = proxy(&run.addr, 6_000);
    let obs = observe(dir, &format!("127.0.0.1:{}", proxy.port), &[]);
    let mut lines = Vec::new();
    // Read until the proxy has cut the first connection and the observer printed past it.
    let until = Instant::now() + DEADLINE;
    while !proxy.cut.load(Ordering::SeqCst) {
        assert!(Instant::now() < until, "the proxy never cut the connection");
        lines.push(obs.next());
    }
    // The cut falls early in `talk`'s 300 lines: its last line comes after the reconnect.
    loop {
        let l = obs.next();
        let last = l.ends_with(": line-299");
        lines.push(l);
        if last {
            break;
        }
    }
    std::fs::write(dir.join("go"), "").unwrap();
    assert_eq!(wait(&mut run.child), Some(0));
    let (rest, code, stderr) = obs.rest();
    assert_eq!(code, Some(0), "observe exit; stderr: {stderr}");
    assert!(
        stderr.contains("connection lost") && stderr.contains("resuming from #"),
        "the observer reconnected: {stderr}"
    );
    lines.extend(rest);
    let outputs = check(&lines, dir, &run.run_id);
    let want: Vec<String> = (0..300).map(|n| format!("line-{n}")).collect();
    assert_eq!(outputs["talk"], want);
}

#[test]
fn a_killed_observer_restarted_from_its_next_seq_misses_nothing() {
    let p = tempfile::tempdir().unwrap();
    let dir = p.path();
    write_pipeline(
        dir,
        json!([
            {"name": "first", "command": format!("echo one; echo two; {WAIT_GO}")},
            {"name": "second", "command": "echo three", "depends_on": ["first"]},
        ]),
    );
    let mut run = spawn_run(dir, &[]);
    let mut obs = observe(dir, &run.addr, &["--run", &run.run_id]);
    let mut lines = Vec::new();
    // Until `first` printed `two`; then kill the observer.
    loop {
        let l = obs.next();
        let done = l.ends_with(": two");
        lines.push(l);
        if done {
            break;
        }
    }
    obs.child.kill().unwrap();
    let _ = obs.child.wait();
    let next = key_of_line(lines.last().unwrap()).0 + 1;
    let again = observe(
        dir,
        &run.addr,
        &["--run", &run.run_id, "--from", &next.to_string()],
    );
    // Attached again (its first line is the one after the last seen), then the run goes on.
    let first = again.next();
    assert_eq!(key_of_line(&first).0, next, "{first}");
    lines.push(first);
    std::fs::write(dir.join("go"), "").unwrap();
    let (rest, code, stderr) = again.rest();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(wait(&mut run.child), Some(0));
    lines.extend(rest);
    let outputs = check(&lines, dir, &run.run_id);
    assert_eq!(outputs["first"], ["one", "two"]);
    assert_eq!(outputs["second"], ["three"]);
}

#[test]
fn ps_lists_the_run_and_cancel_cancels_one_task() {
    let p = tempfile::tempdir().unwrap();
    let dir = p.path();
    write_pipeline(
        dir,
        json!([
            {"name": "hang", "command": WAIT_GO},
            {"name": "other", "command": WAIT_GO},
        ]),
    );
    let mut run = spawn_run(dir, &["--keep-going"]);
    // ps shows both tasks running (they start at once; bounded wait for the first events).
    let until = Instant::now() + DEADLINE;
    let ps = loop {
        let out = common::sykli(dir, &["--json", "ps", &run.addr]);
        assert!(out.status.success(), "{}", common::text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let tasks = v["data"]["runs"][0]["tasks"].as_array().unwrap().clone();
        let running = tasks.iter().filter(|t| t["state"] == "running").count();
        // A resource sample of `hang` comes about a second after it started.
        let sampled = tasks
            .iter()
            .any(|t| t["name"] == "hang" && t["rss_bytes"].as_u64().is_some_and(|b| b > 0));
        if running == 2 && sampled {
            break v;
        }
        assert!(Instant::now() < until, "tasks never running: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ps["data"]["runs"][0]["run_id"], run.run_id.as_str());
    assert_eq!(ps["data"]["runs"][0]["state"], "running");
    let text = common::sykli(dir, &["ps", &run.addr]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains(&format!("RUN {}  running", run.run_id)),
        "{text}"
    );
    assert!(text.contains("hang") && text.contains("process"), "{text}");
    assert!(
        text.contains('%') && text.contains('M'),
        "CPU and memory shown: {text}"
    );

    // A task that does not exist is named in the refusal.
    let bad = common::sykli(dir, &["cancel", &run.addr, &run.run_id, "nope"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        common::text(&bad).contains("task `nope`"),
        "{}",
        common::text(&bad)
    );
    let out = common::sykli(dir, &["cancel", &run.addr, &run.run_id, "hang"]);
    assert!(out.status.success(), "{}", common::text(&out));
    // `hang` ends errored while `other` goes on; then `go` lets `other` pass.
    let obs = observe(dir, &run.addr, &["--task", "hang"]);
    loop {
        let l = obs.next();
        if l.contains("task_finished hang") {
            assert!(l.contains("errored") && l.contains("cancelled"), "{l}");
            break;
        }
    }
    std::fs::write(dir.join("go"), "").unwrap();
    assert_eq!(
        wait(&mut run.child),
        Some(1),
        "a cancelled task fails the run"
    );
    let (_, code, _) = obs.rest();
    assert_eq!(code, Some(1), "observe exits as the run did");
    let journal = read_journal(&journal_path(&dir.join(".sykli"), &run.run_id)).unwrap();
    let other = journal
        .records
        .iter()
        .find_map(|e| match &e.event {
            sykli::runtime::events::Event::TaskFinished(r) if r.task == "other" => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(other.status, sykli::runtime::TaskStatus::Passed);
}

#[test]
fn observe_refuses_a_bad_address_and_an_unknown_run_clearly() {
    let p = tempfile::tempdir().unwrap();
    let out = common::sykli(p.path(), &["--json", "observe", "no-port-here"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "usage");

    write_pipeline(p.path(), json!([{"name": "w", "command": WAIT_GO}]));
    let mut run = spawn_run(p.path(), &[]);
    let out = common::sykli(p.path(), &["observe", &run.addr, "--run", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::text(&out).contains("no run `nope` is served here"),
        "{}",
        common::text(&out)
    );
    std::fs::write(p.path().join("go"), "").unwrap();
    assert_eq!(wait(&mut run.child), Some(0));
}

/// Runs a pipeline with two remote tasks and a local one against `url`, then checks that
/// `sykli ps URL` lists the run with its remote tasks, passed, on a host named `host*`.
fn ps_lists_remote_run(dir: &Path, url: &str, host: &str) {
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    write_pipeline(
        &project,
        json!([
            {"name": "far", "command": "echo far", "remote": true},
            {"name": "farther", "command": "echo farther", "remote": true, "depends_on": ["far"]},
            {"name": "near", "command": "echo near"},
        ]),
    );
    let out = common::sykli(&project, &["--json", "run", "--remote", url, "--no-cache"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = v["data"]["run_id"].as_str().unwrap().to_owned();

    let out = common::sykli(dir, &["--json", "ps", url]);
    assert!(out.status.success(), "{}", common::text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["data"]["runs"].as_array().unwrap();
    let run = runs
        .iter()
        .find(|r| r["run_id"] == run_id.as_str())
        .unwrap_or_else(|| panic!("run {run_id} not listed: {v}"));
    let mut tasks: Vec<(String, String, String)> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["state"].to_string(),
                t["host"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    tasks.sort();
    assert_eq!(tasks.len(), 2, "only the remote tasks ran there: {tasks:?}");
    assert_eq!(tasks[0].0, "far");
    assert_eq!(tasks[1].0, "farther");
    for (_, state, h) in &tasks {
        assert!(state.contains("passed"), "{tasks:?}");
        assert!(h.starts_with(host), "{tasks:?}");
    }
}

/// A worker groups the actions it runs into the client's runs (by the `RequestMetadata`
/// sykli sends), and `sykli ps` on the worker lists the run with its tasks and the host.
#[test]
fn ps_on_a_worker_lists_the_clients_run_and_its_remote_tasks() {
    let p = tempfile::tempdir().unwrap();
    let w = common::worker::Worker::start(&p.path().join("store"), &["--no-sandbox"]);
    ps_lists_remote_run(p.path(), &w.url, "sykli-worker@127.0.0.1:");
}

/// The same on `sykli serve` with a joined worker: serve groups the actions it queues.
#[test]
fn ps_on_serve_lists_the_clients_run_and_its_remote_tasks() {
    let p = tempfile::tempdir().unwrap();
    let mut pool = common::pool::Pool::start(p.path(), "1s", &[]);
    pool.add_worker(2, &[]);
    ps_lists_remote_run(p.path(), &pool.url, "sykli-serve@127.0.0.1:");
}

/// A container task's resource use comes from the engine's stats: a busy container shows CPU
/// and memory in the observer's stream (needs the Docker engine and the test images CI builds).
#[test]
fn a_container_tasks_resources_come_from_the_engine_stats() {
    let p = tempfile::tempdir().unwrap();
    let dir = p.path();
    write_pipeline(
        dir,
        json!([{
            "name": "boxed",
            "container": "sykli-test/busybox:latest",
            "command": "i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done; echo spun",
        }]),
    );
    let mut run = spawn_run(dir, &[]);
    let obs = observe(dir, &run.addr, &[]);
    let (lines, code, stderr) = obs.rest();
    assert_eq!(wait(&mut run.child), Some(0));
    assert_eq!(code, Some(0), "{stderr}");
    let samples: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("task_resources boxed: cpu "))
        .collect();
    assert!(!samples.is_empty(), "no resource sample: {lines:?}");
    // `cpu N% rss NM`: a busy loop uses CPU.
    assert!(
        samples.iter().any(|l| {
            let cpu = l.split("cpu ").nth(1).and_then(|r| r.split('%').next());
            cpu.and_then(|c| c.parse::<f64>().ok())
                .is_some_and(|c| c > 10.0)
        }),
        "{samples:?}"
    );
    check(&lines, dir, &run.run_id);
}

/// A remote task's resource samples reach the run that shipped it: the server puts them in
/// the action's operation, the client's task reports them as its own `task_resources`, and an
/// observer of `sykli run --remote URL --serve` sees them while the task still runs (it burns
/// CPU until the test creates `go`, only after the sample was seen).
fn a_remote_tasks_samples_reach_the_coordinating_run(dir: &Path, url: &str) {
    let go = dir.join("go");
    let g = go.display();
    write_pipeline(
        dir,
        json!([{"name": "burn", "remote": true, "command": format!(
            "i=0; while [ ! -e '{g}' ] && [ $i -lt 30000000 ]; do i=$((i+1)); done; test -e '{g}'")}]),
    );
    let mut run = spawn_run(dir, &["--remote", url, "--no-cache"]);
    let obs = observe(dir, &run.addr, &["--task", "burn"]);
    let sample = obs.until("a resource sample of the remote task", |l| {
        l.contains("task_resources burn:")
    });
    assert!(!go.exists(), "sampled while it runs: {sample}");
    assert!(!sample.contains("rss 0M"), "memory in use: {sample}");
    std::fs::write(&go, "").unwrap();
    let done = obs.until("the task's end", |l| l.contains("task_finished burn"));
    assert!(done.contains("passed"), "{done}");
    assert_eq!(wait(&mut run.child), Some(0));
}

#[test]
fn a_remote_tasks_resource_samples_from_a_worker_reach_the_coordinating_run() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::worker::Worker::start(&dir.path().join("store"), &["--no-sandbox"]);
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    a_remote_tasks_samples_reach_the_coordinating_run(&project, &w.url);
}

/// Through serve: the joined worker reports the lease's samples, serve puts them in the
/// operation.
#[test]
fn a_remote_tasks_resource_samples_through_serve_reach_the_coordinating_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = common::pool::Pool::start(dir.path(), "1s", &[]);
    pool.add_worker(2, &["--no-sandbox"]);
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let url = pool.url.clone();
    a_remote_tasks_samples_reach_the_coordinating_run(&project, &url);
}
