//! Remote execution end to end, against a real `sykli worker` process on 127.0.0.1.
//!
//! This test binary is also the pipeline binary: run with `REMOTE_EXEC_PIPELINE=1` (or, on
//! the worker, with `--sykli-exec TASK`) it is a `sykli::main!` pipeline with a native task,
//! so native tasks travel to the worker as this very program. Hence `harness = false`: `main`
//! picks the role, and runs the tests below in order otherwise.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::worker::Worker;
use serde_json::{Value, json};
use sykli::{NativeError, Pipeline, Placement, TaskCtx};

/// Set to make this program the pipeline binary.
const PIPELINE_ENV: &str = "REMOTE_EXEC_PIPELINE";
/// Set to `remote` to place the shell tasks with `.remote()`.
const PLACE_ENV: &str = "REMOTE_EXEC_PLACE";
/// The secret the `secret` task receives.
const SECRET_ENV: &str = "REMOTE_EXEC_SECRET";
/// The secret's value, made at run time: a literal would be in this very binary, which
/// native tasks ship to the worker.
fn secret_value() -> &'static str {
    static VALUE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VALUE.get_or_init(|| format!("hunter{}-{:x}", std::process::id(), rand_u64()))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}
/// A container image the machine has (see .ci/docker-setup.sh).
const IMAGE: &str = "sykli-test/busybox";

/// A native task preferring a remote executor: counts the words `sort` sorted.
#[sykli::task(after = ["sort"], inputs = ["words.txt"], outputs = {"count": "out/count.txt"}, prefer = Remote)]
async fn count(ctx: &TaskCtx) -> Result<(), NativeError> {
    let sorted = std::fs::read_to_string(ctx.workdir().join("out/sorted.txt"))?;
    let n = sorted.lines().count();
    std::fs::write(ctx.workdir().join("out/count.txt"), format!("{n} words\n"))?;
    ctx.log(format!("counted {n} words"));
    Ok(())
}

/// The builder half of the pipeline: shell tasks (remote when [`PLACE_ENV`] says so), a
/// container task preferring remote, a task with a secret, and a local task at the end.
fn configure(p: &mut Pipeline) {
    let remote = std::env::var(PLACE_ENV).is_ok_and(|v| v == "remote");
    let sort = p
        .task("sort")
        .run("mkdir -p out && sort words.txt > out/sorted.txt && echo sorted")
        .inputs(&["words.txt"])
        .output("sorted", "out/sorted.txt");
    if remote {
        sort.remote();
    }
    // Locally the project is mounted at /work; remotely the action works at the input root's
    // top, where the same files are.
    p.task("shout")
        .container(IMAGE)
        .mount_cwd()
        .run("mkdir -p out && tr a-z A-Z < words.txt > out/shout.txt && cat out/shout.txt")
        .inputs(&["words.txt"])
        .output("shout", "out/shout.txt")
        .prefer(Placement::Remote);
    let secret = p
        .task("secret")
        .run("mkdir -p out && echo \"the secret is $REMOTE_EXEC_SECRET\" && printf %s \"$REMOTE_EXEC_SECRET\" | wc -c | tr -d ' ' > out/secret-len.txt")
        .inputs(&["words.txt"])
        .output("len", "out/secret-len.txt")
        .secret(SECRET_ENV);
    if remote {
        secret.remote();
    }
    p.task("report")
        .run("cat out/count.txt out/shout.txt out/secret-len.txt > out/report.txt")
        .after(&["count", "shout", "secret"]);
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--sykli-exec") || std::env::var_os(PIPELINE_ENV).is_some() {
        return sykli::__private::main_entry(
            sykli::__private::BinInfo {
                package: "sykli",
                bin: None,
            },
            Some(configure),
        );
    }
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let tests: &[(&str, fn())] = &[
        (
            "a_mixed_pipeline_gives_the_same_outputs_and_statuses_as_an_all_local_run",
            a_mixed_pipeline_gives_the_same_outputs_and_statuses_as_an_all_local_run,
        ),
        (
            "a_second_checkout_in_another_process_gets_remote_cache_hits_for_everything_the_first_ran",
            a_second_checkout_in_another_process_gets_remote_cache_hits_for_everything_the_first_ran,
        ),
        (
            "killing_the_worker_mid_action_makes_the_client_retry_on_the_restarted_worker",
            killing_the_worker_mid_action_makes_the_client_retry_on_the_restarted_worker,
        ),
        (
            "a_read_only_remote_cache_from_the_environment_publishes_nothing",
            a_read_only_remote_cache_from_the_environment_publishes_nothing,
        ),
        (
            "an_unauthenticated_client_is_refused_with_a_clear_error",
            an_unauthenticated_client_is_refused_with_a_clear_error,
        ),
        (
            "tls_with_an_extra_ca_and_a_token_runs_remotely_and_an_unknown_ca_is_refused",
            tls_with_an_extra_ca_and_a_token_runs_remotely_and_an_unknown_ca_is_refused,
        ),
        (
            "a_workers_labels_place_the_tasks_that_require_them",
            a_workers_labels_place_the_tasks_that_require_them,
        ),
        (
            "remote_output_is_shown_while_the_action_runs",
            remote_output_is_shown_while_the_action_runs,
        ),
        (
            "secrets_are_refused_toward_a_server_that_is_not_a_sykli_worker_unless_allowed",
            secrets_are_refused_toward_a_server_that_is_not_a_sykli_worker_unless_allowed,
        ),
        (
            "a_remote_task_toward_an_unreachable_endpoint_errors_and_never_runs_locally",
            a_remote_task_toward_an_unreachable_endpoint_errors_and_never_runs_locally,
        ),
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        ran += 1;
        eprintln!("test {name} ...");
        if std::panic::catch_unwind(test).is_err() {
            eprintln!("test {name} ... FAILED");
            failed.push(*name);
        } else {
            eprintln!("test {name} ... ok");
        }
    }
    eprintln!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A checkout of the mixed pipeline's project: `words.txt` and a cache directory of its own.
