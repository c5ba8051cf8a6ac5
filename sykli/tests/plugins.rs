//! Target plugins end to end: the guests in `examples/plugins/` built from C source by the
//! test support (tests/common/plugins.rs), loaded by the real `sykli` binary.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::plugins::{self, guest_manifest, spawn_manifest};
use common::runner_service::RunnerService;
use common::runs::{finish, start_remote_run, task_lines, wait_for};
use common::worker::Worker;
use common::{command, project, text};
use serde_json::{Value, json};

/// The bindings generator runs on the repository's WIT (a quick check without clang).
#[test]
fn wit_bindings_generate_for_the_target_world() {
    let out = tempfile::tempdir().unwrap();
    plugins::generate_bindings(&plugins::wit_dir(), out.path()).unwrap();
    for file in ["target.h", "target.c", "target_component_type.o"] {
        assert!(out.path().join(file).is_file(), "{file} missing");
    }
    if let Ok(dump) = std::env::var("SYKLI_DUMP_BINDINGS") {
        for file in ["target.h", "target.c"] {
            std::fs::copy(
                out.path().join(file),
                std::path::Path::new(&dump).join(file),
            )
            .unwrap();
        }
    }
}

/// Every guest in examples/plugins/ compiles from C into a valid component exporting the
/// world's `describe` and `run` (no host needed), and the digest cache hands back the same file.
#[test]
fn every_guest_builds_into_a_valid_component() {
    for (name, defines) in [
        ("spawn", &[("VERSION", "1.0.0")][..]),
        ("spawn", &[("VERSION", "2.0.0")][..]),
        ("http-runner", &[][..]),
        ("spin", &[][..]),
        ("hog", &[][..]),
        ("snoop", &[][..]),
    ] {
        let path = plugins::build_plugin(name, defines);
        let bytes = std::fs::read(&path).unwrap();
        plugins::validate_component(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            plugins::build_plugin(name, defines),
            path,
            "{name}: not cached"
        );
    }
    let v1 = plugins::build_plugin("spawn", &[("VERSION", "1.0.0")]);
    let v2 = plugins::build_plugin("spawn", &[("VERSION", "2.0.0")]);
    assert_ne!(v1, v2, "two versions share one cache entry");
    assert_ne!(std::fs::read(&v1).unwrap(), std::fs::read(&v2).unwrap());
}

/// The runner service the http-runner plugin talks to runs the posted command with exactly the
/// posted environment, in the posted directory, and answers its output and exit code.
#[test]
fn the_runner_service_runs_posted_commands() {
    use std::io::{Read, Write};
    let runner = common::runner_service::RunnerService::start();
    let dir = tempfile::tempdir().unwrap();
    let post = |body: &str| {
        let mut conn = std::net::TcpStream::connect(&runner.addr).unwrap();
        write!(
            conn,
            "POST /run HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n{body}",
            runner.addr,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    };
    let task = serde_json::json!({
        "command": "echo \"$GREETING from $(pwd)\"; echo oops >&2; echo ${HOME:-no-home}; exit 7",
        "env": {"GREETING": "hello"},
        "workdir": dir.path(),
    });
    let answer = post(&task.to_string());
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\r\nx-exit-code: 7\r\n"), "{answer}");
    let canonical = dir.path().canonicalize().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(
        body,
        format!("hello from {}\nno-home\noops\n", canonical.display()),
        "{answer}"
    );
    let bad = post("{\"command\": 1}");
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    assert!(!bad.contains("x-exit-code"), "{bad}");
    assert_eq!(runner.served(), 2);
}

// ---------------------------------------------------------------------------------------------
// End to end: the real `sykli` binary loads the guests, locally and into a running worker.

/// Runs `sykli ARGS` in `dir`, asserting it exits 0; its output.
fn sykli_ok(dir: &Path, args: &[&str]) -> String {
    let out = command(dir, args).output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "sykli {args:?}:\n{all}");
    all
}

