//! `/metrics`, `/healthz` and `/readyz` of the real servers, scraped during and after real
//! runs and parsed with a Prometheus text-format parser (`prometheus-parse`).

mod common;
mod common_web;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::worker::Worker;
use common_web::{UiRun, buckets, count, get, get_with, scrape, wait_for, wait_on};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("grpc://")
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[test]
fn run_ui_metrics_follow_the_run_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    std::fs::write(
        dir.path().join("sykli.json"),
        json!({"version": "1", "tasks": [
            {"name": "quick", "command": "echo quick"},
            {"name": "held", "command": wait_on(&gate, "released")},
            {"name": "last", "command": "echo last", "depends_on": ["held"]},
        ]})
        .to_string(),
    )
    .unwrap();
    let run = UiRun::start(dir.path(), &["--jobs", "4"]);
    assert_eq!(get(run.addr, "/healthz").status, 200);
    let ready = get(run.addr, "/readyz");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    // `quick` done, `held` running on the gate, `last` waiting for it.
    let s = wait_for(DEADLINE, "quick passed and held running", || {
        let s = scrape(run.addr);
        let state = (
            count(&s, "sykli_tasks_finished_total", &[("status", "passed")]),
            count(&s, "sykli_running_tasks", &[]),
            count(&s, "sykli_queue_depth", &[]),
        );
        if state == (1.0, 1.0, 1.0) {
            Ok(s)
        } else {
            Err(format!("(passed, running, queued) = {state:?}"))
        }
    });
    assert_eq!(count(&s, "sykli_task_duration_seconds_count", &[]), 1.0);
    // The content type says which text format it is.
    let reply = get(run.addr, "/metrics");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{reply:?}"
    );
    std::fs::write(&gate, "").unwrap();
    let (code, stderr) = run.finish(DEADLINE);
    assert_eq!(code, Some(0), "{stderr}");
}

/// A cacheable remote pipeline: `gen` at once, `held` once `gate` exists.
fn remote_project(root: &Path, name: &str, gate: &Path) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/a.txt"), "alpha\n").unwrap();
    std::fs::write(
        dir.join("sykli.json"),
        json!({"version": "1", "tasks": [
            {"name": "gen", "command": "mkdir -p out && cat src/a.txt > out/gen.txt",
             "inputs": ["src/**"], "outputs": {"o": "out/gen.txt"}, "remote": true},
            {"name": "held", "command": format!("{} && echo held > held.txt", wait_on(gate, "go")),
             "inputs": ["src/**"], "outputs": {"o": "held.txt"}, "remote": true},
        ]})
        .to_string(),
    )
    .unwrap();
    dir
}

fn remote_run(dir: &Path, url: &str) -> Command {
    let mut cmd = common::command(
        dir,
        &["run", "--jobs", "4", "--remote", url, "--remote-cache", url],
    );
    cmd.env_remove("SYKLI_TOKEN")
        .env_remove("SYKLI_REMOTE")
        .env_remove("SYKLI_REMOTE_CACHE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_worker_counts_running_and_finished_actions_and_cache_hits_after_a_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let gate = tmp.path().join("gate");
    // The held action waits on a file of this machine: no sandbox.
    let worker = Worker::start(&tmp.path().join("store"), &["--no-sandbox"]);
    let addr = addr_of(&worker.url);
    assert_eq!(get(addr, "/healthz").status, 200);
    assert_eq!(get(addr, "/readyz").status, 200);
    let before = scrape(addr);
    assert_eq!(
        count(&before, "sykli_task_duration_seconds_count", &[]),
        0.0
    );

    let first = remote_project(tmp.path(), "first", &gate);
    let mut child = remote_run(&first, &worker.url).spawn().unwrap();
    // During the run: one action runs (held), one finished (gen).
    wait_for(DEADLINE, "the worker runs held and finished gen", || {
        let s = scrape(addr);
        let state = (
            count(&s, "sykli_running_tasks", &[]),
            count(&s, "sykli_tasks_finished_total", &[("status", "passed")]),
            count(&s, "sykli_queue_depth", &[]),
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended early ({status}) with (running, passed, queued) = {state:?}");
        }
        if state == (1.0, 1.0, 0.0) {
            Ok(())
        } else {
            Err(format!("(running, passed, queued) = {state:?}"))
        }
    });
    std::fs::write(&gate, "").unwrap();
    wait_for(DEADLINE, "the first run ends", || match child.try_wait() {
        Ok(Some(_)) => Ok(()),
        _ => Err("still running".into()),
    });
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", common::text(&output));

    // After it: both actions finished, every one timed, nothing running, nothing cached yet.
    let s = scrape(addr);
    assert_eq!(
        count(&s, "sykli_tasks_finished_total", &[("status", "passed")]),
        2.0
    );
    assert_eq!(count(&s, "sykli_task_duration_seconds_count", &[]), 2.0);
    assert!(count(&s, "sykli_task_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(count(&s, "sykli_running_tasks", &[]), 0.0);
    assert_eq!(count(&s, "sykli_queue_depth", &[]), 0.0);
    assert_eq!(count(&s, "sykli_cache_hits_total", &[]), 0.0);
    let lookups = count(&s, "sykli_cache_lookups_total", &[]);
    assert!(lookups >= 2.0, "each action was looked up first: {lookups}");
    // The histogram's buckets are cumulative and end with every observation.
    let b = buckets(&s, "sykli_task_duration_seconds");
    assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "{b:?}");
    assert_eq!(b.last(), Some(&(f64::INFINITY, 2.0)), "{b:?}");

    // Another checkout with its own local cache: both are remote cache hits, nothing runs.
    let second = remote_project(tmp.path(), "second", &gate);
    let output = remote_run(&second, &worker.url).output().unwrap();
    let all = common::text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("2 passed (2 cached)"), "{all}");
    let s = scrape(addr);
    assert_eq!(count(&s, "sykli_cache_hits_total", &[]), 2.0);
    assert!(count(&s, "sykli_cache_lookups_total", &[]) >= lookups + 2.0);
    assert_eq!(
        count(&s, "sykli_task_duration_seconds_count", &[]),
        2.0,
        "nothing ran again"
    );
}

#[test]
fn metrics_and_health_need_no_token_but_a_worker_with_one_still_refuses_grpc_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let worker =
        Worker::start_with_env(&tmp.path().join("store"), &[], &[("SYKLI_TOKEN", "s3cret")]);
    let addr = addr_of(&worker.url);
    assert_eq!(get(addr, "/healthz").status, 200);
    assert_eq!(get(addr, "/readyz").status, 200);
    assert_eq!(get(addr, "/metrics").status, 200);
    let missing = get(addr, "/no-such-page");
    assert_eq!(missing.status, 404, "{missing:?}");
    // gRPC on the same port still answers, and still wants the token.
    let grpc = get_with(
        addr,
        "/build.bazel.remote.execution.v2.Capabilities/GetCapabilities",
        &[("content-type", "application/grpc")],
    )
    .unwrap();
    assert_eq!(
        grpc.header("grpc-status"),
        Some("16"),
        "UNAUTHENTICATED: {grpc:?}"
    );
    // An unknown gRPC service is UNIMPLEMENTED, as before HTTP shared the port.
    let unknown = get_with(
        addr,
        "/foo.Bar/Baz",
        &[("content-type", "application/grpc")],
    )
    .unwrap();
    assert_eq!(unknown.header("grpc-status"), Some("12"), "{unknown:?}");
}

