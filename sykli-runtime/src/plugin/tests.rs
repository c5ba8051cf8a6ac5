//! The host against real components (WAT fixtures): outcomes, limits, swap semantics, the
//! compiled cache and stored plugins.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::fixture::{Behaviour, component};
use super::*;
use crate::exec::{Action, ExecIo, ExecOutcome, ExecRequest, Executor, OutputSink, OutputStream};

#[derive(Default)]
struct Log(Mutex<Vec<u8>>);

impl OutputSink for Log {
    fn write(&self, _: OutputStream, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn source(name: &str, version: &str, b: Behaviour, limits: &str) -> PluginSource {
    let manifest_text = format!("name = \"{name}\"\ncomponent = \"c.wasm\"\n{limits}");
    PluginSource {
        manifest: Manifest::parse(&manifest_text, "test").unwrap(),
        manifest_text,
        wasm: component(name, version, b).unwrap(),
    }
}

fn request(dir: &Path, timeout: Option<Duration>) -> ExecRequest {
    ExecRequest {
        task: "t".into(),
        action: Action::Shell("echo hi".into()),
        env: BTreeMap::new(),
        inherit_env: false,
        workdir: dir.to_path_buf(),
        container: None,
        timeout,
        kill_grace: Duration::from_secs(1),
        run_id: "r".into(),
        background: None,
        sandbox: None,
    }
}

async fn run(plugins: &Plugins, name: &str, timeout: Option<Duration>) -> (ExecOutcome, String) {
    run_cancellable(plugins, name, timeout, CancellationToken::new()).await
}

async fn run_cancellable(
    plugins: &Plugins,
    name: &str,
    timeout: Option<Duration>,
    cancel: CancellationToken,
) -> (ExecOutcome, String) {
    let exec = plugins.executor(name).expect("loaded");
    let log = Arc::new(Log::default());
    let dir = std::env::temp_dir();
    let io = ExecIo {
        attempt: 1,
        output: log.clone(),
        cancel,
        operations: None,
    };
    let out = exec.execute(&request(&dir, timeout), io).await;
    (out, log.text())
}

fn plugins() -> Plugins {
    Plugins::new(PluginHost::new(None).unwrap())
}

fn errored(o: &ExecOutcome) -> &str {
    match o {
        ExecOutcome::Errored { message, .. } => message,
        other => panic!("expected errored, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_runs_through_the_plugin_and_its_log_reaches_the_task() {
    let p = plugins();
    let s = p
        .install(&source("exit", "1.2.0", Behaviour::Exit(3), ""), None)
        .unwrap();
    assert_eq!((s.plugin.version.as_str(), s.replaced), ("1.2.0", None));
    let (out, log) = run(&p, "exit", None).await;
    assert_eq!(out, ExecOutcome::Exited { code: 3 });
    assert!(log.contains("fixture 1.2.0"), "{log}");
    assert_eq!(p.list()[0].tasks_served, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_loops_forever_is_errored_at_its_deadline() {
    let p = plugins();
    p.install(
        &source(
            "spin",
            "1.0.0",
            Behaviour::Spin,
            "[limits]\ndeadline_ms = 200",
        ),
        None,
    )
    .unwrap();
    let start = Instant::now();
    let (out, _) = run(&p, "spin", None).await;
    let m = errored(&out);
    assert!(
        m.contains("plugin `spin` 1.0.0") && m.contains("deadline of 200 ms"),
        "{m}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_timeout_bounds_a_plugin_too_and_reads_as_timed_out() {
    let p = plugins();
    p.install(&source("spin", "1.0.0", Behaviour::Spin, ""), None)
        .unwrap();
    let (out, _) = run(&p, "spin", Some(Duration::from_millis(100))).await;
    assert_eq!(out, ExecOutcome::TimedOut);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_the_run_stops_a_spinning_plugin() {
    let p = plugins();
    p.install(&source("spin", "1.0.0", Behaviour::Spin, ""), None)
        .unwrap();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.cancel();
    });
    let (out, _) = run_cancellable(&p, "spin", None, cancel).await;
    assert_eq!(out, ExecOutcome::Cancelled);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_allocates_without_bound_hits_its_memory_cap() {
    let p = plugins();
    p.install(
        &source("hog", "0.1.0", Behaviour::Hog, "[limits]\nmemory_mib = 8"),
        None,
    )
    .unwrap();
    let (out, _) = run(&p, "hog", None).await;
    let m = errored(&out);
    assert!(
        m.contains("plugin `hog` 0.1.0: exceeded its memory cap of 8 MiB"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_or_an_error_value_is_errored_naming_the_plugin() {
    let p = plugins();
    p.install(&source("trap", "1.0.0", Behaviour::Trap, ""), None)
        .unwrap();
    p.install(&source("no", "2.0.0", Behaviour::Denied, ""), None)
        .unwrap();
    let (out, _) = run(&p, "trap", None).await;
    assert!(
        errored(&out).contains("plugin `trap` 1.0.0: trapped"),
        "{out:?}"
    );
    let (out, _) = run(&p, "no", None).await;
    assert!(
        errored(&out).contains("plugin `no` 2.0.0: denied: fixture says no"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swap_leaves_running_tasks_on_the_old_version_and_gives_new_ones_the_new() {
    let p = plugins();
    let slow = Behaviour::Count {
        n: 3_000_000_000,
        exit_code: 1,
    };
    p.install(
        &source("swap", "1.0.0", slow, "[limits]\ndeadline_ms = 60000"),
        None,
    )
    .unwrap();
    let old = {
        let p = p.clone();
        tokio::spawn(async move { run(&p, "swap", None).await })
    };
    // Wait (bounded) until the old version has taken its task.
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.list()[0].tasks_served == 0 {
        assert!(Instant::now() < deadline, "the first task never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = p
        .install(&source("swap", "2.0.0", Behaviour::Exit(2), ""), None)
        .unwrap();
    assert_eq!(s.replaced.as_deref(), Some("1.0.0"));
    let (new, log) = run(&p, "swap", None).await;
    assert_eq!(new, ExecOutcome::Exited { code: 2 });
    assert!(log.contains("fixture 2.0.0"), "{log}");
    assert!(!old.is_finished(), "the old task should still be counting");
    let (old, _) = old.await.unwrap();
    assert_eq!(old, ExecOutcome::Exited { code: 1 });
}

#[test]
fn compiled_components_are_cached_by_digest_across_hosts() {
    let t = tempfile::tempdir().unwrap();
    let src = source("c", "1.0.0", Behaviour::Exit(0), "");
    let first = PluginHost::new(Some(t.path().into()))
        .unwrap()
        .load(&src, None)
        .unwrap();
    assert!(!first.from_cache);
    let second = PluginHost::new(Some(t.path().into()))
        .unwrap()
        .load(&src, None)
        .unwrap();
    assert!(second.from_cache && second.digest == first.digest);
    let files: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
}

#[test]
fn a_core_module_is_refused_as_not_a_component() {
    let mut src = source("c", "1.0.0", Behaviour::Exit(0), "");
    src.wasm = wat::parse_str("(module)").unwrap();
    let e = PluginHost::new(None)
        .unwrap()
        .load(&src, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("plugin `c`") && e.contains("component"), "{e}");
}

#[test]
fn stored_plugins_load_again_and_removing_unknown_names_lists_the_loaded() {
    let t = tempfile::tempdir().unwrap();
    let src = source(
        "kept",
        "1.0.0",
        Behaviour::Exit(0),
        "[limits]\nmemory_mib = 16",
    );
    Plugins::store_in(t.path(), "kept", &src).unwrap();
    let p = plugins();
    p.load_dir(t.path(), None).unwrap();
    let l = p.list();
    assert_eq!((l[0].name.as_str(), l[0].limits.memory_mib), ("kept", 16));
    let e = p.remove("gone").unwrap_err().to_string();
    assert!(e.contains("`gone`") && e.contains("kept"), "{e}");
    p.remove("kept").unwrap();
    assert!(p.executor("kept").is_none());
    assert!(Plugins::unstore(t.path(), "kept").unwrap());
}