/// A pipeline of plugin tasks, run locally: files written by one task are read by the next,
/// exit codes decide passed and failed, and the http-runner's tasks really run on the runner
/// service the test started, with the task's env and workdir; a plugin that loops forever and
/// one that snoops are errored naming the plugin while the rest of the run goes on.
#[test]
fn a_plugin_target_runs_tasks_in_a_real_pipeline() {
    let runner = RunnerService::start();
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "make", "command": "echo \"made by $WHO\" > made.txt; echo wrote made.txt",
         "env": {"WHO": "spawn"}, "target": "spawn"},
        {"name": "check", "command": "test \"$(cat made.txt)\" = 'made by spawn' && echo checked",
         "depends_on": ["make"], "target": "spawn"},
        {"name": "broken", "command": "echo about to fail; exit 3", "target": "spawn"},
        {"name": "via-http", "command": "echo \"runner says $GREETING from $(pwd)\"; cat made.txt",
         "env": {"GREETING": "hi"}, "depends_on": ["make"], "target": "http-runner"},
        {"name": "http-fails", "command": "echo no; exit 5", "target": "http-runner"},
        {"name": "plain", "command": "echo plain task"},
        {"name": "spins", "command": "true", "target": "spin"},
        {"name": "snoops", "command": "true", "target": "snoop"},
    ]}));
    let root = dir.path();
    let guests = tempfile::tempdir().unwrap();
    let spawn = spawn_manifest(guests.path(), "1.0.0");
    let http = guest_manifest(
        guests.path(),
        "http-runner",
        &format!("[grants]\nhosts = [\"{}\"]\n", runner.addr),
    );
    let loaded = sykli_ok(root, &["plugin", "load", spawn.to_str().unwrap()]);
    assert!(
        loaded.contains("spawn") && loaded.contains("1.0.0"),
        "{loaded}"
    );
    sykli_ok(root, &["plugin", "load", http.to_str().unwrap()]);
    let spin = guest_manifest(guests.path(), "spin", "[limits]\ndeadline_ms = 1000\n");
    sykli_ok(root, &["plugin", "load", spin.to_str().unwrap()]);
    let snoop = guest_manifest(guests.path(), "snoop", "");
    sykli_ok(root, &["plugin", "load", snoop.to_str().unwrap()]);
    std::fs::write(
        root.join("sykli.toml"),
        format!("[targets.http-runner]\nrunner_url = \"{}\"\n", runner.url()),
    )
    .unwrap();
    let listed = sykli_ok(root, &["plugin", "list"]);
    assert!(
        listed.contains("spawn") && listed.contains("http-runner"),
        "{listed}"
    );

    let out = command(root, &["run", "--keep-going", "--jobs", "4"])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for passed in ["make", "check", "via-http", "plain"] {
        assert!(
            all.contains(&format!("passed {passed}")),
            "{passed}:\n{all}"
        );
    }
    assert!(all.contains("failed broken"), "{all}");
    // Misbehaving plugins are errored, naming the plugin, and the run goes on around them.
    assert!(all.contains("errored spins"), "{all}");
    assert!(
        all.contains("plugin `spin` 1.0.0: exceeded its deadline of 1000 ms"),
        "{all}"
    );
    assert!(all.contains("errored snoops"), "{all}");
    assert!(
        all.contains("plugin `snoop` 1.0.0") && all.contains("read of /etc/passwd"),
        "{all}"
    );
    assert!(all.contains("failed http-fails"), "{all}");
    assert_eq!(
        std::fs::read_to_string(root.join("made.txt")).unwrap(),
        "made by spawn\n"
    );
    let make = task_lines(&all, "make");
    assert!(make.contains(&"spawn plugin 1.0.0"), "{all}");
    assert!(make.contains(&"wrote made.txt"), "{all}");
    assert!(task_lines(&all, "check").contains(&"checked"), "{all}");
    let http_lines = task_lines(&all, "via-http");
    let canonical = root.canonicalize().unwrap();
    assert!(
        http_lines.contains(&format!("runner says hi from {}", canonical.display()).as_str()),
        "{all}"
    );
    assert!(http_lines.contains(&"made by spawn"), "{all}");
    assert!(
        runner.served() >= 2,
        "the runner saw {} requests",
        runner.served()
    );
}

