//! Observing and cancelling the runs a `sykli worker` or a `sykli serve` executes for a
//! client elsewhere: `sykli cancel SERVER RUN TASK` kills the remote action's processes on
//! the server and the client's task fails saying it was cancelled there; `sykli observe
//! SERVER --task T` shows the remote task's output lines and its resource samples (on serve,
//! those its joined worker relays) while it still runs. Real binaries, loopback only,
//! deadlines not sleeps.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::observer::Observer;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(120);

/// A loop of `sleep 0.05` that ends once FILE exists (bounded: 60 s), then checks it.
fn wait_for(file: &Path) -> String {
    let f = file.display();
    format!(
        "i=0; while [ ! -e '{f}' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; \
         test -e '{f}'"
    )
}

fn write_pipeline(dir: &Path, tasks: serde_json::Value) {
    std::fs::write(
        dir.join("sykli.json"),
        json!({"version": "2", "tasks": tasks}).to_string(),
    )
    .unwrap();
}

/// A busy loop (it burns CPU, so it has resource samples to show) that ends once FILE exists
/// (bounded: 30,000,000 rounds), then checks it.
fn burn_until(file: &Path) -> String {
    let f = file.display();
    format!("i=0; while [ ! -e '{f}' ] && [ $i -lt 30000000 ]; do i=$((i+1)); done; test -e '{f}'")
}

