//! The live web page of `sykli run --ui`, loaded in a headless Chromium (Debian's `chromium`,
//! installed by the pipeline's `chromium` task) during a real run whose tasks wait on files
//! this test creates: the graph's task states change as the run proceeds (read from the live
//! DOM of one page load), logs show, history lists earlier runs, and screenshots are taken.

mod common;
mod common_web;

use std::path::Path;
use std::time::Duration;

use common_web::cdp::Browser;
use common_web::{UiRun, get, wait_for, wait_on};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

/// `first` (waits on `go1`), `second` after it (waits on `go2`), `third` after both.
fn project(dir: &Path) {
    std::fs::write(
        dir.join("sykli.json"),
        json!({"version": "1", "tasks": [
            {"name": "first", "command": wait_on(&dir.join("go1"), "first-output")},
            {"name": "second", "command": wait_on(&dir.join("go2"), "second-output"),
             "depends_on": ["first"]},
            {"name": "third", "command": "echo third-output", "depends_on": ["first", "second"]},
        ]})
        .to_string(),
    )
    .unwrap();
}

/// The page's tasks as `{name: state}`, from their `data-task` / `data-state` attributes.
const STATES: &str = "Object.fromEntries([...document.querySelectorAll('#graph g.task')]\
    .map(g => [g.dataset.task, g.dataset.state]))";

fn wait_states(b: &mut Browser, what: &str, want: &[(&str, &str)]) -> Value {
    wait_for(DEADLINE, what, || {
        let states = b.eval(STATES);
        if want.iter().all(|(t, s)| states[*t] == json!(s)) {
            Ok(states)
        } else {
            Err(states.to_string())
        }
    })
}

/// Takes a screenshot; checks it is a real PNG of some size.
fn shot(b: &mut Browser, path: &Path) -> Vec<u8> {
    let size = b.screenshot(path);
    let png = std::fs::read(path).expect("the screenshot file");
    assert_eq!(png.len(), size);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is no PNG",
        path.display()
    );
    assert!(size > 10_000, "{} is only {size} bytes", path.display());
    png
}

