//! Ctrl-C on `sykli run` leaves no process behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A unique `sleep` duration (GNU sleep takes fractions), so `ps` can find exactly the
/// processes of one test: `1000.<pid><nanos>`.
fn marker() -> String {
    format!(
        "1000.{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// Processes whose command line mentions `marker`.
fn survivors(marker: &str) -> Vec<String> {
    let out = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn project(dir: &Path, command: &str) {
    let graph = serde_json::json!({"version": "1", "tasks": [
        {"name": "hang", "command": command},
        {"name": "after", "command": "true", "depends_on": ["hang"]},
    ]});
    std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
}

fn run_and_interrupt(
    command: &str,
    marker: &str,
    sigints: usize,
) -> (std::process::Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), command);
    let child = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .arg("run")
        .current_dir(dir.path())
        .env_remove("CI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The task and its background grandchild are both running.
    wait_until("the task to start", Duration::from_secs(20), || {
        survivors(marker)
            .iter()
            .filter(|l| l.contains(&format!("sleep {marker}")))
            .count()
            >= 2
    });
    let pid = Pid::from_raw(child.id() as i32);
    let start = Instant::now();
    for i in 0..sigints {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        kill(pid, Signal::SIGINT).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (out, start.elapsed())
}

#[test]
fn ctrl_c_leaves_no_process_behind() {
    let marker = marker();
    let command = format!("sh -c 'sleep {marker} & sleep {marker}'");
    let (out, took) = run_and_interrupt(&command, &marker, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "interrupted runs exit 1: {text}"
    );
    assert!(took < Duration::from_secs(15), "exit took {took:?}");
    // Give the kernel a moment to reap, then nothing with the marker may remain.
    std::thread::sleep(Duration::from_millis(200));
    let left = survivors(&marker);
    assert!(left.is_empty(), "processes survived Ctrl-C: {left:?}");
    assert!(text.contains("interrupted"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap_or_default()
            .starts_with("sykli: "),
        "{text}"
    );
}

#[test]
fn a_second_ctrl_c_kills_tasks_that_ignore_sigterm() {
    let marker = marker();
    // Both the shell and its background child ignore SIGTERM.
    let command = format!("sh -c 'trap \"\" TERM; sleep {marker} & sleep {marker}'");
    let (out, took) = run_and_interrupt(&command, &marker, 2);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        took < Duration::from_secs(5),
        "the second Ctrl-C must not wait out the grace period: {took:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let left = survivors(&marker);
    assert!(
        left.is_empty(),
        "processes survived a double Ctrl-C: {left:?}"
    );
}