fn checkout(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("words.txt"), "pear\napple\nfig\n").unwrap();
    dir
}

/// Runs this program as the pipeline in `dir` with `args`, `--json`, its own cache.
fn pipeline(dir: &Path, args: &[&str], remote: bool) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(args)
        .arg("--json")
        .current_dir(dir)
        .env(PIPELINE_ENV, "1")
        .env(SECRET_ENV, secret_value())
        .env("SYKLI_CACHE_DIR", dir.join(".test-cache"))
        .env_remove("SYKLI_TOKEN")
        .env_remove("SYKLI_REMOTE")
        .env_remove("SYKLI_REMOTE_CACHE")
        .env_remove("CI");
    if remote {
        cmd.env(PLACE_ENV, "remote");
    } else {
        cmd.env_remove(PLACE_ENV);
    }
    run_bounded(cmd, Duration::from_secs(180))
}

/// Runs `cmd` to completion, killing it after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

/// Task name -> (status, executor) of a `--json` run.
fn statuses(out: &Output) -> BTreeMap<String, (String, String)> {
    let text = String::from_utf8_lossy(&out.stdout);
    let env: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "not a JSON envelope ({e}): stdout {text}\nstderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    env["data"]["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks in {env}"))
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                (
                    t["status"].as_str().unwrap_or("null").to_owned(),
                    t["executor"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect()
}

fn outputs(dir: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("out")).unwrap() {
        let e = e.unwrap();
        m.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read_to_string(e.path()).unwrap(),
        );
    }
    m
}

fn log_of(dir: &Path, task: &str) -> String {
    let mut found = String::new();
    for run in std::fs::read_dir(dir.join(".sykli/logs")).unwrap() {
        let p = run.unwrap().path().join(format!("{task}.log"));
        if let Ok(t) = std::fs::read_to_string(p) {
            found.push_str(&t);
        }
    }
    found
}