#[test]
fn serve_is_ready_only_with_a_worker_taking_work_and_counts_its_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("serve.log");
    let serve = common::pool::Proc::start(
        &[
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--store".into(),
            tmp.path().join("serve").display().to_string(),
            "--heartbeat".into(),
            "200ms".into(),
        ],
        &log,
    );
    let url = serve
        .line
        .strip_prefix("sykli serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {:?}", serve.line))
        .to_owned();
    let addr = addr_of(&url);
    assert_eq!(get(addr, "/healthz").status, 200);
    let ready = get(addr, "/readyz");
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready.body.contains("no worker in the pool takes work"),
        "{ready:?}"
    );
    assert_eq!(count(&scrape(addr), "sykli_workers", &[]), 0.0);

    let wlog = tmp.path().join("worker.log");
    let _worker = common::pool::Proc::start(
        &[
            "worker".into(),
            "--join".into(),
            url.clone(),
            "--store".into(),
            tmp.path().join("w").display().to_string(),
            "--jobs".into(),
            "2".into(),
        ],
        &wlog,
    );
    wait_for(DEADLINE, "serve ready with one worker", || {
        let (r, s) = (get(addr, "/readyz"), scrape(addr));
        let workers = count(&s, "sykli_workers", &[]);
        if r.status == 200 && workers == 1.0 {
            Ok(())
        } else {
            Err(format!(
                "readyz {} {:?}, workers {workers}",
                r.status, r.body
            ))
        }
    });
}

#[test]
fn run_serve_answers_metrics_and_health_on_its_grpc_port() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    std::fs::write(
        dir.path().join("sykli.json"),
        json!({"version": "1", "tasks": [{"name": "held", "command": wait_on(&gate, "go")}]})
            .to_string(),
    )
    .unwrap();
    let mut child = common::command(dir.path(), &["run", "--serve", "127.0.0.1:0"])
        .env_remove("SYKLI_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let addr: SocketAddr = wait_for(DEADLINE, "the serving line", || {
        let line = rx
            .recv_timeout(Duration::from_millis(200))
            .map_err(|e| e.to_string())?;
        line.split("grpc://")
            .nth(1)
            .and_then(|rest| rest.split([' ', ')']).next())
            .and_then(|a| a.parse().ok())
            .ok_or(line)
    });
    assert_eq!(get(addr, "/healthz").status, 200);
    assert_eq!(get(addr, "/readyz").status, 200);
    wait_for(DEADLINE, "held runs", || {
        let running = count(&scrape(addr), "sykli_running_tasks", &[]);
        if running == 1.0 {
            Ok(())
        } else {
            Err(format!("running {running}"))
        }
    });
    std::fs::write(&gate, "").unwrap();
    wait_for(DEADLINE, "the run ends", || match child.try_wait() {
        Ok(Some(s)) => Ok(s),
        _ => Err("still running".into()),
    });
    assert!(child.wait().unwrap().success());
}