/// The `http` host call speaks https: the http-runner plugin reaches a runner served over TLS
/// whose certificate the machine trusts (`SSL_CERT_FILE`, read like the system's roots); with
/// another trust store the same task is errored naming the certificate, and the runner never
/// receives the task in the clear.
#[test]
fn the_http_host_call_speaks_https_with_the_machines_trusted_roots() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let runner = RunnerService::start_tls(
        &certified.cert.pem(),
        &certified.signing_key.serialize_pem(),
    );
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "secure", "command": "echo over tls", "target": "http-runner"},
    ]}));
    let root = dir.path();
    let guests = tempfile::tempdir().unwrap();
    let http = guest_manifest(
        guests.path(),
        "http-runner",
        &format!("[grants]\nhosts = [\"localhost:{}\"]\n", runner.port()),
    );
    sykli_ok(root, &["plugin", "load", http.to_str().unwrap()]);
    assert!(runner.url().starts_with("https://"), "{}", runner.url());
    std::fs::write(
        root.join("sykli.toml"),
        format!("[targets.http-runner]\nrunner_url = \"{}\"\n", runner.url()),
    )
    .unwrap();
    let (trusted, untrusted) = (
        guests.path().join("ca.pem"),
        guests.path().join("other.pem"),
    );
    std::fs::write(&trusted, certified.cert.pem()).unwrap();
    std::fs::write(&untrusted, stranger.cert.pem()).unwrap();

    let out = command(root, &["run", "--no-cache"])
        .env("SSL_CERT_FILE", &untrusted)
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("errored secure"), "{all}");
    assert!(
        all.contains(&format!("localhost:{}", runner.port())) && all.contains("certificate"),
        "the error names the host and the certificate problem:\n{all}"
    );
    assert_eq!(
        runner.served(),
        0,
        "no request was read without a trusted TLS session"
    );

    let out = command(root, &["run", "--no-cache"])
        .env("SSL_CERT_FILE", &trusted)
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(task_lines(&all, "secure").contains(&"over tls"), "{all}");
    assert_eq!(runner.served(), 1);
}

/// Regression: a plugin was told every attempt was the first (`attempt: 1` was hard-wired in
/// the plugin executor). A retried task's second attempt reaches the plugin as attempt 2.
#[test]
fn a_retried_plugin_task_reaches_the_plugin_with_its_attempt_number() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "flaky", "command": "if [ -f tried ]; then echo second time lucky; else touch tried; exit 1; fi",
         "retry": 1, "target": "spawn"},
    ]}));
    let root = dir.path();
    let guests = tempfile::tempdir().unwrap();
    let spawn = spawn_manifest(guests.path(), "1.0.0");
    sykli_ok(root, &["plugin", "load", spawn.to_str().unwrap()]);
    let all = sykli_ok(root, &["run", "--no-cache"]);
    let lines = task_lines(&all, "flaky");
    assert!(lines.contains(&"spawn plugin 1.0.0: attempt 2"), "{all}");
    assert!(lines.contains(&"second time lucky"), "{all}");
    assert!(
        !lines.iter().any(|l| l.contains("attempt 3")),
        "one retry means two attempts:\n{all}"
    );
}

/// Regression: a plugin task's cache key did not carry the plugin's version, so after a new
/// version was loaded the old version's cached result was served. The key now holds the
/// component's digest (and the target's settings): the new version runs, then is cached.
#[test]
fn a_new_plugin_version_does_not_get_the_old_versions_cached_result() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "hello", "command": "cat in.txt", "inputs": ["in.txt"], "target": "spawn"},
    ]}));
    let root = dir.path();
    std::fs::write(root.join("in.txt"), "input\n").unwrap();
    let guests = tempfile::tempdir().unwrap();
    let run = |version: &str| {
        let manifest = spawn_manifest(guests.path(), version);
        sykli_ok(root, &["plugin", "load", manifest.to_str().unwrap()]);
        let first = sykli_ok(root, &["run"]);
        let again = sykli_ok(root, &["run"]);
        (first, again)
    };
    let (first, again) = run("1.0.0");
    assert!(first.contains("passed hello"), "{first}");
    assert!(
        task_lines(&first, "hello").contains(&"spawn plugin 1.0.0"),
        "{first}"
    );
    assert!(again.contains("cached hello"), "{again}");
    let (first, again) = run("2.0.0");
    assert!(
        first.contains("passed hello"),
        "v2 was served v1's result:\n{first}"
    );
    assert!(
        task_lines(&first, "hello").contains(&"spawn plugin 2.0.0"),
        "{first}"
    );
    assert!(again.contains("cached hello"), "{again}");
}

/// A `sykli worker` for plugin tasks, with a job slot for every task the tests run at once
/// (no sandbox: the tasks signal the test through files outside their input root).
fn plugin_worker(store: &Path) -> Worker {
    Worker::start(store, &["--jobs", "8", "--no-sandbox"])
}

/// A task of a pipeline run through plugin `target` on the remote worker.
fn remote_task(name: &str, command: &str, target: &str) -> Value {
    json!({"name": name, "command": command, "target": target, "remote": true,
           "env": {"PATH": "/usr/local/bin:/usr/bin:/bin"}})
}

/// Regression: a worker told its plugins every remote attempt was the first. The attempt now
/// travels beside the action (`x-sykli-attempt` metadata; the action and its digest are the
/// same for every attempt), so a retried remote plugin task's second attempt reaches the
/// worker's plugin as attempt 2.
#[test]
fn a_retried_remote_plugin_task_reaches_the_workers_plugin_with_its_attempt_number() {
    let tmp = tempfile::tempdir().unwrap();
    let worker = plugin_worker(&tmp.path().join("store"));
    plugins::assert_a_retried_remote_task_reaches_the_plugin_as_attempt_2(tmp.path(), &worker.url);
}

