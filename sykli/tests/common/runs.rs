//! Driving the real `sykli` binary in the background: bounded waits for it and for signals,
//! and the lines each task printed.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{command, project, text};

/// How long any one thing the tests wait for may take.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// `sykli run --remote URL --keep-going --jobs 8` of `graph` in a fresh project, started in
/// the background.
pub fn start_remote_run(graph: Value, url: &str) -> (tempfile::TempDir, Child) {
    let dir = project(graph);
    let child = command(
        dir.path(),
        &["run", "--remote", url, "--keep-going", "--jobs", "8"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    (dir, child)
}

/// Waits (bounded by [`DEADLINE`]) for `child` to exit; its output.
pub fn finish(mut child: Child, what: &str) -> Output {
    let until = Instant::now() + DEADLINE;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what} did not finish within {DEADLINE:?}:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `done` until it holds, panicking with `what` after [`DEADLINE`].
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines of `all` that task `task` printed (`[task] ...`).
pub fn task_lines<'a>(all: &'a str, task: &str) -> Vec<&'a str> {
    let prefix = format!("[{task}] ");
    all.lines()
        .filter_map(|l| l.trim_start().strip_prefix(&prefix))
        .collect()
}
