//! Stopping tasks: timeouts, cancellation, stubborn and forking children. Every test puts a
//! unique marker in the command line and checks `/proc` that nothing carrying it survives.

mod common;

use std::time::{Duration, Instant};

use common::{Project, marker, processes_with, wait_for};
use serde_json::json;
use sykli_runtime::TaskStatus;

/// Waits until no process carries `marker` (reaping by init can take a moment).
async fn assert_gone(marker: &str) {
    wait_for(
        Duration::from_secs(5),
        &format!("no process to carry {marker}"),
        || processes_with(marker).is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_a_child_that_ignores_sigterm() {
    let p = Project::new();
    let m = marker("stubborn");
    let mut c = p.config();
    c.kill_grace = Duration::from_millis(300);
    let t0 = Instant::now();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [{"name": "hang", "timeout": 1, "command":
                format!("trap '' TERM; sh -c \"trap '' TERM; sleep 30; : {m}\" & echo started; wait; wait")}]}),
            c,
        )
        .await;
    let r = ev.report("hang");
    assert_eq!(r.status, TaskStatus::Errored);
    assert_eq!(r.message.as_deref(), Some("timed out after 1s"));
    assert_eq!(ev.output("hang"), ["started"]);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(s.errored, 1);
    assert_gone(&m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_retried_only_when_asked() {
    let p = Project::new();
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "once", "timeout": 1, "command": "echo x >> once; sleep 5"},
                {"name": "twice", "timeout": 1, "retry": 1, "command": "echo x >> twice; sleep 5"},
            ]}),
            {
                let mut c = p.config();
                c.keep_going = true;
                c
            },
        )
        .await;
    assert_eq!(ev.report("once").attempts, 1);
    assert_eq!(p.read("once").lines().count(), 1);
    let twice = ev.report("twice");
    assert_eq!((twice.status, twice.attempts), (TaskStatus::Errored, 2));
    assert_eq!(p.read("twice").lines().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_kills_a_forked_grandchild() {
    let p = Project::new();
    let m = marker("cancel");
    let c = p.config();
    let cancel = c.cancel.clone();
    let canceller = tokio::spawn({
        let ready = p.path("ready");
        let m = m.clone();
        async move {
            wait_for(Duration::from_secs(20), "the task to start", || {
                ready.exists()
            })
            .await;
            // The check below is not vacuous: the grandchild is alive now.
            let alive = !processes_with(&m).is_empty();
            cancel.cancel();
            alive
        }
    });
    let t0 = Instant::now();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "forks", "command": format!("sh -c 'sleep 1000; : {m}' & touch ready; wait")},
                {"name": "later", "command": "true", "depends_on": ["forks"]},
            ]}),
            c,
        )
        .await;
    assert!(canceller.await.unwrap(), "the grandchild was never seen");
    assert!(s.interrupted && !s.ok());
    let r = ev.report("forks");
    assert_eq!(r.status, TaskStatus::Errored);
    assert!(r.message.unwrap().contains("cancelled"));
    let later = ev.report("later");
    assert_eq!(later.status, TaskStatus::Blocked);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_gone(&m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_children_die_with_a_finished_task() {
    let p = Project::new();
    let m = marker("orphan");
    let t0 = Instant::now();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "leaves", "command": format!("sh -c 'sleep 1000; : {m}' & echo bye")},
            ]}),
            p.config(),
        )
        .await;
    assert!(s.ok(), "{:?}", ev.events());
    // The task is not held up by the grandchild holding its output pipe.
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(ev.output("leaves"), ["bye"]);
    assert_gone(&m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_killed_by_a_signal_reports_128_plus_the_signal() {
    let p = Project::new();
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [{"name": "killed", "command": "kill -9 $$"}]}),
            p.config(),
        )
        .await;
    let r = ev.report("killed");
    assert_eq!((r.status, r.exit_code), (TaskStatus::Failed, Some(137)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_skips_the_grace_period() {
    let p = Project::new();
    let m = marker("kill");
    let mut c = p.config();
    c.kill_grace = Duration::from_secs(60);
    let (cancel, kill) = (c.cancel.clone(), c.kill.clone());
    let (ready, termed) = (p.path("ready"), p.path("termed"));
    let stopper = tokio::spawn(async move {
        wait_for(Duration::from_secs(20), "the task to start", || {
            ready.exists()
        })
        .await;
        // A first, graceful stop: the task ignores SIGTERM and would get 60 s.
        cancel.cancel();
        wait_for(Duration::from_secs(20), "the task to get SIGTERM", || {
            termed.exists()
        })
        .await;
        // The second stop does not wait.
        kill.cancel();
    });
    let t0 = Instant::now();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [{"name": "stubborn", "command":
                format!("trap '' TERM; sleep 60 & trap 'touch termed' TERM; touch ready; wait; wait; : {m}")}]}),
            c,
        )
        .await;
    stopper.await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    assert!(s.interrupted);
    assert_eq!(ev.status("stubborn"), TaskStatus::Errored);
    assert_gone(&m).await;
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
fn parent_of(pid: &str) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Simple commands are exec'd without a shell, as make does (the `sleep` is a child of the
/// runtime itself); shell syntax, shell builtins and a missing program still go through
/// `/bin/sh`, with the shell's exit codes and messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_commands_run_without_a_shell_and_the_rest_with_one() {
    let p = Project::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let m = format!("1000.{}{nanos}", std::process::id());
    let mut c = p.config();
    c.keep_going = true;
    let needle = format!("sleep {m}");
    let watcher = tokio::spawn(async move {
        let mut found = None;
        wait_for(
            Duration::from_secs(5),
            "the direct `sleep` to start",
            || {
                found = processes_with(&needle).first().cloned();
                found.is_some()
            },
        )
        .await;
        let line = found.unwrap_or_default();
        parent_of(line.split(':').next().unwrap_or_default())
    });
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "direct", "command": format!("sleep {m}"), "timeout": 2},
                {"name": "words", "command": "echo a=b --c"},
                {"name": "shell", "command": "exit 3"},
                {"name": "missing", "command": "no-such-program-sykli arg"},
            ]}),
            c,
        )
        .await;
    assert_eq!(
        watcher.await.unwrap(),
        Some(std::process::id()),
        "no shell between the runtime and a simple command"
    );
    assert_eq!(ev.status("direct"), TaskStatus::Errored, "timed out");
    assert_eq!(ev.output("words"), ["a=b --c"]);
    assert_eq!(ev.report("shell").exit_code, Some(3));
    let missing = ev.report("missing");
    assert_eq!(missing.exit_code, Some(127), "{missing:?}");
    assert!(
        ev.output("missing").iter().any(|l| l.contains("not found")),
        "{:?}",
        ev.output("missing")
    );
}
