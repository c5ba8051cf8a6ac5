//! Durable runs with the real `sykli` binary: SIGKILLed at random points and resumed from its
//! journal, a gate that waits across a kill and a park, a torn journal, an unknown journal
//! format (docs/durable.md).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{command, project, sykli, text};
use serde_json::{Value, json};

/// A small seeded generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// 30 tasks in layers of three, each depending on the whole layer before it (so there are
/// joins and parallel branches); each appends one line to `counts/<task>` when it is done.
fn pipeline() -> Value {
    let mut tasks = Vec::new();
    for i in 0..30 {
        let name = format!("t{i:02}");
        let layer = i / 3;
        let deps: Vec<String> = if layer == 0 {
            Vec::new()
        } else {
            (0..3)
                .map(|j| format!("t{:02}", (layer - 1) * 3 + j))
                .collect()
        };
        let ms = 20 + (i * 7) % 40;
        // `inputs` make it cacheable (with the cache on).
        tasks.push(json!({
            "name": name,
            "command": format!("sleep 0.{ms:03}; mkdir -p counts; echo run >> counts/{name}"),
            "inputs": ["sykli.json"],
            "depends_on": deps,
        }));
    }
    json!({"version": "1", "tasks": tasks})
}

/// How many times each task's side effect happened.
fn counts(dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("counts")) {
        for e in entries.flatten() {
            let n = std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .count();
            out.insert(e.file_name().to_string_lossy().into_owned(), n);
        }
    }
    out
}

