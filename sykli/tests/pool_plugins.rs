//! Target plugins and hot config on a `sykli serve` pool, over loopback with real joined
//! workers: `sykli plugin push --to SERVE` loads the C `spawn` guest (built from
//! examples/plugins/ by the test support) on serve and every joined worker, a pipeline's
//! `target: spawn, remote: true` tasks run on both workers, a new version pushed while tasks
//! run leaves them on the old one and gives new ones the new, a worker joining later gets the
//! pushed version, serve keeps plugins and config across a restart, `sykli config push` is
//! validated whole and reaches the workers, and an action asking for a plugin no worker has
//! times out naming it.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use common::plugins::{self, spawn_manifest};
use common::pool::{Pool, client, execute, outcome, shell_action};
use common::runs::{DEADLINE, finish, start_remote_run, task_lines, wait_for};
use common::{command, text};
use serde_json::{Value, json};

const HEARTBEAT: &str = "200ms";
/// `sykli ARGS` in `dir`, bounded by [`DEADLINE`]: its exit code and output.
fn sykli(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let child = command(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(child, &format!("sykli {args:?}"));
    (out.status.code(), text(&out))
}

/// `sykli ARGS` in `dir`, asserting it exits 0; its output.
fn sykli_ok(dir: &Path, args: &[&str]) -> String {
    let (code, all) = sykli(dir, args);
    assert_eq!(code, Some(0), "sykli {args:?}:\n{all}");
    all
}

/// A task run through plugin `spawn` on the pool.
fn remote_task(name: &str, command: &str) -> Value {
    json!({"name": name, "command": command, "target": "spawn", "remote": true,
           "env": {"PATH": "/usr/local/bin:/usr/bin:/bin"}})
}

/// The worker pid a task printed (`worker PID`).
fn worker_pid(all: &str, task: &str) -> i32 {
    task_lines(all, task)
        .iter()
        .find_map(|l| l.strip_prefix("worker ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{task} printed no worker pid:\n{all}"))
}

/// The digest of plugin `name` each joined worker has loaded (status order).
fn loaded(status: &Value, name: &str) -> Vec<Option<String>> {
    status["workers"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| {
                    w["plugins"].as_array().and_then(|ps| {
                        ps.iter()
                            .filter_map(Value::as_str)
                            .find_map(|p| p.strip_prefix(&format!("{name}@")).map(str::to_owned))
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The whole story on one pool: push to serve reaches both workers; tasks of a pipeline run
/// on both; v2 pushed while they run leaves them on v1 and gives a new task v2; config push
/// is refused whole on a bad key and applied on the workers when good; a worker joining after
/// the pushes gets v2 and the config; a restarted serve still holds both.
/// The attempt of a retried task travels through serve to the joined worker's plugin (the
/// `attempt` of the pool's `Work`): its second attempt is attempt 2 there too.
#[test]
fn a_retried_plugin_task_on_serve_reaches_the_joined_workers_plugin_as_attempt_2() {
    let tmp = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(tmp.path(), HEARTBEAT, &[]);
    pool.add_worker(2, &["--no-sandbox"]);
    plugins::assert_a_retried_remote_task_reaches_the_plugin_as_attempt_2(tmp.path(), &pool.url);
}

#[test]
fn a_plugin_pushed_to_serve_runs_on_every_worker_and_swaps_without_stopping_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(tmp.path(), HEARTBEAT, &[]);
    pool.add_worker(3, &["--no-sandbox"]);
    pool.add_worker(3, &["--no-sandbox"]);
    let (v1, v2) = (
        spawn_manifest(tmp.path(), "1.0.0"),
        spawn_manifest(tmp.path(), "2.0.0"),
    );
    let url = pool.url.clone();
    let pushed = sykli_ok(
        tmp.path(),
        &["plugin", "push", v1.to_str().unwrap(), "--to", &url],
    );
    assert!(pushed.contains("1.0.0"), "{pushed}");
    // The push answered once both workers loaded it.
    let status = pool.status();
    let digests = loaded(&status, "spawn");
    assert_eq!(digests.len(), 2, "{status}");
    assert!(digests.iter().all(|d| d.is_some()), "{status}");

    // Four tasks, three slots per worker: both workers run some. Each says it started, then
    // waits (at most 60 s) for `go`.
    let signals = tmp.path().join("signals");
    std::fs::create_dir(&signals).unwrap();
    let sig = signals.display();
    let tasks: Vec<Value> = (1..=4)
        .map(|i| {
            remote_task(
                &format!("old-{i}"),
                &format!(
                    "echo worker $PPID; touch {sig}/started-{i}; n=0; \
                     while [ ! -e {sig}/go ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done; \
                     test -e {sig}/go && echo old task {i} done"
                ),
            )
        })
        .collect();
    let (_old_project, mut old_run) =
        start_remote_run(json!({"version": "1", "tasks": tasks}), &url);
    wait_for("the four tasks to start on version 1", || {
        (1..=4).all(|i| signals.join(format!("started-{i}")).exists())
    });

    let started = Instant::now();
    let swapped = sykli_ok(
        tmp.path(),
        &["plugin", "push", v2.to_str().unwrap(), "--to", &url],
    );
    let push_took = started.elapsed();
    assert!(swapped.contains("2.0.0"), "{swapped}");
    let listed = sykli_ok(tmp.path(), &["plugin", "list", "--to", &url]);
    assert!(
        listed.contains("spawn") && listed.contains("2.0.0"),
        "{listed}"
    );
    let status = pool.status();
    let v2_digest = loaded(&status, "spawn")[0].clone().unwrap();
    assert!(
        loaded(&status, "spawn")
            .iter()
            .all(|d| d.as_deref() == Some(v2_digest.as_str())),
        "both workers answered the push with v2: {status}"
    );

    // While the old tasks run, a task of a new pipeline gets version 2.
    let (_new_project, new_run) = start_remote_run(
        json!({"version": "1", "tasks": [remote_task("new", "echo new task ran")]}),
        &url,
    );
    let new = finish(new_run, "the pipeline of the new task");
    let new_all = text(&new);
    assert_eq!(new.status.code(), Some(0), "{new_all}");
    let lines = task_lines(&new_all, "new");
    assert!(lines.contains(&"spawn plugin 2.0.0"), "{new_all}");
    assert!(lines.contains(&"new task ran"), "{new_all}");
    assert!(
        old_run.try_wait().unwrap().is_none(),
        "the old pipeline must still be waiting for `go`"
    );
    std::fs::write(signals.join("go"), "").unwrap();
    let old = finish(old_run, "the pipeline of the four old tasks");
    let old_all = text(&old);
    assert_eq!(old.status.code(), Some(0), "{old_all}");
    let mut pids = std::collections::BTreeSet::new();
    for i in 1..=4 {
        let task = format!("old-{i}");
        let lines = task_lines(&old_all, &task);
        assert!(lines.contains(&"spawn plugin 1.0.0"), "{task}:\n{old_all}");
        assert!(!lines.contains(&"spawn plugin 2.0.0"), "{task}:\n{old_all}");
        assert!(
            lines.contains(&format!("old task {i} done").as_str()),
            "{task}:\n{old_all}"
        );
        pids.insert(worker_pid(&old_all, &task));
    }
    let workers: std::collections::BTreeSet<i32> = pool.workers.iter().map(|w| w.pid()).collect();
    assert_eq!(pids, workers, "the tasks ran on both workers:\n{old_all}");

    // A config with bad keys is refused naming each, and changes nothing.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "concurrency = 0\ncolour = \"red\"\n[labels]\npool = \"x\"\n",
    )
    .unwrap();
    let (code, refused) = sykli(tmp.path(), &["config", "push", &url, bad.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{refused}");
    assert!(refused.contains("colour"), "{refused}");
    assert!(refused.contains("concurrency"), "{refused}");
    let shown = sykli_ok(tmp.path(), &["config", "show", &url]);
    assert!(!shown.contains("pool"), "{shown}");
    let status = pool.status();
    for w in status["workers"].as_array().unwrap() {
        assert_eq!(w["jobs"], 3, "{status}");
    }

    // A good one reaches every worker: job slots and labels change, nothing restarts.
    let good = tmp.path().join("good.toml");
    std::fs::write(&good, "concurrency = 5\n[labels]\npool = \"fast\"\n").unwrap();
    let started = Instant::now();
    sykli_ok(
        tmp.path(),
        &["config", "push", &url, good.to_str().unwrap()],
    );
    println!(
        "pool: plugin push (v2, 2 workers, 4 tasks running) answered in {push_took:?}; \
         config push to applied on 2 workers in {:?} (each the whole `sykli` command)",
        started.elapsed()
    );
    let shown = sykli_ok(tmp.path(), &["config", "show", &url]);
    assert!(shown.contains("concurrency = 5"), "{shown}");
    let has_config = |w: &Value| {
        w["jobs"] == 5
            && w["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|l| l == "pool=fast"))
    };
    let status = pool.status();
    let ws = status["workers"].as_array().unwrap();
    assert!(ws.iter().all(has_config), "{status}");

    // Workers that join after the pushes (the first two gone) get v2 and the config.
    for w in &mut pool.workers {
        w.kill9();
    }
    pool.wait_status("the first workers to leave", DEADLINE, |s| {
        s["workers"].as_array().is_some_and(|w| w.is_empty())
    });
    let late = pool.add_worker(2, &["--no-sandbox"]);
    let late_pid = pool.workers[late].pid();
    pool.wait_status("the late worker to load v2 and the config", DEADLINE, |s| {
        loaded(s, "spawn") == vec![Some(v2_digest.clone())]
            && s["workers"].as_array().is_some_and(|w| has_config(&w[0]))
    });
    let (_late_project, late_run) = start_remote_run(
        json!({"version": "1", "tasks": [remote_task("late", "echo worker $PPID")]}),
        &url,
    );
    let late_out = finish(late_run, "the pipeline on the late worker");
    let late_all = text(&late_out);
    assert_eq!(late_out.status.code(), Some(0), "{late_all}");
    assert!(
        task_lines(&late_all, "late").contains(&"spawn plugin 2.0.0"),
        "{late_all}"
    );
    assert_eq!(worker_pid(&late_all, "late"), late_pid, "{late_all}");

    // Serve keeps both across a restart.
    pool.restart_serve();
    let listed = sykli_ok(tmp.path(), &["plugin", "list", "--to", &url]);
    assert!(
        listed.contains("spawn") && listed.contains("2.0.0"),
        "{listed}"
    );
    let shown = sykli_ok(tmp.path(), &["config", "show", &url]);
    assert!(shown.contains("concurrency = 5"), "{shown}");
}

/// An action asking for a plugin no joined worker has loaded is never run elsewhere: it
/// fails at the queue timeout naming the plugin; one a worker has runs there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_action_for_a_plugin_no_worker_has_times_out_naming_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), HEARTBEAT, &["--queue-timeout", "1s"]);
    pool.add_worker(2, &[]);
    let c = client(&pool.url).await;
    let a = shell_action(&c, "touch ran-anyway", &[("sykli-target", "nope")], true).await;
    let started = Instant::now();
    let resp = execute(&c, &a).await;
    let (code, exit, message) = outcome(&resp);
    assert_eq!(code, tonic::Code::FailedPrecondition as i32, "{message}");
    assert_eq!(exit, None, "{message}");
    assert!(message.contains("plugin `nope`"), "{message}");
    assert!(started.elapsed() < DEADLINE, "{message}");
    let status = pool.status();
    assert_eq!(status["completed"], 0, "nothing ran: {status}");
}

/// A plain `sykli worker` that serve drives (`--worker URL`) gets plugin actions only once
/// its own admin service lists the plugin (pushed to it directly): before, the action times
/// out naming the plugin; after, it runs there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_worker_gets_plugin_actions_once_it_has_the_plugin() {
    use sykli_runtime::plugin::fixture::{Behaviour, component};
    let tmp = tempfile::tempdir().unwrap();
    let w = common::worker::Worker::start(&tmp.path().join("plain"), &["--no-sandbox"]);
    let pool = Pool::start(
        tmp.path(),
        HEARTBEAT,
        &["--worker", &w.url, "--queue-timeout", "1s"],
    );
    pool.wait_status("the static worker in the pool", DEADLINE, |s| {
        s["workers"].as_array().is_some_and(|w| w.len() == 1)
    });
    let c = client(&pool.url).await;
    let a = shell_action(&c, "echo before", &[("sykli-target", "fx")], true).await;
    let (code, _, message) = outcome(&execute(&c, &a).await);
    assert_eq!(code, tonic::Code::FailedPrecondition as i32, "{message}");
    assert!(message.contains("plugin `fx`"), "{message}");

    let src = tmp.path().join("fx");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("fx.wasm"),
        component("fx", "1.0.0", Behaviour::Exit(0)).unwrap(),
    )
    .unwrap();
    std::fs::write(
        src.join("plugin.toml"),
        "name = \"fx\"\ncomponent = \"fx.wasm\"\n",
    )
    .unwrap();
    let manifest = src.join("plugin.toml");
    sykli_ok(
        tmp.path(),
        &["plugin", "push", manifest.to_str().unwrap(), "--to", &w.url],
    );
    pool.wait_status("the static worker to list fx", DEADLINE, |s| {
        loaded(s, "fx").first().is_some_and(Option::is_some)
    });
    let b = shell_action(&c, "echo after", &[("sykli-target", "fx")], true).await;
    let resp = execute(&c, &b).await;
    let (code, exit, message) = outcome(&resp);
    assert_eq!((code, exit), (0, Some(0)), "{message}");
}

/// Serve validates a pushed config itself (not only the CLI): a config with bad keys, sent
/// straight to its admin service, is refused naming each key, and nothing changes; a plugin
/// that is not a component is refused naming the plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_refuses_a_bad_config_whole_and_a_bad_plugin_naming_it() {
    use sykli_runtime::plugin::admin::AdminClient;
    use sykli_runtime::remote::client::ClientOptions;
    use sykli_runtime::remote::endpoint::Endpoint;
    let tmp = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(tmp.path(), HEARTBEAT, &[]);
    pool.add_worker(2, &[]);
    let opts = ClientOptions::new(Endpoint::parse(&pool.url).unwrap());
    let mut admin = AdminClient::connect(&opts).await.unwrap();
    admin.push_config("concurrency = 4\n").await.unwrap();
    let err = admin
        .push_config("concurrency = 9\ncolour = \"red\"\n[labels]\ngpu = true\n")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("colour"), "{err}");
    assert!(err.contains("labels.gpu"), "{err}");
    assert_eq!(admin.show_config().await.unwrap(), "concurrency = 4\n");
    let status = pool.status();
    assert_eq!(status["workers"][0]["jobs"], 4, "{status}");

    let bad = sykli_runtime::plugin::PluginSource {
        manifest: sykli_runtime::plugin::Manifest::parse(
            "name = \"broken\"\ncomponent = \"x.wasm\"\n",
            "test",
        )
        .unwrap(),
        manifest_text: "name = \"broken\"\ncomponent = \"x.wasm\"\n".into(),
        wasm: b"not wasm".to_vec(),
    };
    let err = admin.push_plugin(&bad).await.unwrap_err().to_string();
    assert!(err.contains("broken"), "{err}");
    let listed = admin.list_plugins().await.unwrap();
    assert!(listed.plugins.is_empty(), "{listed:?}");
}
