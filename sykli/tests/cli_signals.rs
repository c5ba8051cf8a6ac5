//! Ctrl-C on `sykli run` leaves no process behind, and nothing keeps sykli from exiting:
//! not a stubborn task, not a prompt gate waiting on a terminal nobody types into.
//!
//! Every wait has a deadline and waits for a signal (a process, a file the task writes, text
//! on the terminal), never for a fixed time.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
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

/// Polls `f` until it holds; panics naming `what` after `limit`.
fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit and collects its output; after `limit`, kills it and panics
/// naming `what`.
fn exit_within(child: Child, what: &str, limit: Duration) -> Output {
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("sykli did not exit within {limit:?} {what}");
        }
    }
}

fn project(dir: &Path, command: &str) {
    let graph = serde_json::json!({"version": "1", "tasks": [
        {"name": "hang", "command": command},
        {"name": "after", "command": "true", "depends_on": ["hang"]},
    ]});
    std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
}

fn spawn_run(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sykli"))
        .arg("run")
        .current_dir(dir)
        .env_remove("CI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Both sleeps of the task run (the task and its background grandchild).
fn task_started(marker: &str) -> bool {
    survivors(marker)
        .iter()
        .filter(|l| l.contains(&format!("sleep {marker}")))
        .count()
        >= 2
}

#[test]
fn ctrl_c_leaves_no_process_behind() {
    let marker = marker();
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &format!("sh -c 'sleep {marker} & sleep {marker}'"),
    );
    let child = spawn_run(dir.path());
    wait_until("the task to start", Duration::from_secs(20), || {
        task_started(&marker)
    });
    let start = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = exit_within(child, "after Ctrl-C", Duration::from_secs(15));
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "interrupted runs exit 1: {text}"
    );
    assert!(took < Duration::from_secs(15), "exit took {took:?}");
    // Reaping by init can take a moment; nothing with the marker may remain.
    wait_until(
        "no process to carry the marker",
        Duration::from_secs(5),
        || survivors(&marker).is_empty(),
    );
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
    let dir = tempfile::tempdir().unwrap();
    // The sleeps ignore SIGTERM; the shell notes it (`termed`) and keeps waiting for them.
    project(
        dir.path(),
        &format!(
            "trap '' TERM; sleep {marker} & sleep {marker} & trap 'touch termed' TERM; touch ready; wait; wait"
        ),
    );
    let child = spawn_run(dir.path());
    wait_until("the task to start", Duration::from_secs(20), || {
        dir.path().join("ready").exists() && task_started(&marker)
    });
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).unwrap();
    // The first Ctrl-C stops the task gracefully: it gets SIGTERM, and ignores it.
    wait_until("the task to get SIGTERM", Duration::from_secs(20), || {
        dir.path().join("termed").exists()
    });
    let start = Instant::now();
    kill(pid, Signal::SIGINT).unwrap();
    let out = exit_within(child, "after a second Ctrl-C", Duration::from_secs(30));
    let took = start.elapsed();
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
    wait_until(
        "no process to carry the marker",
        Duration::from_secs(5),
        || survivors(&marker).is_empty(),
    );
}

/// The test's side of a pseudo-terminal that `sykli run` has as stdin and stderr.
struct Terminal {
    master: OwnedFd,
    output: mpsc::Receiver<Vec<u8>>,
    /// Everything the terminal showed so far.
    seen: String,
    sykli: Pid,
}