fn a_mixed_pipeline_gives_the_same_outputs_and_statuses_as_an_all_local_run() {
    let tmp = tempfile::tempdir().unwrap();
    let worker = Worker::start(&tmp.path().join("store"), &[]);
    let local = checkout(tmp.path(), "local");
    let remote = checkout(tmp.path(), "remote");

    let a = pipeline(&local, &[], false);
    let b = pipeline(&remote, &["--remote", &worker.url], true);
    let (sa, sb) = (statuses(&a), statuses(&b));
    let only_status = |s: &BTreeMap<String, (String, String)>| {
        s.iter()
            .map(|(n, (st, _))| (n.clone(), st.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        only_status(&sa),
        only_status(&sb),
        "local run stderr:\n{}\nremote run stderr:\n{}\nworker:\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
        worker.stderr()
    );
    assert!(sa.values().all(|(s, _)| s == "passed"), "{sa:?}");
    // Where each task ran: everything placed remote went there, `report` stayed here.
    for task in ["sort", "count", "shout", "secret"] {
        assert_eq!(sb[task].1, "remote", "{task}: {sb:?}");
    }
    assert_ne!(sb["report"].1, "remote", "{sb:?}");
    assert_eq!(sa["sort"].1, "process", "{sa:?}");
    assert_eq!(outputs(&local), outputs(&remote));
    assert_eq!(
        std::fs::read_to_string(remote.join("out/report.txt")).unwrap(),
        format!("3 words\nPEAR\nAPPLE\nFIG\n{}\n", secret_value().len())
    );
    // The secret reached the remote task, and its output is masked like a local one.
    let log = log_of(&remote, "secret");
    assert!(log.contains("the secret is"), "{log}");
    assert!(!log.contains(secret_value()), "{log}");
    // Nothing the worker stored holds the secret's value.
    let holders = files_containing(&worker.store, secret_value().as_bytes());
    assert!(holders.is_empty(), "the secret is stored in {holders:?}");
}

/// Every file under `dir` (bounded by the tree) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t)
                    if t.is_file()
                        && std::fs::read(&p)
                            .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) =>
                {
                    found.push(p)
                }
                _ => {}
            }
        }
    }
    found
}

/// A JSON pipeline with a local, a remote and a prefer-remote task, all cacheable, the
/// prefer-remote one keyed on the remote one's output.
fn cacheable_graph() -> Value {
    json!({"version": "1", "tasks": [
        {"name": "gen", "command": "mkdir -p out && tr a-z A-Z < src/in.txt > out/gen.txt && echo generated",
         "inputs": ["src/**"], "outputs": {"gen": "out/gen.txt"}, "remote": true},
        {"name": "wrap", "command": "(echo '<'; cat out/gen.txt; echo '>') > out/wrapped.txt",
         "inputs": ["src/**"], "outputs": {"w": "out/wrapped.txt"}, "depends_on": ["gen"],
         "prefer": "remote"},
        {"name": "here", "command": "wc -l < src/in.txt > out-here.txt && mkdir -p tree/sub && echo a > tree/a.txt && echo b > tree/sub/b.txt && chmod +x tree/sub/b.txt && ln -sf a.txt tree/link",
         "inputs": ["src/**"], "outputs": {"h": "out-here.txt", "t": "tree"}}
    ]})
}

fn json_project(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/in.txt"), "one\ntwo\n").unwrap();
    std::fs::write(
        dir.join("sykli.json"),
        serde_json::to_string(&cacheable_graph()).unwrap(),
    )
    .unwrap();
    dir
}

fn sykli(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = common::command(dir, args);
    cmd.env_remove("SYKLI_TOKEN")
        .env_remove("SYKLI_REMOTE")
        .env_remove("SYKLI_REMOTE_CACHE");
    run_bounded(cmd, Duration::from_secs(120))
}

