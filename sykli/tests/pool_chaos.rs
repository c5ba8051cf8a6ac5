//! Chaos tests of `sykli serve` with joined `sykli worker --join` processes over loopback:
//! workers killed, stopped, added and drained, an action that kills its workers, and serve
//! itself killed with actions queued. Each test prints its figures.

mod common;

use std::os::unix::process::ExitStatusExt;
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

/// A script that records its worker's pid in `marks/start-TAG-PID`, sleeps, and records
/// its end in `marks/end-TAG-PID`.
fn marked(marks: &std::path::Path, tag: &str, sleep: &str) -> String {
    format!(
        "echo $PPID > {m}/start-{tag}-$PPID.tmp && mv {m}/start-{tag}-$PPID.tmp {m}/start-{tag}-$PPID; \
         sleep {sleep}; echo $PPID > {m}/end-{tag}-$PPID.tmp && mv {m}/end-{tag}-$PPID.tmp {m}/end-{tag}-$PPID; echo {n}",
        m = marks.display(),
        n = nonce()
    )
}

/// The pids of the workers that started (or ended: `kind`) the action tagged `tag`.
fn marks_of(marks: &std::path::Path, kind: &str, tag: &str) -> Vec<i32> {
    let prefix = format!("{kind}-{tag}-");
    let mut out: Vec<i32> = std::fs::read_dir(marks)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&prefix)
                .filter(|p| !p.ends_with(".tmp"))
                .and_then(|p| p.parse().ok())
        })
        .collect();
    out.sort();
    out
}

