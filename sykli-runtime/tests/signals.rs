//! Real signals with `Signals::Standard`: the first SIGINT stops tasks gracefully, the
//! second SIGKILLs them at once. Its own test binary, since the handlers are process-wide.

mod common;

use std::time::{Duration, Instant};

use common::{Project, marker, processes_with};
use nix::sys::signal::{Signal, raise};
use serde_json::json;
use sykli_runtime::{Signals, TaskStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sigint_cancels_second_escalates() {
    let p = Project::new();
    let m = marker("signals");
    let mut c = p.config();
    c.signals = Signals::Standard;
    // Far longer than the test may take: only the second signal can end the stubborn task.
    c.kill_grace = Duration::from_secs(120);
    let ready = p.path("ready");
    let sender = tokio::spawn(async move {
        while !ready.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        raise(Signal::SIGINT).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        raise(Signal::SIGINT).unwrap();
    });
    let t0 = Instant::now();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "stubborn", "command": format!("trap '' TERM; touch ready; sleep 100; : {m}")},
                {"name": "next", "command": "true", "depends_on": ["stubborn"]},
            ]}),
            c,
        )
        .await;
    sender.await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
    assert!(s.interrupted);
    assert_eq!(ev.status("stubborn"), TaskStatus::Errored);
    let next = ev.report("next");
    assert_eq!(next.status, TaskStatus::Blocked);
    for _ in 0..50 {
        if processes_with(&m).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("survivors: {:?}", processes_with(&m));
}