#[test]
fn the_page_colours_task_states_live_as_the_run_proceeds_and_shows_logs_and_history() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    std::fs::create_dir(&dir).unwrap();
    project(&dir);
    // SYKLI_WEB_SHOTS=DIR keeps the screenshots there for a look.
    let shots = std::env::var_os("SYKLI_WEB_SHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("shots"));
    std::fs::create_dir_all(&shots).unwrap();

    let run = UiRun::start(&dir, &["--jobs", "4"]);
    let page = get(run.addr, "/ui");
    assert_eq!(page.status, 200);
    // Everything is served from the binary: no external address (the SVG namespace is a
    // name, not a fetch).
    for asset in ["/ui", "/ui/app.js", "/ui/app.css"] {
        let body = get(run.addr, asset)
            .body
            .replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset}"
        );
    }
    let mut b = Browser::start(&tmp.path().join("profile"));
    b.navigate(&format!("http://{}/ui", run.addr));

    // One page load from here on: the states change under it.
    wait_states(
        &mut b,
        "first runs",
        &[
            ("first", "running"),
            ("second", "pending"),
            ("third", "pending"),
        ],
    );
    // The graph has the dependencies as edges.
    let edges = b.eval(
        "[...document.querySelectorAll('#graph path.edge')].map(p => p.dataset.from + '>' + p.dataset.to).sort()",
    );
    assert_eq!(
        edges,
        json!(["first>second", "first>third", "second>third"])
    );
    // A running task shows its sampled CPU and memory.
    wait_for(DEADLINE, "first shows its CPU and memory", || {
        let usage = b.eval(
            "document.querySelector('#graph g.task[data-task=\"first\"] text.usage').textContent",
        );
        if usage.as_str().is_some_and(|u| u.contains('%')) {
            Ok(())
        } else {
            Err(usage.to_string())
        }
    });
    let running = shot(&mut b, &shots.join("1-first-running.png"));

    std::fs::write(dir.join("go1"), "").unwrap();
    wait_states(
        &mut b,
        "first passed, second runs",
        &[
            ("first", "passed"),
            ("second", "running"),
            ("third", "pending"),
        ],
    );
    // Its log, from the live stream, when the task is clicked.
    b.eval("document.querySelector('#graph g.task[data-task=\"first\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))");
    wait_for(DEADLINE, "first's log shows", || {
        let log = b.eval("document.getElementById('log').textContent");
        if log.as_str().is_some_and(|l| l.contains("first-output")) {
            Ok(())
        } else {
            Err(log.to_string())
        }
    });
    let middle = shot(&mut b, &shots.join("2-second-running.png"));
    assert_ne!(
        running, middle,
        "the page looks different once states changed"
    );

    std::fs::write(dir.join("go2"), "").unwrap();
    wait_states(
        &mut b,
        "all passed",
        &[
            ("first", "passed"),
            ("second", "passed"),
            ("third", "passed"),
        ],
    );
    wait_for(DEADLINE, "the run shows as passed", || {
        let s = b.eval("document.getElementById('run-state').dataset.state");
        if s == json!("passed") {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    shot(&mut b, &shots.join("3-all-passed.png"));
    let first_run = b.eval("document.getElementById('run-title').textContent");
    let first_run = first_run.as_str().expect("a run id").to_owned();
    let (code, stderr) = run.finish(DEADLINE);
    assert_eq!(code, Some(0), "{stderr}");

    // A second run: the first is in the history, and shows from its journal with its logs.
    std::fs::remove_file(dir.join("go1")).unwrap();
    std::fs::remove_file(dir.join("go2")).unwrap();
    let run = UiRun::start(&dir, &["--jobs", "4"]);
    b.navigate(&format!("http://{}/ui?run={first_run}", run.addr));
    wait_for(DEADLINE, "the first run is listed as passed", || {
        let outcome = b.eval(&format!(
            "(document.querySelector('#runs li[data-run=\"{first_run}\"]') || {{dataset: {{}}}}).dataset.outcome"
        ));
        if outcome == json!("passed") {
            Ok(())
        } else {
            Err(outcome.to_string())
        }
    });
    wait_states(
        &mut b,
        "the first run's final states",
        &[
            ("first", "passed"),
            ("second", "passed"),
            ("third", "passed"),
        ],
    );
    b.eval("document.querySelector('#graph g.task[data-task=\"second\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))");
    wait_for(DEADLINE, "second's log from the journal", || {
        let log = b.eval("document.getElementById('log').textContent");
        if log.as_str().is_some_and(|l| l.contains("second-output")) {
            Ok(())
        } else {
            Err(log.to_string())
        }
    });
    shot(&mut b, &shots.join("4-history.png"));
    std::fs::write(dir.join("go1"), "").unwrap();
    std::fs::write(dir.join("go2"), "").unwrap();
    let (code, stderr) = run.finish(DEADLINE);
    assert_eq!(code, Some(0), "{stderr}");
    for f in [
        "1-first-running.png",
        "2-second-running.png",
        "3-all-passed.png",
        "4-history.png",
    ] {
        assert!(shots.join(f).is_file(), "{f}");
    }
}

#[test]
fn the_event_stream_resumes_after_last_event_id_without_gap_or_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let run = UiRun::start(dir, &["--jobs", "4"]);
    let runs: Value = serde_json::from_str(&get(run.addr, "/api/runs").body).unwrap();
    let id = runs["live"][0]["run_id"]
        .as_str()
        .expect("a live run")
        .to_owned();
    let missing = get(run.addr, "/api/runs/no-such-run/events");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("no-such-run"), "{}", missing.body);
    // The whole stream (it ends with `end` once the run is over), and the stream resumed
    // after seq 3, both opened while the run waits and read to their end.
    let path = format!("/api/runs/{id}/events");
    let ids = |body: &str| -> Vec<u64> {
        body.lines()
            .filter_map(|l| l.strip_prefix("id:"))
            .map(|n| n.trim().parse().unwrap())
            .collect()
    };
    let addr = run.addr;
    let (p1, p2) = (path.clone(), path.clone());
    let whole = std::thread::spawn(move || get(addr, &p1));
    let resumed = std::thread::spawn(move || {
        common_web::get_with(addr, &p2, &[("Last-Event-ID", "3")]).unwrap()
    });
    std::fs::write(dir.join("go1"), "").unwrap();
    std::fs::write(dir.join("go2"), "").unwrap();
    let all = whole.join().unwrap();
    assert_eq!(all.status, 200);
    assert!(all.body.contains("event: end"), "{}", all.body);
    let seqs = ids(&all.body);
    assert!(seqs.len() > 3, "{}", all.body);
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free from 1"
    );
    assert!(
        all.body.contains("\"event\":\"run_finished\""),
        "{}",
        all.body
    );
    let resumed = resumed.join().unwrap();
    assert_eq!(
        ids(&resumed.body),
        (4..=seqs.len() as u64).collect::<Vec<_>>()
    );
    let (code, stderr) = run.finish(DEADLINE);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn serve_ui_shows_the_runs_it_serves_behind_its_token() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let token_arg = token.display().to_string();
    let serve = common::pool::Proc::start(
        &[
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--store".into(),
            tmp.path().join("serve").display().to_string(),
            "--token-file".into(),
            token_arg.clone(),
            "--ui".into(),
        ],
        &tmp.path().join("serve.log"),
    );
    let url = serve
        .line
        .strip_prefix("sykli serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {:?}", serve.line))
        .to_owned();
    let addr: std::net::SocketAddr = url.trim_start_matches("grpc://").parse().unwrap();
    let _worker = common::pool::Proc::start(
        &[
            "worker".into(),
            "--join".into(),
            url.clone(),
            "--store".into(),
            tmp.path().join("w").display().to_string(),
            "--token-file".into(),
            token_arg.clone(),
        ],
        &tmp.path().join("worker.log"),
    );
    // The page's data needs the token; its static files, health and metrics do not.
    let refused = get(addr, "/api/runs");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(refused.body.contains("requires a token"), "{refused:?}");
    assert_eq!(get(addr, "/api/graph").status, 401);
    assert_eq!(get(addr, "/api/runs/any/events").status, 401);
    assert_eq!(get(addr, "/api/runs?token=wrong").status, 401);
    assert_eq!(get(addr, "/api/runs?token=s3cret").status, 200);
    assert_eq!(get(addr, "/ui").status, 200);
    assert_eq!(get(addr, "/ui/app.js").status, 200);
    let api =
        common_web::get_with(addr, "/api/runs", &[("Authorization", "Bearer s3cret")]).unwrap();
    assert_eq!(api.status, 200, "{api:?}");
    assert_eq!(get(addr, "/metrics").status, 200);

    // A client's run through the pool: its remote task shows on serve's page.
    let dir = tmp.path().join("client");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("sykli.json"),
        json!({"version": "1", "tasks": [
            {"name": "far", "command": wait_on(&tmp.path().join("go"), "far-output"), "remote": true},
        ]})
        .to_string(),
    )
    .unwrap();
    let mut client = common::command(&dir, &["run", "--remote", &url, "--token-file", &token_arg])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut b = Browser::start(&tmp.path().join("profile"));
    b.navigate(&format!("http://{addr}/ui?token=s3cret"));
    wait_states(&mut b, "far runs on the pool", &[("far", "running")]);
    shot(&mut b, &tmp.path().join("serve-running.png"));
    std::fs::write(tmp.path().join("go"), "").unwrap();
    wait_states(&mut b, "far passed", &[("far", "passed")]);
    let status = wait_for(DEADLINE, "the client's run ends", || {
        match client.try_wait() {
            Ok(Some(s)) => Ok(s),
            _ => Err("still running".into()),
        }
    });
    assert!(status.success());
}

#[test]
fn run_ui_refuses_a_bad_address_and_a_taken_port_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sykli.json"),
        json!({"version": "1", "tasks": [{"name": "t", "command": "true"}]}).to_string(),
    )
    .unwrap();
    let out = common::sykli(dir.path(), &["run", "--json", "--ui", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["error"]["code"], "usage", "{env}");
    let msg = env["error"]["message"].as_str().unwrap();
    assert!(msg.contains("--ui not-an-address"), "{msg}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = common::sykli(dir.path(), &["run", "--json", "--ui", &addr]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["error"]["code"], "ui_failed", "{env}");
    let msg = env["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&addr), "{msg}");
    assert!(
        !dir.path().join(".sykli/runs").exists()
            || std::fs::read_dir(dir.path().join(".sykli/runs"))
                .unwrap()
                .next()
                .is_none(),
        "no run started"
    );
}