fn a_second_checkout_in_another_process_gets_remote_cache_hits_for_everything_the_first_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let worker = Worker::start(&tmp.path().join("store"), &[]);
    let first = json_project(tmp.path(), "first");
    let second = json_project(tmp.path(), "second");
    let url = worker.url.clone();
    let url = url.as_str();
    let args = ["run", "--json", "--remote", url, "--remote-cache", url];

    let a = sykli(&first, &args);
    let sa = statuses(&a);
    assert!(
        sa.values().all(|(s, _)| s == "passed"),
        "{sa:?}\n{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(sa["gen"].1, "remote");
    assert_eq!(sa["here"].1, "process");

    // Another directory, its own local cache (common::command puts it in the project),
    // another process: every task is a remote cache hit.
    let b = sykli(&second, &args);
    let sb = statuses(&b);
    assert!(
        sb.values().all(|(s, _)| s == "cached"),
        "{sb:?}\n{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let text = String::from_utf8_lossy(&b.stdout);
    assert!(text.contains("remote cache hit"), "{text}");
    for f in [
        "out/gen.txt",
        "out/wrapped.txt",
        "out-here.txt",
        "tree/a.txt",
        "tree/sub/b.txt",
    ] {
        assert_eq!(
            std::fs::read(first.join(f)).unwrap(),
            std::fs::read(second.join(f)).unwrap(),
            "{f}"
        );
    }
    // A directory output travels as a Tree: files, modes and symlinks.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(second.join("tree/sub/b.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "the executable bit was lost: {mode:o}");
    assert_eq!(
        std::fs::read_link(second.join("tree/link")).unwrap(),
        Path::new("a.txt")
    );
    // The hits filled the second checkout's local cache: a third run needs no server
    // (the local cache is asked before the unreachable executor).
    drop(worker);
    let c = sykli(&second, &["run", "--json", "--remote", url]);
    let sc = statuses(&c);
    assert!(sc.values().all(|(s, _)| s == "cached"), "{sc:?}");
}

/// A `sykli worker` on a given port (the shared support binds port 0).
struct PortWorker {
    child: Child,
}

impl PortWorker {
    fn start(store: &Path, listen: &str) -> (PortWorker, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sykli"))
            // Its actions leave marks on this machine's disk: no sandbox.
            .args(["worker", "--no-sandbox", "--listen", listen, "--store"])
            .arg(store)
            .env_remove("SYKLI_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sykli worker");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the worker's listen line within 60s");
        let url = line
            .strip_prefix("sykli worker: listening on ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .to_owned();
        (PortWorker { child }, url)
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PortWorker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits for `path` to exist, up to `limit`.
fn wait_for(path: &Path, limit: Duration) {
    let until = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < until,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn killing_the_worker_mid_action_makes_the_client_retry_on_the_restarted_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (mut worker, url) = PortWorker::start(&store, "127.0.0.1:0");
    let listen = url.trim_start_matches("grpc://").to_owned();
    let marks = tmp.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    // Each attempt leaves a mark outside its sandbox (the worker runs on this machine).
    let graph = json!({"version": "1", "tasks": [
        {"name": "slow", "remote": true, "outputs": {"o": "done.txt"},
         "command": format!("touch {}/attempt-$$; sleep 2; echo finished > done.txt; echo slow done", marks.display())}
    ]});
    std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
    let mut cmd = common::command(&dir, &["run", "--json", "--remote", &url]);
    cmd.env_remove("SYKLI_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let client = cmd.spawn().expect("spawn sykli run");
    // The action is running: kill the worker, start a new one on the same port.
    let until = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&marks).unwrap().count() == 0 {
        assert!(Instant::now() < until, "the action never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    worker.kill9();
    let (_worker, again) = PortWorker::start(&store, &listen);
    assert_eq!(again, url);
    let pid = client.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("the client did not finish after the worker restarted");
        }
    };
    let s = statuses(&out);
    assert_eq!(
        s["slow"].0,
        "passed",
        "{s:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("done.txt")).unwrap(),
        "finished\n"
    );
    let attempts = std::fs::read_dir(&marks).unwrap().count();
    assert!(
        attempts >= 2,
        "the action ran {attempts} time(s): no retry happened"
    );
    wait_for(&dir.join("done.txt"), Duration::from_secs(1));
}

fn a_read_only_remote_cache_from_the_environment_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let worker = Worker::start(&tmp.path().join("store"), &[]);
    let first = json_project(tmp.path(), "first");
    let second = json_project(tmp.path(), "second");
    // Only local tasks here: the remote cache alone, from SYKLI_REMOTE_CACHE(_READ_ONLY).
    let graph = json!({"version": "1", "tasks": [
        {"name": "here", "command": "wc -l < src/in.txt > out-here.txt",
         "inputs": ["src/**"], "outputs": {"h": "out-here.txt"}}
    ]});
    for dir in [&first, &second] {
        std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
    }
    let run = |dir: &Path, read_only: &str| {
        let mut cmd = common::command(dir, &["run", "--json"]);
        cmd.env_remove("SYKLI_TOKEN")
            .env_remove("SYKLI_REMOTE")
            .env("SYKLI_REMOTE_CACHE", &worker.url)
            .env("SYKLI_REMOTE_CACHE_READ_ONLY", read_only);
        statuses(&run_bounded(cmd, Duration::from_secs(60)))
    };
    assert_eq!(run(&first, "1")["here"].0, "passed");
    assert_eq!(
        run(&second, "0")["here"].0,
        "passed",
        "a read-only run published"
    );
    // The second run published: a third checkout hits.
    let third = json_project(tmp.path(), "third");
    std::fs::write(third.join("sykli.json"), graph.to_string()).unwrap();
    assert_eq!(run(&third, "1")["here"].0, "cached");
}

fn an_unauthenticated_client_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let worker = Worker::start(
        &tmp.path().join("store"),
        &["--token-file", token.to_str().unwrap()],
    );
    let dir = json_project(tmp.path(), "p");
    let out = sykli(&dir, &["run", "--remote", &worker.url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("UNAUTHENTICATED"), "{err}");
    assert!(
        err.contains("SYKLI_TOKEN") && err.contains("--token-file"),
        "{err}"
    );
    assert!(!dir.join("out-here.txt").exists(), "nothing ran");
    // --json says the same with a stable code.
    let out = sykli(&dir, &["run", "--json", "--remote-cache", &worker.url]);
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["error"]["code"], "remote_failed", "{env}");
    // With the token, the same run passes.
    let out = sykli(
        &dir,
        &[
            "run",
            "--json",
            "--remote",
            &worker.url,
            "--token-file",
            token.to_str().unwrap(),
        ],
    );
    let s = statuses(&out);
    assert!(s.values().all(|(st, _)| st == "passed"), "{s:?}");
}

fn tls_with_an_extra_ca_and_a_token_runs_remotely_and_an_unknown_ca_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "tls-token\n").unwrap();
    let worker = Worker::start(
        &tmp.path().join("store"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--token-file",
            token.to_str().unwrap(),
        ],
    );
    assert!(worker.url.starts_with("grpcs://"), "{}", worker.url);
    let dir = json_project(tmp.path(), "p");
    // The CA and token from the config file, relative to it.
    std::fs::copy(&cert, dir.join("ca.pem")).unwrap();
    std::fs::copy(&token, dir.join("token")).unwrap();
    std::fs::write(
        dir.join("sykli.toml"),
        format!(
            "[remote]\nexecutor = \"{}\"\ntls_ca = \"ca.pem\"\ntoken_file = \"token\"\n",
            worker.url
        ),
    )
    .unwrap();
    let out = sykli(&dir, &["run", "--json"]);
    let s = statuses(&out);
    assert!(
        s.values().all(|(st, _)| st == "passed"),
        "{s:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s["gen"].1, "remote");
    // Without the CA the server's certificate is not trusted: a clear error, nothing runs.
    std::fs::remove_file(dir.join("sykli.toml")).unwrap();
    let other = json_project(tmp.path(), "q");
    let out = sykli(
        &other,
        &[
            "run",
            "--remote",
            &worker.url,
            "--token-file",
            token.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&worker.url) && err.contains("certificate"),
        "{err}"
    );
    assert!(!other.join("out/gen.txt").exists());
    assert!(
        !other.join("out-here.txt").exists(),
        "a refused run ran tasks"
    );
}

fn a_workers_labels_place_the_tasks_that_require_them() {
    let tmp = tempfile::tempdir().unwrap();
    let worker = Worker::start(&tmp.path().join("store"), &["--label", "gpu=true"]);
    let dir = tmp.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    let graph = json!({"version": "1", "tasks": [
        {"name": "train", "command": "echo training", "requires": ["gpu"], "remote": true},
        {"name": "tpu", "command": "echo never", "requires": ["tpu"], "prefer": "remote"}
    ]});
    std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
    let out = sykli(
        &dir,
        &["run", "--json", "--keep-going", "--remote", &worker.url],
    );
    let s = statuses(&out);
    assert_eq!(
        s["train"],
        ("passed".to_owned(), "remote".to_owned()),
        "{s:?}"
    );
    // No executor carries `tpu`: errored naming the label, never sent.
    assert_eq!(s["tpu"].0, "errored", "{s:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("tpu"));
    // `sykli explain` makes the same plan with the remote from the environment.
    let mut cmd = common::command(&dir, &["explain"]);
    cmd.env_remove("SYKLI_TOKEN")
        .env("SYKLI_REMOTE", &worker.url);
    let out = run_bounded(cmd, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("`remote: true`: a remote executor"), "{text}");
    assert!(text.contains("tpu"), "{text}");
}

fn remote_output_is_shown_while_the_action_runs() {
    let tmp = tempfile::tempdir().unwrap();
    // The action waits for a file the test writes on this machine: no sandbox.
    let worker = Worker::start(&tmp.path().join("store"), &["--no-sandbox"]);
    let dir = tmp.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    let go = tmp.path().join("go");
    // The action prints, then waits (bounded) for a file the test writes only once it has
    // seen that line: it finishes only if its output arrived while it ran.
    let graph = json!({"version": "1", "tasks": [
        {"name": "talk", "remote": true, "command": format!(
            "echo first; i=0; while [ ! -e {go} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
             [ -e {go} ] && echo second", go = go.display())}
    ]});
    std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
    let mut cmd = common::command(&dir, &["run", "--verbose", "--remote", &worker.url]);
    let mut child = cmd
        .env_remove("SYKLI_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let until = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("first") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("the action's first line never showed while it ran: {seen:?}");
            }
        }
    }
    std::fs::write(&go, "").unwrap();
    let rest: Vec<String> = rx.iter().collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    let all = rest.join("\n");
    assert_eq!(all.matches("second").count(), 1, "{all}");
    assert!(
        !all.contains("first"),
        "the live line was written twice: {all}"
    );
}

fn secrets_are_refused_toward_a_server_that_is_not_a_sykli_worker_unless_allowed() {
    let peers = common::peers::BuildGridExecution::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    let graph = json!({"version": "1", "tasks": [
        {"name": "deploy", "remote": true, "secrets": [SECRET_ENV],
         "command": "echo deploying > deployed.txt", "outputs": {"d": "deployed.txt"}}
    ]});
    std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
    let endpoint = peers.endpoint();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--json", "--remote", &endpoint];
        args.extend_from_slice(extra);
        let mut cmd = common::command(&dir, &args);
        cmd.env_remove("SYKLI_TOKEN")
            .env(SECRET_ENV, secret_value());
        run_bounded(cmd, Duration::from_secs(180))
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let s = statuses(&out);
    assert_eq!(s["deploy"].0, "errored", "{s:?}");
    assert!(
        text.contains("is not a sykli worker") && text.contains("--remote-allow-secrets"),
        "{text}"
    );
    assert!(!dir.join("deployed.txt").exists());
    // Opted in, it runs there (the value travels as request metadata, never in the Action).
    let out = run(&["--remote-allow-secrets"]);
    let s = statuses(&out);
    assert_eq!(
        s["deploy"],
        ("passed".to_owned(), "remote".to_owned()),
        "{s:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        peers.bot_log()
    );
    let holders = files_containing(peers.grid().dir(), secret_value().as_bytes());
    assert!(
        holders.is_empty(),
        "BuildGrid stored the secret in {holders:?}"
    );
}

fn a_remote_task_toward_an_unreachable_endpoint_errors_and_never_runs_locally() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tmp.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    let graph = json!({"version": "1", "tasks": [
        {"name": "must", "command": "touch ran-must", "remote": true},
        {"name": "may", "command": "touch ran-may", "prefer": "remote"}
    ]});
    std::fs::write(dir.join("sykli.json"), graph.to_string()).unwrap();
    let url = format!("grpc://127.0.0.1:{port}");
    let out = sykli(&dir, &["run", "--json", "--keep-going", "--remote", &url]);
    let s = statuses(&out);
    assert_eq!(s["must"].0, "errored", "{s:?}");
    assert_eq!(
        s["may"],
        ("passed".to_owned(), "process".to_owned()),
        "{s:?}"
    );
    assert!(
        !dir.join("ran-must").exists(),
        "a remote: true task ran locally"
    );
    assert!(dir.join("ran-may").exists());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Connection refused") || text.contains("connect"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}
