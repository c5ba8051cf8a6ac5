//! The autoscaler of `sykli serve` with real processes over loopback: a burst of queued
//! actions starts local `sykli worker --join` processes that run them, the pool shrinks
//! back once the load is gone, and no worker outlives serve (SIGTERM or kill -9).

mod common;

use std::time::{Duration, Instant};

use common::pool::{Pool, client, execute, outcome, shell_action};
use nix::sys::signal::Signal;

const HEARTBEAT: &str = "200ms";
const DEADLINE: Duration = Duration::from_secs(90);

fn nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Process ids of the workers serve's autoscaler started (from its event log).
fn started_pids(log: &str) -> Vec<i32> {
    log.lines()
        .filter(|l| l.contains("autoscale: started worker process"))
        .filter_map(|l| l.split_once("(pid ")?.1.split_once(',')?.0.parse().ok())
        .collect()
}

/// Whether process `pid` is gone (no such process, or a zombie nobody reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn wait_gone(pids: &[i32], deadline: Duration) {
    let until = Instant::now() + deadline;
    while !pids.iter().all(|p| gone(*p)) {
        let alive: Vec<_> = pids.iter().filter(|p| !gone(**p)).collect();
        assert!(Instant::now() < until, "workers still alive: {alive:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn autoscaled(dir: &std::path::Path, min: &str, max: &str) -> Pool {
    Pool::start(
        dir,
        HEARTBEAT,
        &[
            "--autoscale-min",
            min,
            "--autoscale-max",
            max,
            "--autoscale-jobs",
            "2",
            "--autoscale-tick",
            "100ms",
            "--autoscale-up-cooldown",
            "300ms",
            "--autoscale-down-cooldown",
            "2s",
            "--autoscale-stop-grace",
            "20s",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_grows_the_pool_from_zero_and_it_shrinks_back_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let pool = autoscaled(dir.path(), "0", "2");
    assert_eq!(pool.status()["workers"].as_array().unwrap().len(), 0);
    let c = client(&pool.url).await;
    let started = Instant::now();
    let mut runs = Vec::new();
    let n = nonce();
    for i in 0..8 {
        let a = shell_action(&c, &format!("sleep 1; echo {n}-{i}"), &[], false).await;
        let c = c.clone();
        runs.push(tokio::spawn(async move { execute(&c, &a).await }));
    }
    let peak = pool.wait_status("two autoscaled workers", DEADLINE, |s| {
        s["workers"].as_array().is_some_and(|w| w.len() == 2)
    });
    let grown = started.elapsed();
    for r in runs {
        let resp = r.await.unwrap();
        assert_eq!(outcome(&resp).0, 0, "{:?}", outcome(&resp));
        assert_eq!(outcome(&resp).1, Some(0), "{:?}", outcome(&resp));
    }
    let ran = started.elapsed();
    let log = pool.serve.stderr();
    assert!(log.contains("autoscale: 0 -> "), "{log}");
    let done: usize = log.matches(" completed by worker ").count();
    assert_eq!(done, 8, "{log}");
    // Load gone: after the down cooldown the pool shrinks to zero, one worker at a time.
    let idle = pool.wait_status("the pool shrunk to zero", DEADLINE, |s| {
        s["workers"].as_array().is_some_and(|w| w.is_empty())
    });
    let shrunk = started.elapsed();
    let log = pool.serve.stderr();
    let pids = started_pids(&log);
    assert_eq!(pids.len(), 2, "two workers started: {log}");
    wait_gone(&pids, DEADLINE);
    assert!(log.contains("autoscale: 2 -> 1 workers"), "{log}");
    assert!(log.contains("autoscale: 1 -> 0 workers"), "{log}");
    println!(
        "autoscale 0..2: 2 workers {grown:?} after a burst of 8 x 1 s actions (peak {}), all ran by {ran:?}, back to 0 at {shrunk:?} ({} completed)",
        peak["running"], idle["completed"]
    );
}

#[test]
fn no_autoscaled_worker_outlives_serve_after_sigterm_or_kill_9() {
    for (how, sig) in [("SIGTERM", Signal::SIGTERM), ("kill -9", Signal::SIGKILL)] {
        let dir = tempfile::tempdir().unwrap();
        let mut pool = autoscaled(dir.path(), "2", "2");
        pool.wait_status("two workers at min 2", DEADLINE, |s| {
            s["workers"].as_array().is_some_and(|w| w.len() == 2)
        });
        let pids = started_pids(&pool.serve.stderr());
        assert_eq!(pids.len(), 2, "{}", pool.serve.stderr());
        let at = Instant::now();
        pool.serve.signal(sig);
        let status = pool.serve.wait_exit(DEADLINE);
        if sig == Signal::SIGTERM {
            assert!(status.success(), "{status}: {}", pool.serve.stderr());
            // serve drains and reaps its workers before it exits.
            let log = pool.serve.stderr();
            assert!(pids.iter().all(|p| gone(*p)), "{log}");
            assert_eq!(log.matches(") stopped: exit status: 0").count(), 2, "{log}");
        }
        wait_gone(&pids, DEADLINE);
        println!(
            "serve stopped by {how}: its 2 workers gone {:?} after the signal",
            at.elapsed()
        );
    }
}

#[test]
fn bad_autoscale_flags_fail_the_start_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store").display().to_string();
    for (flags, needle) in [
        (
            vec!["--autoscale-min", "3", "--autoscale-max", "2"],
            "autoscale min 3 and max 2",
        ),
        (
            vec![
                "--autoscale-min",
                "0",
                "--autoscale-max",
                "2",
                "--autoscale-alpha",
                "0",
            ],
            "alpha 0",
        ),
        (
            vec![
                "--autoscale-min",
                "0",
                "--autoscale-max",
                "2",
                "--autoscale-down",
                "0.9",
            ],
            "scale-down (0.9) < scale-up (0.8)",
        ),
        (
            vec![
                "--autoscale-min",
                "0",
                "--autoscale-max",
                "2",
                "--autoscale-label",
                "x",
            ],
            "--autoscale-label x: expected K=V",
        ),
        (vec!["--autoscale-min", "1"], "--autoscale-max"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sykli"))
            .args(["serve", "--listen", "127.0.0.1:0", "--store", &store])
            .args(&flags)
            .env_remove("SYKLI_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{flags:?}: {stderr} lacks {needle}"
        );
        assert!(out.stdout.is_empty(), "{flags:?}: serve started");
    }
}