/// Pushing version 2 of a plugin into a running worker while a pipeline of five tasks runs on
/// version 1 (`sykli run --remote`, tasks with `target` and `remote: true`): those five
/// finish on version 1, a task of a pipeline started after the push gets version 2, and
/// nothing is restarted. Tasks signal with files; every wait has a deadline.
#[test]
fn pushing_a_new_version_leaves_running_tasks_on_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let worker = plugin_worker(&tmp.path().join("store"));
    let (v1, v2) = (
        spawn_manifest(tmp.path(), "1.0.0"),
        spawn_manifest(tmp.path(), "2.0.0"),
    );
    let pushed = sykli_ok(
        tmp.path(),
        &["plugin", "push", v1.to_str().unwrap(), "--to", &worker.url],
    );
    assert!(pushed.contains("1.0.0"), "{pushed}");

    let signals = tmp.path().join("signals");
    std::fs::create_dir(&signals).unwrap();
    let sig = signals.display();
    // Each task says it started, then waits (at most 60 s) for `go`.
    let tasks: Vec<Value> = (1..=5)
        .map(|i| {
            remote_task(
                &format!("old-{i}"),
                &format!(
                    "touch {sig}/started-{i}; n=0; while [ ! -e {sig}/go ] && [ $n -lt 600 ]; \
                     do sleep 0.1; n=$((n+1)); done; test -e {sig}/go && echo old task {i} done"
                ),
                "spawn",
            )
        })
        .collect();
    let (_old_project, mut old_run) =
        start_remote_run(json!({"version": "1", "tasks": tasks}), &worker.url);
    wait_for("the five tasks to start on version 1", || {
        (1..=5).all(|i| signals.join(format!("started-{i}")).exists())
    });

    let swapped = sykli_ok(
        tmp.path(),
        &["plugin", "push", v2.to_str().unwrap(), "--to", &worker.url],
    );
    assert!(swapped.contains("2.0.0"), "{swapped}");
    let listed = sykli_ok(tmp.path(), &["plugin", "list", "--to", &worker.url]);
    assert!(
        listed.contains("spawn") && listed.contains("2.0.0"),
        "{listed}"
    );

    // While the old tasks still run, a task of a new pipeline gets version 2.
    let (_new_project, new_run) = start_remote_run(
        json!({"version": "1", "tasks": [remote_task("new", "echo new task ran", "spawn")]}),
        &worker.url,
    );
    let new = finish(new_run, "the pipeline of the new task");
    let new_all = text(&new);
    assert_eq!(new.status.code(), Some(0), "{new_all}");
    let lines = task_lines(&new_all, "new");
    assert!(lines.contains(&"spawn plugin 2.0.0"), "{new_all}");
    assert!(!new_all.contains("spawn plugin 1.0.0"), "{new_all}");
    assert!(lines.contains(&"new task ran"), "{new_all}");
    assert!(
        old_run.try_wait().unwrap().is_none(),
        "the old pipeline must still be waiting for `go`"
    );

    std::fs::write(signals.join("go"), "").unwrap();
    let old = finish(old_run, "the pipeline of the five old tasks");
    let old_all = text(&old);
    assert_eq!(old.status.code(), Some(0), "{old_all}");
    for i in 1..=5 {
        let lines = task_lines(&old_all, &format!("old-{i}"));
        assert!(lines.contains(&"spawn plugin 1.0.0"), "old-{i}:\n{old_all}");
        assert!(
            !lines.contains(&"spawn plugin 2.0.0"),
            "old-{i}:\n{old_all}"
        );
        assert!(
            lines.contains(&format!("old task {i} done").as_str()),
            "old-{i}:\n{old_all}"
        );
    }
    assert!(old_all.contains("5 passed"), "{old_all}");
}

