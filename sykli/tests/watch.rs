//! `sykli watch`: the real binary watching a real project. A file write reruns only the task
//! whose inputs it matches; a change to the inputs of the run in flight cancels and restarts
//! it; a broken pipeline shows its errors and the watch goes on; SIGINT stops it cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(20);

/// A running `sykli watch` and its stderr, line by line.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(dir: &Path) -> Watch {
        let mut child = common::command(dir, &["watch"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut w = Watch {
            child,
            lines,
            seen: Vec::new(),
        };
        w.wait_for("watch: watching");
        w
    }

    /// Waits (bounded) for a stderr line containing `needle`, after those already seen.
    fn wait_for(&mut self, needle: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "no line with {needle:?} within {DEADLINE:?}; stderr:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGINT, then waits (bounded) for a clean exit.
    fn stop(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).unwrap();
        self.wait_for("watch: stopped");
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status:?}");
                return;
            }
            assert!(Instant::now() < end, "watch did not exit after SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Lines of `out/<task>` (one per start of the task), 0 when it never ran.
fn starts(dir: &Path, task: &str) -> usize {
    std::fs::read_to_string(dir.join("out").join(task)).map_or(0, |s| s.lines().count())
}

/// Waits (bounded) until `task` has started `n` times.
fn wait_starts(dir: &Path, task: &str, n: usize) {
    let end = Instant::now() + DEADLINE;
    while starts(dir, task) < n {
        assert!(Instant::now() < end, "{task} did not start {n} times");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn task(name: &str, inputs: &str, then: &str) -> Value {
    json!({"name": name, "inputs": [inputs],
           "command": format!("mkdir -p out && echo start >> out/{name}{then}")})
}

fn project(tasks: Vec<Value>) -> tempfile::TempDir {
    let dir = common::project(json!({"version": "1", "tasks": tasks}));
    write(dir.path(), ".gitignore", "out/\n.test-cache/\n");
    write(dir.path(), "a/one.txt", "1\n");
    write(dir.path(), "b/one.txt", "1\n");
    dir
}

#[test]
fn watch_reruns_only_the_affected_task_and_stops_on_sigint() {
    let dir = project(vec![task("a", "a/*.txt", ""), task("b", "b/*.txt", "")]);
    let d = dir.path();
    let mut w = Watch::start(d);
    write(d, "a/one.txt", "2\n");
    wait_starts(d, "a", 1);
    w.wait_for("watch: run finished (passed)");
    assert_eq!(starts(d, "b"), 0, "b's inputs did not change");
    // An ignored write (a task's output directory) runs nothing; the next real change does.
    write(d, "out/noise.txt", "x\n");
    write(d, "b/one.txt", "2\n");
    wait_starts(d, "b", 1);
    w.wait_for("watch: run finished (passed)");
    assert_eq!(starts(d, "a"), 1);
    w.stop();
}

#[test]
fn watch_cancels_the_run_in_flight_when_its_inputs_change_again() {
    let dir = project(vec![task("a", "a/*.txt", " && sleep 60")]);
    let d = dir.path();
    let mut w = Watch::start(d);
    write(d, "a/one.txt", "2\n");
    wait_starts(d, "a", 1);
    write(d, "a/two.txt", "new\n");
    w.wait_for("cancelling it");
    // Restarted well before the first run's 60 s sleep could have ended.
    wait_starts(d, "a", 2);
    w.stop();
}

#[test]
fn watch_shows_a_broken_pipeline_and_keeps_watching_until_it_is_fixed() {
    let dir = project(vec![task("a", "a/*.txt", "")]);
    let d = dir.path();
    let mut w = Watch::start(d);
    write(d, "sykli.json", "{ not json");
    w.wait_for("the pipeline does not load");
    let fixed = json!({"version": "1", "tasks": [task("b", "b/*.txt", "")]});
    write(d, "sykli.json", &fixed.to_string());
    w.wait_for("watch: pipeline changed");
    write(d, "b/one.txt", "3\n");
    wait_starts(d, "b", 1);
    assert_eq!(starts(d, "a"), 0);
    w.stop();
}

/// Regression: `sykli watch` did not register the project's plugins (`.sykli/plugins/`), so a
/// task with `target: NAME` failed as an unknown target under watch while `sykli run` ran it.
#[test]
fn watch_registers_the_projects_plugins_as_run_does() {
    use sykli_runtime::plugin::fixture::{Behaviour, component};
    let dir = project(vec![json!({"name": "through", "inputs": ["a/*.txt"],
                                  "command": "echo hi", "target": "fx"})]);
    let d = dir.path();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("fx.wasm"),
        component("fx", "1.0.0", Behaviour::Exit(0)).unwrap(),
    )
    .unwrap();
    let manifest = src.path().join("plugin.toml");
    std::fs::write(&manifest, "name = \"fx\"\ncomponent = \"fx.wasm\"\n").unwrap();
    let out = common::sykli(d, &["plugin", "load", manifest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    let mut w = Watch::start(d);
    write(d, "a/one.txt", "2\n");
    w.wait_for("watch: run finished");
    let last = w.seen.last().cloned().unwrap_or_default();
    assert!(
        last.contains("(passed)"),
        "the plugin task did not pass under watch:\n{}",
        w.seen.join("\n")
    );
    w.stop();
}
