//! Chaos tests of `sykli serve` with joined `sykli worker --join` processes over loopback:
//! workers killed, stopped, added and drained, an action that kills its workers, and serve
//! itself killed with actions queued. Each test prints its figures.

mod common;

use std::time::{Duration, Instant};

use common::pool::{Pool, client, execute, outcome, shell_action, wait_file};
use nix::sys::signal::Signal;

/// Heartbeats in these tests: leases expire after 3 of them (600 ms).
const HEARTBEAT: &str = "200ms";
const DEADLINE: Duration = Duration::from_secs(60);

fn nonce() -> String {
    format!("{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// How many times serve accepted a result for each operation (from its event log).
fn completions(log: &str) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for line in log.lines().filter(|l| l.contains(" completed by worker ")) {
        if let Some(op) = line
            .split_whitespace()
            .find(|w| w.starts_with("operations/"))
        {
            *out.entry(op.to_owned()).or_insert(0) += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_action_is_requeued_and_each_action_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    for _ in 0..3 {
        pool.add_worker(1, &[]);
    }
    let c = client(&pool.url).await;
    let started = Instant::now();
    let mut runs = Vec::new();
    for i in 0..6 {
        let script = format!(
            "echo $PPID > {m}/start-{i}-$$.tmp && mv {m}/start-{i}-$$.tmp {m}/start-{i}-$$ ; sleep 0.5; echo {n}",
            m = marks.display(),
            n = nonce()
        );
        let a = shell_action(&c, &script, &[], false).await;
        let c = c.clone();
        runs.push(tokio::spawn(async move { execute(&c, &a).await }));
    }
    // The first action to start: kill its worker mid-action.
    let until = Instant::now() + DEADLINE;
    let victim_pid = loop {
        let first = std::fs::read_dir(&marks)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| !e.file_name().to_string_lossy().ends_with(".tmp"));
        if let Some(e) = first {
            break wait_file_trimmed(&e.path());
        }
        assert!(Instant::now() < until, "no action started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let victim = pool.worker_of(victim_pid);
    let killed_at = Instant::now();
    pool.workers[victim].kill9();
    for r in runs {
        let resp = r.await.unwrap();
        assert_eq!(outcome(&resp).0, 0, "{:?}", outcome(&resp));
        assert_eq!(outcome(&resp).1, Some(0), "{:?}", outcome(&resp));
    }
    let log = pool.serve.stderr();
    let done = completions(&log);
    assert_eq!(done.len(), 6, "{log}");
    assert!(
        done.values().all(|n| *n == 1),
        "an action was reported twice: {done:?}"
    );
    let status = pool.status();
    assert!(status["requeued"].as_u64().unwrap() >= 1, "{status}");
    println!(
        "kill -9 mid-action: 6 actions done in {:?} ({:?} after the kill), requeued {}, completions {:?}",
        started.elapsed(),
        killed_at.elapsed(),
        status["requeued"],
        done.values().collect::<Vec<_>>()
    );
}

fn wait_file_trimmed(p: &std::path::Path) -> i32 {
    wait_file(p, DEADLINE).parse().expect("a pid")
}
