//! Scheduling of `sykli serve` over loopback with real joined workers: label placement, the
//! queue timeout naming what no worker offers, in-flight deduplication (and none for
//! `do_not_cache`), cancellation of actions nobody waits for, and fair sharing between
//! clients.

mod common;

use std::time::{Duration, Instant};

use common::pool::{Pool, client, execute, outcome, shell_action};

const HEARTBEAT: &str = "200ms";
const DEADLINE: Duration = Duration::from_secs(60);

fn nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_action_goes_to_the_worker_with_its_label_and_others_time_out_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &["--queue-timeout", "1s"]);
    pool.add_worker(1, &[]);
    let gpu = pool.add_worker(1, &["--label", "gpu=true"]);
    let gpu_pid = pool.workers[gpu].pid();
    let c = client(&pool.url).await;
    let a = shell_action(
        &c,
        &format!("echo $PPID; : {}", nonce()),
        &[("gpu", "true")],
        false,
    )
    .await;
    let resp = execute(&c, &a).await;
    assert_eq!(outcome(&resp).1, Some(0), "{:?}", outcome(&resp));
    let out = c
        .read_blob(
            resp.result
                .as_ref()
                .unwrap()
                .stdout_digest
                .as_ref()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out).trim(), gpu_pid.to_string());

    let started = Instant::now();
    let b = shell_action(
        &c,
        &format!(": {}", nonce()),
        &[("gpu", "false"), ("pool", "big")],
        false,
    )
    .await;
    let resp = execute(&c, &b).await;
    let (code, _, message) = outcome(&resp);
    assert_eq!(code, tonic::Code::FailedPrecondition as i32, "{message}");
    assert!(message.contains("gpu=false"), "{message}");
    assert!(message.contains("pool=big"), "{message}");
    println!(
        "labels: the gpu action ran on the gpu worker; an unplaceable one failed after {:?}: {message}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_actions_in_flight_run_once_unless_do_not_cache() {
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    for _ in 0..3 {
        pool.add_worker(1, &[]);
    }
    let c = client(&pool.url).await;
    for (dnc, expected) in [(false, 1), (true, 3)] {
        let log = marks.join(format!("runs-{dnc}"));
        let script = format!("echo x >> {}; sleep 0.5; : {}", log.display(), nonce());
        let a = shell_action(&c, &script, &[], dnc).await;
        let mut runs = Vec::new();
        for _ in 0..3 {
            let (c, a) = (c.clone(), a.clone());
            runs.push(tokio::spawn(async move { execute(&c, &a).await }));
        }
        for r in runs {
            assert_eq!(outcome(&r.await.unwrap()).1, Some(0));
        }
        let n = std::fs::read_to_string(&log).unwrap().lines().count();
        assert_eq!(n, expected, "do_not_cache={dnc}");
        println!("3 identical Executes, do_not_cache={dnc}: ran {n} time(s)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_action_nobody_waits_for_is_cancelled_on_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &["--orphan-grace", "300ms"]);
    let w = pool.add_worker(1, &[]);
    let c = client(&pool.url).await;
    let start = marks.join("started");
    let script = format!("touch {}; sleep 30; : {}", start.display(), nonce());
    let a = shell_action(&c, &script, &[], false).await;
    let run = {
        let c = c.clone();
        tokio::spawn(async move { execute(&c, &a).await })
    };
    let until = Instant::now() + DEADLINE;
    while !start.exists() {
        assert!(Instant::now() < until, "the action never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.abort();
    let gone = Instant::now();
    pool.serve.wait_log("the orphan cancelled", DEADLINE, |l| {
        l.contains("cancelled: nobody waited")
    });
    pool.workers[w].wait_log("the lease cancelled", DEADLINE, |l| l.contains("cancelled"));
    let s = pool.wait_status("the worker idle", DEADLINE, |s| s["running"] == 0);
    println!(
        "orphan: cancelled on its worker {:?} after the client went (grace 300ms): {s}",
        gone.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_share_one_worker_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let order = dir.path().join("order");
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    pool.add_worker(1, &[]);
    let (a, b) = (client(&pool.url).await, client(&pool.url).await);
    let n = nonce();
    let mut runs = Vec::new();
    let mut digests = Vec::new();
    for i in 0..8 {
        let s = format!("echo a{i} >> {}; sleep 0.05; : {n}", order.display());
        digests.push(("a", shell_action(&a, &s, &[], false).await));
    }
    for i in 0..2 {
        let s = format!("echo b{i} >> {}; sleep 0.05; : {n}", order.display());
        digests.push(("b", shell_action(&b, &s, &[], false).await));
    }
    // The big run queues first; the small one right after.
    for (who, d) in digests {
        let c = if who == "a" { a.clone() } else { b.clone() };
        runs.push(tokio::spawn(async move { execute(&c, &d).await }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for r in runs {
        assert_eq!(outcome(&r.await.unwrap()).1, Some(0));
    }
    let ran: Vec<String> = std::fs::read_to_string(&order)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let last_b = ran.iter().rposition(|t| t.starts_with('b')).unwrap();
    assert!(
        last_b <= 5,
        "the small run waited behind the big one: {ran:?}\n{}",
        pool.serve.stderr()
    );
    println!("fair share: order {ran:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plain_worker_found_by_dns_runs_pool_actions_and_its_outputs_reach_serve() {
    let dir = tempfile::tempdir().unwrap();
    let plain =
        common::worker::Worker::start(&dir.path().join("plain"), &["--label", "kind=plain"]);
    // Through --worker-dns: "localhost" resolves (at least) to 127.0.0.1.
    let port = plain.url.rsplit(':').next().unwrap();
    let dns = format!("grpc://localhost:{port}");
    let pool = Pool::start(
        dir.path(),
        HEARTBEAT,
        &["--worker-dns", &dns, "--worker-jobs", "2"],
    );
    pool.wait_status("the static worker", DEADLINE, |s| {
        s["workers"]
            .as_array()
            .is_some_and(|w| w.len() == 1 && w[0]["state"] == "ready")
    });
    let c = client(&pool.url).await;
    let a = shell_action(
        &c,
        &format!("echo static {}", nonce()),
        &[("kind", "plain")],
        false,
    )
    .await;
    let resp = execute(&c, &a).await;
    assert_eq!(outcome(&resp).1, Some(0), "{:?}", outcome(&resp));
    // The log was copied into serve's CAS: the client reads it from serve.
    let out = c
        .read_blob(
            resp.result
                .as_ref()
                .unwrap()
                .stdout_digest
                .as_ref()
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("static "));
    let s = pool.status();
    assert_eq!(s["completed"], 1, "{s}");
    println!(
        "static worker {}: ran the action; serve holds its log: {s}",
        plain.url
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joined_workers_output_streams_live_through_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &[]);
    pool.add_worker(1, &[]);
    let c = client(&pool.url).await;
    let script = format!("echo first; sleep 0.5; echo second >&2; : {}", nonce());
    let a = shell_action(&c, &script, &[], false).await;
    let (resp, seen, ahead) = common::pool::execute_live(&c, &a).await;
    assert_eq!(outcome(&resp).1, Some(0));
    let seen = String::from_utf8_lossy(&seen).into_owned();
    assert!(seen.contains("first"), "live output: {seen:?}");
    assert!(
        ahead >= Duration::from_millis(300),
        "the first output came only {ahead:?} before the result"
    );
    println!("live output relayed by serve: {seen:?}, the first bytes {ahead:?} before the result");
}