/// Tasks the journal of the newest run says finished, by `sykli report --json`.
fn finished_tasks(dir: &Path) -> Vec<String> {
    let out = sykli(dir, &["report", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["data"]["tasks"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter(|t| !t["status"].is_null())
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `sykli` quietly (its output is not read, so orphaned tasks cannot block a pipe).
fn spawn(dir: &Path, args: &[&str]) -> Child {
    command(dir, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `cond` holds or `child` exits (then `false`), within `limit`.
fn wait_for(child: &mut Child, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The summary line of a run's output ("30 passed, ... skipped"), without its duration.
fn summary_line(out: &str) -> String {
    out.lines()
        .rev()
        .find(|l| l.contains(" passed, ") && l.contains(" errored, "))
        .map(|l| l.rsplit_once(" in ").map_or(l, |(c, _)| c).to_string())
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"))
}

#[test]
fn sigkill_at_20_random_points_then_resume_completes_without_rerunning_finished_tasks() {
    crash_test(false);
}

/// Regression: with the cache on, a task killed after it stored its result but before its
/// finish was journalled was reported `cached` on resume, where an uninterrupted run says
/// `passed` (so the summaries differed).
#[test]
fn with_the_cache_on_a_resumed_runs_summary_equals_an_uninterrupted_runs() {
    crash_test(true);
}

/// SIGKILLs a 30-task run at 20 seeded points, resuming each time (with the cache on or
/// off), and checks the run completes, no journalled-finished task runs again and the
/// summary equals an uninterrupted run's; prints kills, resumes and tasks rerun.
fn crash_test(cache: bool) {
    let mode: &[&str] = if cache {
        &["-j", "3"]
    } else {
        &["--no-cache", "-j", "3"]
    };
    let with = |args: &[&'static str]| -> Vec<&'static str> {
        args.iter().chain(mode.iter()).copied().collect()
    };
    let seed = std::env::var("SYKLI_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("seed {seed} (replay with SYKLI_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();

    // The uninterrupted run, for its summary.
    let clean = project(pipeline());
    let out = sykli(clean.path(), &with(&["run"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected = summary_line(&text(&out));

    let p = project(pipeline());
    let dir = p.path();
    // Kill points: a number of finished side effects to wait for, in order (at least one,
    // so the first run has started its journal).
    let mut points: Vec<usize> = (0..20).map(|_| 1 + rng.below(29) as usize).collect();
    points.sort_unstable();
    let (mut kills, mut resumes) = (0, 0);
    let mut child = spawn(dir, &with(&["run"]));
    // Which tasks the journal had finished at each kill, with their counts then.
    let mut finished_at_kill: BTreeMap<String, usize> = BTreeMap::new();
    for (k, &point) in points.iter().enumerate() {
        let reached = wait_for(&mut child, Duration::from_secs(20), || {
            counts(dir).len() >= point
        });
        if !reached {
            break; // the run finished before this point
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let now = counts(dir);
        for t in finished_tasks(dir) {
            finished_at_kill.entry(t.clone()).or_insert(now[&t]);
        }
        println!(
            "kill {}: at {point} side effects, {} tasks journalled finished",
            k + 1,
            finished_at_kill.len()
        );
        child = spawn(dir, &with(&["run", "--resume"]));
        resumes += 1;
    }
    let status = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the last resume did not finish");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // The last segment printed nothing (quiet); the journal's report holds the summary.
    let report = sykli(dir, &["report"]);
    let report_text = text(&report);
    assert_eq!(status.code(), Some(0), "{report_text}");
    assert_eq!(summary_line(&report_text), expected, "{report_text}");
    assert!(report_text.contains(": passed"), "{report_text}");

    let end = counts(dir);
    assert_eq!(end.len(), 30, "every task ran: {end:?}");
    for (task, before) in &finished_at_kill {
        assert_eq!(
            end[task], *before,
            "task {task} had finished before a kill but ran again"
        );
    }
    // Finished tasks that ran again (asserted 0 above), and tasks restarted because they
    // were running at a kill (the "tasks that were running are restarted").
    let finished_rerun = finished_at_kill
        .iter()
        .filter(|(task, before)| end[*task] != **before)
        .count();
    let restarted: usize = end.values().map(|n| n - 1).sum();
    println!(
        "cache {}: kills {kills}, resumes {resumes}, finished tasks rerun {finished_rerun} \
         (target 0), running tasks restarted {restarted}, {:.1}s",
        if cache { "on" } else { "off" },
        started.elapsed().as_secs_f64()
    );

    // A finished run is not resumed again, and says why.
    let out = sykli(dir, &["run", "--resume"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no unfinished run"), "{}", text(&out));
}

/// Whether any process's command line mentions `dir` (a `sykli` still holding the run).
fn process_in(dir: &Path) -> bool {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
        let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
        exe.ends_with("sykli") && cwd.to_string_lossy().starts_with(&needle)
    })
}

#[test]
fn a_gate_open_before_a_kill_still_waits_after_resume_parks_and_is_approved_from_another_process() {
    let p = project(json!({"version": "1", "tasks": [
        {"name": "build", "command": "echo build >> built"},
        {"name": "approve", "gate": {"strategy": "file", "file_path": "never", "timeout": 86400},
         "depends_on": ["build"]},
        {"name": "deploy", "command": "echo deploy >> deployed", "depends_on": ["approve"]},
    ]}));
    let dir = p.path();
    let mut child = spawn(dir, &["run", "--no-cache"]);
    // The gate is open once the journal shows it started.
    let opened = wait_for(&mut child, Duration::from_secs(20), || {
        let out = sykli(dir, &["report", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["data"]["tasks"].as_array().is_some_and(|ts| {
            ts.iter()
                .any(|t| t["name"] == "build" && t["status"] == "passed")
        }) && std::fs::read_to_string(dir.join("built")).is_ok()
    });
    assert!(opened, "the run ended before its gate opened");
    child.kill().unwrap();
    child.wait().unwrap();

    // Resumed with --park: the gate still waits, so the run parks and the process exits.
    let out = command(dir, &["run", "--resume", "--park", "--no-cache"])
        .timeout_output(Duration::from_secs(20));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("parked, waiting on approve"), "{t}");
    assert!(!t.contains("passed approve"), "{t}");
    assert!(
        !process_in(dir),
        "a sykli process still holds the parked run"
    );
    let hist = text(&sykli(dir, &["history"]));
    assert!(hist.contains("parked"), "{hist}");
    let run_id = hist
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();

    // Resumed live; approved from another process while it waits.
    let mut live = spawn(dir, &["run", "--resume", "--no-cache"]);
    let waiting = wait_for(&mut live, Duration::from_secs(20), || {
        let out = sykli(dir, &["--json", "report"]);
        String::from_utf8_lossy(&out.stdout).contains("\"outcome\":\"running\"")
    });
    assert!(waiting, "the resumed run ended before the gate was decided");
    assert!(!dir.join("deployed").exists());
    let out = sykli(dir, &["gate", "approve", &run_id, "approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = live.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the approved run did not finish");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    let report = text(&sykli(dir, &["report"]));
    assert!(report.contains("3 passed"), "{report}");
    assert_eq!(
        std::fs::read_to_string(dir.join("built")).unwrap(),
        "build\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("deployed")).unwrap(),
        "deploy\n"
    );

    // Deciding again is refused, naming why.
    let out = sykli(dir, &["gate", "reject", &run_id, "approve"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("has finished"), "{}", text(&out));
}

#[test]
fn a_journal_torn_inside_its_last_record_resumes_and_an_unknown_format_is_refused() {
    let p = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "echo a >> ran-a"},
        {"name": "g", "gate": {"strategy": "file", "file_path": "never"}, "depends_on": ["a"]},
        {"name": "b", "command": "echo b >> ran-b", "depends_on": ["g"]},
    ]}));
    let dir = p.path();
    let out =
        command(dir, &["run", "--park", "--no-cache"]).timeout_output(Duration::from_secs(20));
    assert!(text(&out).contains("parked"), "{}", text(&out));
    let runs = dir.join(".sykli/runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = run_dir.join("journal");
    // Cut the last record (RunParked) in its middle.
    let len = std::fs::metadata(&journal).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let hist = text(&sykli(dir, &["history"]));
    assert!(
        hist.contains("running"),
        "the torn RunParked is ignored: {hist}"
    );

    let run_id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let out = sykli(dir, &["gate", "approve", &run_id, "g"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = command(dir, &["run", "--resume", &run_id, "--no-cache"])
        .timeout_output(Duration::from_secs(20));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("torn") || t.contains("cut short"), "{t}");
    assert!(t.contains("3 passed"), "{t}");
    assert_eq!(std::fs::read_to_string(dir.join("ran-a")).unwrap(), "a\n");

    // A journal of format version 9 is refused clearly by every reader.
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    std::fs::write(&journal, &bytes).unwrap();
    let out = sykli(dir, &["report", &run_id]);
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("format version 9") && t.contains("reads version 1"),
        "{t}"
    );
    let out = sykli(dir, &["--json", "report", &run_id]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"code\":\"journal_format\""),
        "{}",
        text(&out)
    );
}

#[test]
fn resuming_another_pipeline_is_refused_naming_both_plan_digests() {
    let p = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "true"},
        {"name": "g", "gate": {"strategy": "file", "file_path": "never"}, "depends_on": ["a"]},
    ]}));
    let dir = p.path();
    let out = command(dir, &["run", "--park"]).timeout_output(Duration::from_secs(20));
    assert!(text(&out).contains("parked"), "{}", text(&out));
    std::fs::write(
        dir.join("sykli.json"),
        json!({"version": "1", "tasks": [
            {"name": "a", "command": "echo changed"},
            {"name": "g", "gate": {"strategy": "file", "file_path": "never"}, "depends_on": ["a"]},
        ]})
        .to_string(),
    )
    .unwrap();
    let out = sykli(dir, &["run", "--resume"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("the pipeline changed (journalled plan blake3:"),
        "{t}"
    );
    assert_eq!(t.matches("blake3:").count(), 2, "{t}");
}

/// Runs a command to its end within a deadline (killing it past the deadline).
trait TimeoutOutput {
    fn timeout_output(&mut self, limit: Duration) -> std::process::Output;
}

impl TimeoutOutput for std::process::Command {
    fn timeout_output(&mut self, limit: Duration) -> std::process::Output {
        let mut child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("timed out after {limit:?}:\n{}", text(&out));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn a_passed_task_whose_outputs_changed_while_parked_runs_again_and_says_so() {
    let p = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "echo a >> ran-a; mkdir -p out; echo one > out/x",
         "outputs": {"x": "out/x"}},
        {"name": "g", "gate": {"strategy": "file", "file_path": "never"}, "depends_on": ["a"]},
        {"name": "b", "command": "cat out/x > seen-by-b", "depends_on": ["g"]},
    ]}));
    let dir = p.path();
    let run = |args: &[&str]| command(dir, args).timeout_output(Duration::from_secs(20));
    let out = run(&["run", "--park", "--no-cache"]);
    assert!(text(&out).contains("parked"), "{}", text(&out));
    // Unchanged outputs: `a` keeps its result.
    let out = run(&["run", "--resume", "--park", "--no-cache"]);
    assert!(text(&out).contains("parked"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(dir.join("ran-a")).unwrap(), "a\n");

    std::fs::write(dir.join("out/x"), "tampered\n").unwrap();
    let out = sykli(dir, &["gate", "approve", "last", "g"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&["run", "--resume", "--no-cache"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("its output `x`") && t.contains("changed since: running it again"),
        "{t}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ran-a")).unwrap(),
        "a\na\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("seen-by-b")).unwrap(),
        "one\n"
    );
    let report = text(&sykli(dir, &["report"]));
    assert!(report.contains("3 passed"), "{report}");
}

#[test]
fn a_retry_backoff_interrupted_by_a_kill_continues_with_the_next_attempt() {
    // Fails on its first attempt, passes on the next; the backoff before it is 1 s.
    let p = project(json!({"version": "1", "tasks": [
        {"name": "flaky", "retry": 2,
         "command": "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; test $n -ge 1"},
    ]}));
    let dir = p.path();
    let mut child = spawn(dir, &["run", "--no-cache"]);
    let retrying = wait_for(&mut child, Duration::from_secs(20), || {
        std::fs::read_dir(dir.join(".sykli/runs"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read(e.path().join("journal"))
                    .is_ok_and(|b| b.windows(13).any(|w| w == b"task_retrying"))
            })
    });
    assert!(retrying, "the run ended before it journalled the retry");
    child.kill().unwrap();
    child.wait().unwrap();
    let out =
        command(dir, &["run", "--resume", "--no-cache"]).timeout_output(Duration::from_secs(20));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("(attempt 2)"),
        "the resumed run continues at attempt 2: {t}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("n")).unwrap(), "2\n");
}

/// Regression: a run refused before it started (an unknown `--filter`) left an empty journal
/// behind, which `history` then reported as damaged.
#[test]
fn a_run_that_could_not_start_leaves_no_journal_behind() {
    let p = project(json!({"version": "1", "tasks": [{"name": "a", "command": "true"}]}));
    let out = sykli(p.path(), &["run", "--filter", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let runs = p.path().join(".sykli/runs");
    let left = std::fs::read_dir(&runs).map_or(0, |d| d.count());
    assert_eq!(left, 0, "nothing under {}", runs.display());
    let out = sykli(p.path(), &["history"]);
    assert!(!text(&out).contains("warning"), "{}", text(&out));
}

/// Whether process `pid` is alive (not gone and not a zombie waiting to be reaped).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Regression: the processes of a task running when `sykli run` was SIGKILLed outlived it
/// (the shell and whatever it started), so a resumed run's rerun overlapped its orphan.
#[test]
fn a_sigkilled_sykli_leaves_no_task_process_behind() {
    let p = project(json!({"version": "1", "tasks": [
        {"name": "long", "command": "sleep 300 & echo $! > child; echo $$ > shell; wait"},
        {"name": "quick", "command": "true"},
    ]}));
    let dir = p.path();
    let mut child = spawn(dir, &["run", "--no-cache"]);
    let started = wait_for(&mut child, Duration::from_secs(20), || {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        read("child").ends_with('\n') && read("shell").ends_with('\n')
    });
    assert!(started, "the run ended before its task started");
    let pid = |f: &str| -> i32 {
        let s = std::fs::read_to_string(dir.join(f)).unwrap();
        s.trim().parse().unwrap()
    };
    let (shell, sleeper) = (pid("shell"), pid("child"));
    assert!(alive(shell) && alive(sleeper));
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(shell) || alive(sleeper) {
        assert!(
            Instant::now() < deadline,
            "the task's shell ({shell}, alive: {}) or its child ({sleeper}, alive: {}) outlived \
             the killed sykli by 10 s",
            alive(shell),
            alive(sleeper)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines in `path` (0 when it does not exist).
fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// Whether the newest run's journal holds `needle`.
fn journal_holds(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir.join(".sykli/runs"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read(e.path().join("journal"))
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        })
}

/// A remote task (not cacheable, so the worker never deduplicates or answers it from its
/// cache: a second Execute would run it again) that counts its runs in `counter` on the
/// host (the worker runs without its sandbox) and takes `secs`.
fn remote_project(counter: &Path, secs: u32) -> tempfile::TempDir {
    let c = counter.display();
    project(json!({"version": "1", "tasks": [
        {"name": "far", "remote": true, "cache": false,
         "command": format!("echo run >> {c}; sleep {secs}; echo done >> {c}.done")},
        {"name": "after", "command": "echo after >> ran-after", "depends_on": ["far"]},
    ]}))
}

/// Starts `sykli run` of a [`remote_project`] against `url`, waits until the journal holds
/// the task's operation and the action runs on the worker, and SIGKILLs it.
fn kill_while_remote_task_runs(dir: &Path, url: &str, counter: &Path) {
    let mut child = spawn(dir, &["run", "--no-cache", "--remote", url]);
    let attached = wait_for(&mut child, Duration::from_secs(60), || {
        lines_in(counter) == 1 && journal_holds(dir, b"task_attached")
    });
    assert!(
        attached,
        "the run ended before the remote task was attached"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_remote_task_running_at_a_kill_is_reattached_by_operation_name_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let worker = common::worker::Worker::start(&tmp.path().join("store"), &["--no-sandbox"]);
    let counter = tmp.path().join("runs");
    let p = remote_project(&counter, 2);
    let dir = p.path();
    kill_while_remote_task_runs(dir, &worker.url, &counter);

    let out = command(
        dir,
        &["run", "--resume", "--no-cache", "--remote", &worker.url],
    )
    .timeout_output(Duration::from_secs(60));
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{t}\nworker:\n{}",
        worker.stderr()
    );
    assert!(t.contains("re-attached to remote operation"), "{t}");
    assert_eq!(lines_in(&counter), 1, "the worker ran the action once: {t}");
    assert_eq!(lines_in(&counter.with_extension("done")), 1, "{t}");
    let report = text(&sykli(dir, &["report"]));
    assert!(report.contains("2 passed"), "{report}");
    let json = sykli(dir, &["--json", "report"]);
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        v["data"]["tasks"][0]["operation"]
            .as_str()
            .is_some_and(|o| o.starts_with("operations/")),
        "{v}"
    );
}

#[test]
fn a_remote_operation_the_restarted_worker_lost_is_executed_again_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut worker = common::worker::Worker::start(&tmp.path().join("store"), &["--no-sandbox"]);
    let counter = tmp.path().join("runs");
    let p = remote_project(&counter, 2);
    let dir = p.path();
    kill_while_remote_task_runs(dir, &worker.url, &counter);
    // A restarted worker knows no operation of the one before.
    worker.restart();

    let out = command(
        dir,
        &["run", "--resume", "--no-cache", "--remote", &worker.url],
    )
    .timeout_output(Duration::from_secs(60));
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{t}\nworker:\n{}",
        worker.stderr()
    );
    assert!(
        t.contains("cannot re-attach to remote operation") && t.contains("executing it again"),
        "{t}"
    );
    assert_eq!(lines_in(&counter), 2, "run again on the new worker: {t}");
    assert!(journal_holds(dir, b"task_reattach_failed"));
}

#[test]
fn a_run_only_waiting_out_a_long_retry_backoff_parks_and_resume_runs_the_next_attempt() {
    // Fails on its first attempt, passes on the next; the backoff before it is 1 s, longer
    // than --park-backoff.
    let p = project(json!({"version": "1", "tasks": [
        {"name": "flaky", "retry": 2,
         "command": "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; test $n -ge 1"},
        {"name": "after", "command": "echo after >> ran-after", "depends_on": ["flaky"]},
    ]}));
    let dir = p.path();
    let out = command(
        dir,
        &["run", "--park", "--park-backoff", "200ms", "--no-cache"],
    )
    .timeout_output(Duration::from_secs(20));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("parked, waiting on flaky") && t.contains("the next retry is due at"),
        "{t}"
    );
    assert!(
        !process_in(dir),
        "a sykli process still holds the parked run"
    );
    assert_eq!(std::fs::read_to_string(dir.join("n")).unwrap(), "1\n");
    assert!(text(&sykli(dir, &["history"])).contains("parked"));
    assert!(journal_holds(dir, b"wake_at_ms"));

    // A backoff shorter than the threshold does not park: the resumed run (also --park)
    // waits out what is left of it and runs on.
    let out = command(dir, &["run", "--resume", "--park", "--no-cache"])
        .timeout_output(Duration::from_secs(20));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("(attempt 2)"), "{t}");
    assert!(t.contains("2 passed"), "{t}");
    assert_eq!(std::fs::read_to_string(dir.join("n")).unwrap(), "2\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("ran-after")).unwrap(),
        "after\n"
    );
}

/// Regression: a task whose result reached the cache before its `task_finished` reached the
/// journal (the process was killed in between) was `cached` after resume, where the
/// uninterrupted run said `passed`. The journal is cut just before that record.
#[test]
fn a_task_cached_before_its_finish_was_journalled_is_passed_after_resume() {
    let p = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "echo a >> ran-a", "inputs": ["sykli.json"]},
    ]}));
    let dir = p.path();
    let out = sykli(dir, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected = summary_line(&text(&out));
    assert!(expected.starts_with("1 passed"), "{expected}");
    let run_dir = std::fs::read_dir(dir.join(".sykli/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = run_dir.join("journal");
    let bytes = std::fs::read(&journal).unwrap();
    // Header (8-byte magic, u32 version), then records: u32 length, u64 checksum, payload.
    let mut at = 12;
    let cut = loop {
        assert!(
            at + 12 <= bytes.len(),
            "no task_finished record in the journal"
        );
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let payload = &bytes[at + 12..at + 12 + len];
        if payload.windows(13).any(|w| w == b"task_finished") {
            break at;
        }
        at += 12 + len;
    };
    std::fs::write(&journal, &bytes[..cut]).unwrap();

    let out = command(dir, &["run", "--resume"]).timeout_output(Duration::from_secs(20));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert_eq!(summary_line(&t), expected, "{t}");
    assert_eq!(
        std::fs::read_to_string(dir.join("ran-a")).unwrap(),
        "a\n",
        "restored from the cache, not run again"
    );
}