/// `sykli --json run --remote URL --no-cache --keep-going` in `project`, its stdout read to
/// the end on a thread.
struct ClientRun {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl ClientRun {
    fn start(project: &Path, url: &str) -> ClientRun {
        let mut child = common::command(
            project,
            &[
                "--json",
                "run",
                "--remote",
                url,
                "--no-cache",
                "--keep-going",
            ],
        )
        .env_remove("SYKLI_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        ClientRun { child, stdout: rx }
    }

    /// Its exit code and `--json` document, within the deadline.
    fn finish(mut self) -> (Option<i32>, serde_json::Value) {
        let until = Instant::now() + DEADLINE;
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            assert!(
                Instant::now() < until,
                "the run did not end in {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = self.stdout.recv_timeout(DEADLINE).unwrap();
        let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        (code, v)
    }
}

impl Drop for ClientRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The id of the run whose task `task` runs on the server at `url` (`sykli ps`, bounded).
fn running_run(dir: &Path, url: &str, task: &str) -> String {
    let until = Instant::now() + DEADLINE;
    loop {
        let out = common::sykli(dir, &["--json", "ps", url]);
        assert!(out.status.success(), "{}", common::text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for run in v["data"]["runs"].as_array().unwrap() {
            let running = run["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["name"] == task && t["state"] == "running");
            if running {
                return run["run_id"].as_str().unwrap().to_owned();
            }
        }
        assert!(
            Instant::now() < until,
            "task {task} never ran on {url}: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_pid(path: &Path) -> i32 {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < until, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a live (not zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(Result::ok).any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some(i) = stat.rfind(')') else {
            return false;
        };
        let f: Vec<&str> = stat[i + 1..].split_whitespace().collect();
        // After the name: state(3) ppid(4) pgrp(5).
        f.len() > 2 && f[2] == pgid.to_string() && f[0] != "Z" && f[0] != "X"
    })
}

fn wait_group_gone(pgid: i32, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if !group_alive(pgid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !group_alive(pgid)
}

/// The client runs `hang` (a long loop in its own process group, with a grandchild) and
/// `other` on the server at `url`; `sykli cancel URL RUN hang` from a second process kills
/// hang's process group on the server, the client's run fails with hang failed "cancelled
/// on the server", and `other` passes.
fn cancel_kills_the_remote_task_and_fails_it(dir: &Path, url: &str, server: &str) {
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let (pidfile, go) = (dir.join("hang.pid"), dir.join("go"));
    write_pipeline(
        &project,
        json!([
            {"name": "hang", "remote": true, "command": format!(
                "echo $$ > '{}'; sleep 1000 & echo started; {}; wait",
                pidfile.display(), wait_for(&dir.join("never")))},
            {"name": "other", "remote": true, "command": wait_for(&go)},
        ]),
    );
    let run = ClientRun::start(&project, url);
    let run_id = running_run(dir, url, "hang");
    let pgid = read_pid(&pidfile);
    assert!(group_alive(pgid), "hang runs as process group {pgid}");

    let out = common::sykli(dir, &["cancel", url, &run_id, "hang"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        wait_group_gone(pgid, Duration::from_secs(20)),
        "hang's process group {pgid} is still alive on the server"
    );
    std::fs::write(&go, "").unwrap();
    let (code, v) = run.finish();
    assert_eq!(code, Some(1), "a cancelled task fails the run: {v}");
    let tasks = v["data"]["tasks"].as_array().unwrap();
    let task = |name: &str| tasks.iter().find(|t| t["name"] == name).unwrap().clone();
    let hang = task("hang");
    assert_eq!(hang["status"], "errored", "{hang}");
    assert_eq!(hang["attempts"], 1, "not tried again: {hang}");
    let message = hang["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("cancelled on the server {url}"))
            && message.contains(&format!("cancelled on {server}"))
            && message.contains("sykli cancel"),
        "{message}"
    );
    assert_eq!(task("other")["status"], "passed", "{v}");
}

#[test]
fn cancel_on_a_worker_kills_the_remote_task_and_the_client_says_it_was_cancelled_there() {
    let p = tempfile::tempdir().unwrap();
    let w =
        common::worker::Worker::start(&p.path().join("store"), &["--no-sandbox", "--jobs", "4"]);
    cancel_kills_the_remote_task_and_fails_it(p.path(), &w.url, "sykli-worker@127.0.0.1:");
}

#[test]
fn cancel_on_serve_withdraws_the_lease_and_the_joined_worker_kills_the_task() {
    let p = tempfile::tempdir().unwrap();
    let mut pool = common::pool::Pool::start(p.path(), "1s", &[]);
    pool.add_worker(4, &[]);
    let url = pool.url.clone();
    cancel_kills_the_remote_task_and_fails_it(p.path(), &url, "sykli serve");
}

/// `sykli cancel WORKER RUN` (no task) cancels every action of the run on the worker.
#[test]
fn cancel_of_a_whole_run_on_a_worker_cancels_each_of_its_actions() {
    let p = tempfile::tempdir().unwrap();
    let dir = p.path();
    let w = common::worker::Worker::start(&dir.join("store"), &["--no-sandbox", "--jobs", "4"]);
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let never = wait_for(&dir.join("never"));
    let tasks: Vec<serde_json::Value> = ["a", "b"]
        .iter()
        .map(|t| {
            json!({"name": t, "remote": true, "command": format!(
                "echo $$ > '{}'; {never}", dir.join(format!("{t}.pid")).display())})
        })
        .collect();
    write_pipeline(&project, json!(tasks));
    let run = ClientRun::start(&project, &w.url);
    let run_id = running_run(dir, &w.url, "a");
    let groups = [read_pid(&dir.join("a.pid")), read_pid(&dir.join("b.pid"))];
    let out = common::sykli(dir, &["cancel", &w.url, &run_id]);
    assert!(out.status.success(), "{}", common::text(&out));
    for g in groups {
        assert!(
            wait_group_gone(g, Duration::from_secs(20)),
            "group {g} is still alive"
        );
    }
    let (code, v) = run.finish();
    assert_eq!(code, Some(1), "{v}");
    for t in v["data"]["tasks"].as_array().unwrap() {
        assert_eq!(t["status"], "errored", "{t}");
        assert!(
            t["message"]
                .as_str()
                .unwrap()
                .contains("cancelled on the server"),
            "{t}"
        );
    }
}

/// Serve with a plain `sykli worker` behind `--worker URL`: the withdrawn lease is stopped on
/// the plain worker with CancelOperation.
#[test]
fn cancel_on_serve_stops_the_action_on_a_static_worker_too() {
    let p = tempfile::tempdir().unwrap();
    let w =
        common::worker::Worker::start(&p.path().join("store"), &["--no-sandbox", "--jobs", "4"]);
    let pool = common::pool::Pool::start(p.path(), "1s", &["--worker", &w.url]);
    let url = pool.url.clone();
    cancel_kills_the_remote_task_and_fails_it(p.path(), &url, "sykli serve");
}

/// `sykli observe SERVER --task talk` shows the line the remote task printed while the task
/// still runs (it waits for a file the test creates only after the observer saw the line),
/// and a CPU/memory sample of it naming it, with memory in use (the task burns CPU while it
/// waits).
fn observe_shows_remote_output_and_resources_while_it_runs(dir: &Path, url: &str) {
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let go = dir.join("go");
    write_pipeline(
        &project,
        json!([{"name": "talk", "remote": true, "command": format!(
            "echo first-line; {}; echo second-line", burn_until(&go))}]),
    );
    let run = ClientRun::start(&project, url);
    let run_id = running_run(dir, url, "talk");
    let obs = Observer::start(dir, url, &["--run", &run_id, "--task", "talk"]);
    obs.until("the first line", |l| {
        l.contains("task_output talk: first-line")
    });
    assert!(!go.exists());
    let sample = obs.until("a resource sample", |l| l.contains("task_resources talk:"));
    assert!(!go.exists(), "sampled while it runs");
    assert!(rss_mib(&sample) > 0.0, "memory in use: {sample}");
    std::fs::write(&go, "").unwrap();
    obs.until("the second line", |l| {
        l.contains("task_output talk: second-line")
    });
    let done = obs.until("the task's end", |l| l.contains("task_finished talk"));
    assert!(done.contains("passed"), "{done}");
    let (code, v) = run.finish();
    assert_eq!(code, Some(0), "{v}");
}

/// The memory of an observe `task_resources` line (`... cpu 98% rss 3M`), in MiB.
fn rss_mib(line: &str) -> f64 {
    let rss = line
        .rsplit_once(" rss ")
        .unwrap_or_else(|| panic!("no rss in {line}"))
        .1
        .trim();
    let (num, mult) = match rss.strip_suffix('G') {
        Some(n) => (n, 1024.0),
        None => (
            rss.strip_suffix('M')
                .unwrap_or_else(|| panic!("no unit in {line}")),
            1.0,
        ),
    };
    num.parse::<f64>().unwrap_or_else(|e| panic!("{e}: {line}")) * mult
}

#[test]
fn observe_on_a_worker_shows_a_remote_tasks_output_and_resources_while_it_runs() {
    let p = tempfile::tempdir().unwrap();
    let w = common::worker::Worker::start(&p.path().join("store"), &["--no-sandbox"]);
    observe_shows_remote_output_and_resources_while_it_runs(p.path(), &w.url);
}

/// Serve has no processes of its own to sample: the joined worker samples the lease's and
/// serve relays them to its observers.
#[test]
fn observe_on_serve_shows_a_joined_workers_remote_task_output_and_resources_while_it_runs() {
    let p = tempfile::tempdir().unwrap();
    let mut pool = common::pool::Pool::start(p.path(), "1s", &[]);
    pool.add_worker(2, &[]);
    let url = pool.url.clone();
    observe_shows_remote_output_and_resources_while_it_runs(p.path(), &url);
}