/// Misbehaving plugins on a running worker, each task in a pipeline (`sykli run --remote`):
/// one that loops forever is stopped at its deadline, one that allocates without bound hits
/// its memory cap, one that reads an ungranted file and calls an ungranted host is denied;
/// each task is errored naming the plugin, and after each a plain task on the same worker
/// passes (the server keeps serving). The http-runner plugin runs a task on the runner
/// service too, its URL pushed as config.
#[test]
fn misbehaving_plugins_are_stopped_and_the_worker_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let worker = plugin_worker(&tmp.path().join("store"));
    let runner = RunnerService::start();
    // A real server on a host the snoop plugin is not granted: only the grant can stop it.
    let bystander = RunnerService::start();
    let manifests = [
        spawn_manifest(tmp.path(), "1.0.0"),
        guest_manifest(
            tmp.path(),
            "http-runner",
            &format!("[grants]\nhosts = [\"{}\"]\n", runner.addr),
        ),
        guest_manifest(tmp.path(), "spin", "[limits]\ndeadline_ms = 2000\n"),
        // A short deadline: a hog that stopped allocating would fail fast, not in 10 minutes.
        guest_manifest(
            tmp.path(),
            "hog",
            "[limits]\nmemory_mib = 16\ndeadline_ms = 30000\n",
        ),
        guest_manifest(tmp.path(), "snoop", "[grants]\ndirs = [{ path = \".\" }]\n"),
    ];
    for m in &manifests {
        sykli_ok(
            tmp.path(),
            &["plugin", "push", m.to_str().unwrap(), "--to", &worker.url],
        );
    }
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.http-runner]\nrunner_url = \"{}\"\n[targets.snoop]\nurl = \"http://{}/run\"\n",
            runner.url(),
            bystander.addr
        ),
    )
    .unwrap();
    sykli_ok(
        tmp.path(),
        &["config", "push", &worker.url, config.to_str().unwrap()],
    );

    // One pipeline of one task on the worker: exit code and output.
    let run = |name: &str, target: &str, script: &str| {
        let (_project, child) = start_remote_run(
            json!({"version": "1", "tasks": [remote_task(name, script, target)]}),
            &worker.url,
        );
        let out = finish(child, &format!("the pipeline of task {name}"));
        (out.status.code(), text(&out))
    };
    let still_serving = |after: &str| {
        let (code, all) = run(
            "plain",
            "spawn",
            &format!("echo still serving after {after}"),
        );
        assert_eq!(code, Some(0), "after {after}:\n{all}");
        assert!(
            task_lines(&all, "plain").contains(&format!("still serving after {after}").as_str()),
            "{all}"
        );
    };

    let (code, all) = run("via-http", "http-runner", "echo via the runner; exit 4");
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("failed via-http"), "{all}");
    assert!(
        task_lines(&all, "via-http").contains(&"via the runner"),
        "{all}"
    );
    assert_eq!(runner.served(), 1);

    let started = Instant::now();
    let (code, all) = run("spin", "spin", "true");
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("errored spin"), "{all}");
    assert!(
        all.contains("plugin `spin` 1.0.0: exceeded its deadline of 2000 ms"),
        "{all}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    still_serving("spin");

    let (code, all) = run("hog", "hog", "true");
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("errored hog"), "{all}");
    assert!(
        all.contains("plugin `hog` 1.0.0: exceeded its memory cap of 16 MiB"),
        "{all}"
    );
    still_serving("hog");

    let (code, all) = run("snoop", "snoop", "true");
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("errored snoop"), "{all}");
    assert!(
        all.contains("plugin `snoop` 1.0.0") && all.contains("denied: read of /etc/passwd"),
        "{all}"
    );
    let lines = task_lines(&all, "snoop").join("\n");
    assert!(
        lines.contains("snoop: read-file /etc/passwd: denied: read of /etc/passwd"),
        "{all}"
    );
    assert!(
        lines.contains(&format!(
            "snoop: http GET http://{}/run: denied",
            bystander.addr
        )),
        "{all}"
    );
    assert!(lines.contains("snoop: fopen /etc/passwd: "), "{all}");
    assert!(
        !all.contains("ALLOWED") && !all.contains("NOTHING WAS DENIED"),
        "{all}"
    );
    assert_eq!(bystander.served(), 0, "the ungranted host was reached");
    still_serving("snoop");

    let listed = sykli_ok(tmp.path(), &["plugin", "list", "--to", &worker.url]);
    for name in ["spawn", "http-runner", "spin", "hog", "snoop"] {
        assert!(listed.contains(name), "{name}:\n{listed}");
    }
}

/// A machine without the C toolchain gets an error naming what to install, not a linker error.
#[test]
fn a_missing_clang_is_named_with_its_package_and_the_setup_script() {
    let version = plugins::check_toolchain(&plugins::clang_path()).unwrap();
    assert!(version.contains("clang version"), "{version}");
    let dir = tempfile::tempdir().unwrap();
    let err = plugins::check_toolchain(&dir.path().join("no-such-clang")).unwrap_err();
    assert!(err.contains("no-such-clang` cannot be run"), "{err}");
    assert!(err.contains("Debian package `clang`"), "{err}");
    assert!(err.contains(".ci/plugin-toolchain.sh install"), "{err}");
}