impl Terminal {
    /// Waits until the terminal has shown `text`; after `limit`, kills sykli and panics.
    fn wait_for(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => {
                    let _ = kill(self.sykli, Signal::SIGKILL);
                    panic!(
                        "the terminal never showed {text:?}; it showed: {:?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Types `line` and Enter.
    fn type_line(&self, line: &str) {
        use std::io::Write;
        let mut w = std::fs::File::from(self.master.try_clone().unwrap());
        w.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
}

/// Starts `sykli run <args>` on `graph` with a terminal (a pty) as stdin and stderr that the
/// test holds open, and stdout piped.
fn run_on_terminal(dir: &Path, graph: &serde_json::Value, args: &[&str]) -> (Child, Terminal) {
    std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
    let pty = nix::pty::openpty(None, None).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .arg("run")
        .args(args)
        .current_dir(dir)
        .env_remove("CI")
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the terminal on a thread, so every wait for text has a deadline.
    let mut reader = std::fs::File::from(pty.master.try_clone().unwrap());
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once sykli has exited and the slave side is closed.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let sykli = Pid::from_raw(child.id() as i32);
    let terminal = Terminal {
        master: pty.master,
        output: rx,
        seen: String::new(),
        sykli,
    };
    (child, terminal)
}

/// A prompt gate (`Ship it?`, with `timeout` if given) and a task behind it; returns once
/// the gate has asked on the terminal. Nobody types.
fn run_prompt_gate(dir: &Path, timeout: Option<u64>) -> (Child, Terminal) {
    let mut gate = serde_json::json!({"strategy": "prompt", "message": "Ship it?"});
    if let Some(t) = timeout {
        gate["timeout"] = t.into();
    }
    let graph = serde_json::json!({"version": "1", "tasks": [
        {"name": "approve", "gate": gate},
        {"name": "deploy", "command": "touch deployed", "depends_on": ["approve"]},
    ]});
    let (child, mut terminal) = run_on_terminal(dir, &graph, &[]);
    terminal.wait_for("Ship it? [y/N]", Duration::from_secs(30));
    (child, terminal)
}

/// The bug: the prompt's stdin read ran on tokio's blocking pool, and the runtime waits for
/// that pool on shutdown, so after Ctrl-C sykli hung until someone typed a line.
#[test]
fn ctrl_c_at_a_prompt_gate_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _terminal) = run_prompt_gate(dir.path(), None);
    let start = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = exit_within(
        child,
        "after Ctrl-C at a prompt gate",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(text.contains("interrupted"), "{text}");
    assert!(!dir.path().join("deployed").exists());
}

/// The same hang, after the gate's own timeout.
#[test]
fn a_prompt_gate_timeout_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _terminal) = run_prompt_gate(dir.path(), Some(1));
    let start = Instant::now();
    let out = exit_within(
        child,
        "after a prompt gate timed out",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("was not approved within 1s"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(!dir.path().join("deployed").exists());
}

#[test]
fn a_prompt_gate_answered_yes_runs_what_it_guards() {
    let dir = tempfile::tempdir().unwrap();
    let (child, terminal) = run_prompt_gate(dir.path(), None);
    terminal.type_line("y");
    let out = exit_within(
        child,
        "after the gate was approved",
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(dir.path().join("deployed").exists(), "{text}");
}

/// A line typed after one prompt timed out answers the prompt asking now (the reader thread
/// was still waiting on the first prompt's behalf).
#[test]
fn after_a_prompt_times_out_the_next_prompt_gets_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let graph = serde_json::json!({"version": "1", "tasks": [
        {"name": "first", "gate": {"strategy": "prompt", "message": "First?", "timeout": 1}},
        // `second` asks only after `first` has: it waits for the file `go` (at most 30 s).
        {"name": "hold", "command": "i=0; while [ ! -e go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; test -e go"},
        {"name": "second", "depends_on": ["hold"],
         "gate": {"strategy": "prompt", "message": "Second?"}},
        {"name": "deploy", "command": "touch deployed", "depends_on": ["second"]},
    ]});
    let (child, mut terminal) = run_on_terminal(dir.path(), &graph, &["--keep-going"]);
    terminal.wait_for("First? [y/N]", Duration::from_secs(30));
    std::fs::write(dir.path().join("go"), "").unwrap();
    terminal.wait_for("Second? [y/N]", Duration::from_secs(30));
    terminal.type_line("yes");
    let out = exit_within(
        child,
        "after the second gate was approved",
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "the first gate errored: {text}");
    assert!(text.contains("was not approved within 1s"), "{text}");
    assert!(dir.path().join("deployed").exists(), "{text}");
}
