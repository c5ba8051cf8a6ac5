//! Real signals with `Signals::Standard`: the first SIGINT stops tasks gracefully, the
//! second SIGKILLs them at once. Its own test binary, since the handlers are process-wide.

mod common;

use std::time::{Duration, Instant};

use common::{Project, marker, processes_with, wait_for};
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
    let (ready, termed) = (p.path("ready"), p.path("termed"));
    let sender = tokio::spawn(async move {
        wait_for(Duration::from_secs(20), "the task to start", || {
            ready.exists()
        })
        .await;
        raise(Signal::SIGINT).unwrap();
        // The first SIGINT stops the task gracefully: it gets SIGTERM, notes it and goes on.
        wait_for(Duration::from_secs(20), "the task to get SIGTERM", || {
            termed.exists()
        })
        .await;
        raise(Signal::SIGINT).unwrap();
    });
    let t0 = Instant::now();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                // `sleep` ignores SIGTERM; the shell notes it in `termed` and waits on.
                {"name": "stubborn", "command": format!("trap '' TERM; sleep 100 & trap 'touch termed' TERM; touch ready; wait; wait; : {m}")},
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
    wait_for(
        Duration::from_secs(5),
        "no process to carry the marker",
        || processes_with(&m).is_empty(),
    )
    .await;
}