async fn wait_marks(marks: &std::path::Path, kind: &str, tag: &str, n: usize) -> Vec<i32> {
    let until = Instant::now() + DEADLINE;
    loop {
        let m = marks_of(marks, kind, tag);
        if m.len() >= n {
            return m;
        }
        assert!(
            Instant::now() < until,
            "no {kind} mark of {tag} within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn marks_dir(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    marks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_added_mid_run_gets_work() {
    let dir = tempfile::tempdir().unwrap();
    let marks = marks_dir(&dir);
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    pool.add_worker(1, &[]);
    let c = client(&pool.url).await;
    let started = Instant::now();
    let mut runs = Vec::new();
    for i in 0..10 {
        let a = shell_action(&c, &marked(&marks, &format!("a{i}"), "0.3"), &[], false).await;
        let c = c.clone();
        runs.push(tokio::spawn(async move { execute(&c, &a).await }));
    }
    wait_marks(&marks, "end", "a0", 1).await;
    let added_at = started.elapsed();
    let added = pool.add_worker(1, &[]);
    let added_pid = pool.workers[added].pid();
    for r in runs {
        assert_eq!(outcome(&r.await.unwrap()).1, Some(0));
    }
    let ran_on_new = (0..10)
        .filter(|i| marks_of(&marks, "start", &format!("a{i}")).contains(&added_pid))
        .count();
    assert!(ran_on_new >= 1, "the added worker got no work");
    println!(
        "added a worker after {added_at:?}: it ran {ran_on_new} of 10 actions; all done in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_worker_loses_its_lease_and_its_late_result_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let marks = marks_dir(&dir);
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    for _ in 0..3 {
        pool.add_worker(1, &[]);
    }
    let c = client(&pool.url).await;
    let a = shell_action(&c, &marked(&marks, "s", "1"), &[], false).await;
    let run = {
        let c = c.clone();
        tokio::spawn(async move { execute(&c, &a).await })
    };
    let first = wait_marks(&marks, "start", "s", 1).await[0];
    let stopped = pool.worker_of(first);
    pool.workers[stopped].signal(Signal::SIGSTOP);
    let stopped_at = Instant::now();
    let resp = run.await.unwrap();
    let finished_elsewhere = stopped_at.elapsed();
    assert_eq!(outcome(&resp).1, Some(0), "{:?}", outcome(&resp));
    let ran = marks_of(&marks, "start", "s");
    assert_eq!(ran.len(), 2, "it ran once more elsewhere: {ran:?}");
    // The stopped worker's own action ends too (its process group was not stopped).
    let until = Instant::now() + DEADLINE;
    while !marks_of(&marks, "end", "s").contains(&first) {
        assert!(
            Instant::now() < until,
            "the stopped worker's action never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.workers[stopped].signal(Signal::SIGCONT);
    pool.serve
        .wait_log("a discarded late result", DEADLINE, |l| {
            l.contains("discarded a late result")
        });
    let status = pool.wait_status("the worker back", DEADLINE, |s| {
        s["workers"]
            .as_array()
            .is_some_and(|ws| ws.iter().all(|w| w["state"] == "ready"))
    });
    assert_eq!(status["discarded"], 1, "{status}");
    let done = completions(&pool.serve.stderr());
    assert_eq!(done.values().sum::<usize>(), 1, "{done:?}");
    println!(
        "SIGSTOP: the action finished elsewhere {finished_elsewhere:?} after the stop \
         (heartbeat {HEARTBEAT}, 3 misses); after SIGCONT the stale result was discarded \
         and the worker is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_action_that_kills_its_worker_three_times_fails_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    for _ in 0..3 {
        pool.add_worker(1, &[]);
    }
    let c = client(&pool.url).await;
    let a = shell_action(&c, &format!("kill -9 $PPID; echo {}", nonce()), &[], false).await;
    let started = Instant::now();
    let resp = execute(&c, &a).await;
    let (code, _, message) = outcome(&resp);
    assert_eq!(code, tonic::Code::Aborted as i32, "{message}");
    assert!(message.contains("3 times"), "{message}");
    for w in &mut pool.workers {
        assert!(w.wait_exit(DEADLINE).signal().is_some());
    }
    let named = message.matches(':').count();
    assert!(named >= 3, "the three workers are named: {message}");
    println!(
        "a worker-killing action failed after {:?}: {message}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draining_worker_finishes_its_action_and_takes_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let marks = marks_dir(&dir);
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    for _ in 0..3 {
        pool.add_worker(1, &[]);
    }
    let c = client(&pool.url).await;
    let a = shell_action(&c, &marked(&marks, "d", "1"), &[], false).await;
    let first = {
        let c = c.clone();
        tokio::spawn(async move { execute(&c, &a).await })
    };
    let pid = wait_marks(&marks, "start", "d", 1).await[0];
    let draining = pool.worker_of(pid);
    pool.workers[draining].signal(Signal::SIGTERM);
    pool.serve
        .wait_log("the drain", DEADLINE, |l| l.contains("drains"));
    let mut later = Vec::new();
    for i in 0..6 {
        let a = shell_action(&c, &marked(&marks, &format!("n{i}"), "0.1"), &[], false).await;
        let c = c.clone();
        later.push(tokio::spawn(async move { execute(&c, &a).await }));
    }
    let resp = first.await.unwrap();
    assert_eq!(outcome(&resp).1, Some(0), "{:?}", outcome(&resp));
    assert_eq!(
        marks_of(&marks, "end", "d"),
        vec![pid],
        "{}\n{}",
        pool.serve.stderr(),
        pool.workers[draining].stderr()
    );
    let exit = pool.workers[draining].wait_exit(DEADLINE);
    assert!(exit.success(), "the drained worker exits 0: {exit:?}");
    for r in later {
        assert_eq!(outcome(&r.await.unwrap()).1, Some(0));
    }
    for i in 0..6 {
        let ran = marks_of(&marks, "start", &format!("n{i}"));
        assert!(!ran.contains(&pid), "n{i} reached the draining worker");
    }
    println!(
        "drain: the running action completed on the draining worker, 6 later ones ran elsewhere, it exited 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_killed_with_actions_queued_loses_none_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let marks = marks_dir(&dir);
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    let c = client(&pool.url).await;
    let mut runs = Vec::new();
    for i in 0..5 {
        let a = shell_action(&c, &marked(&marks, &format!("q{i}"), "0.1"), &[], false).await;
        let c = c.clone();
        runs.push(tokio::spawn(async move { execute(&c, &a).await }));
    }
    pool.wait_status("5 queued", DEADLINE, |s| s["queued"] == 5);
    pool.serve.kill9();
    let killed = Instant::now();
    pool.restart_serve();
    pool.serve.wait_log("recovered actions", DEADLINE, |l| {
        l.matches("recovered operations/").count() == 5
    });
    for _ in 0..3 {
        pool.add_worker(1, &[]);
    }
    for r in runs {
        let resp = r.await.unwrap();
        assert_eq!(outcome(&resp).1, Some(0), "{:?}", outcome(&resp));
    }
    for i in 0..5 {
        assert_eq!(
            marks_of(&marks, "start", &format!("q{i}")).len(),
            1,
            "q{i} ran once"
        );
    }
    println!(
        "kill -9 serve with 5 queued: all 5 recovered and ran {:?} after the kill",
        killed.elapsed()
    );
}
