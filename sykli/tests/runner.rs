//! `sykli::Runner`: running a pipeline in-process with explicit options (real processes).

use std::sync::{Arc, Mutex};

use sykli::runtime::events::{Event, EventSink};
use sykli::runtime::exec::native::{NativeError, NativeRegistry};
use sykli::runtime::graph::Graph;
use sykli::runtime::state;
use sykli::{Pipeline, Runner, RunnerError};

#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);
impl EventSink for Collect {
    fn emit(&self, e: &Event) {
        self.0.lock().unwrap().push(e.clone());
    }
}

#[test]
fn runs_a_pipeline_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::new();
    p.task("gen").run("echo generated > gen.txt");
    p.task("check")
        .run("grep generated gen.txt")
        .after(&["gen"]);
    p.task("other").run("touch other.txt");
    let events = Arc::new(Collect::default());
    let summary = Runner::new(&p)
        .project_root(dir.path())
        .jobs(2)
        .filter("check")
        .quiet()
        .sink(events.clone())
        .run()
        .unwrap();
    assert!(summary.ok(), "{summary:?}");
    assert_eq!(summary.passed, 2);
    assert!(!dir.path().join("other.txt").exists(), "filtered out");
    let record = state::find_run(&dir.path().join(".sykli"), "last").unwrap();
    assert_eq!(record.run_id, summary.run_id);
    assert_eq!(record.outcome(), "passed");
    let ev = events.0.lock().unwrap();
    assert!(matches!(ev.last(), Some(Event::RunFinished(_))));
}

#[test]
fn failures_are_in_the_summary_and_invalid_pipelines_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::new();
    p.task("bad").run("exit 4");
    let s = Runner::new(&p)
        .project_root(dir.path())
        .quiet()
        .run()
        .unwrap();
    assert!(!s.ok());
    assert_eq!(s.failed, 1);

    let p = Pipeline::new();
    p.task("x").run("true").after(&["missing"]);
    match Runner::new(&p).project_root(dir.path()).quiet().run() {
        Err(RunnerError::Invalid(e)) => assert!(e.to_string().contains("missing")),
        other => panic!("expected an invalid pipeline, got {other:?}"),
    }
}

#[test]
fn native_functions_run_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let graph =
        Graph::from_json(r#"{"version": "1", "tasks": [{"name": "n", "native": "write_marker"}]}"#)
            .unwrap();
    let marker = dir.path().join("native.txt");
    let m = marker.clone();
    let mut reg = NativeRegistry::new();
    reg.register("write_marker", move |_ctx| {
        let m = m.clone();
        async move { std::fs::write(&m, "ok").map_err(NativeError::msg) }
    });
    let s = Runner::from_graph(graph)
        .project_root(dir.path())
        .native(reg)
        .quiet()
        .run()
        .unwrap();
    assert!(s.ok(), "{s:?}");
    assert_eq!(std::fs::read_to_string(marker).unwrap(), "ok");
}

/// `p.task("x").native(|ctx| async {...})`: the closure runs in-process, its `ctx.sh` output
/// is logged like a shell task's, and a shell task after it sees what it wrote.
#[test]
fn builder_native_closures_run_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::new();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    p.task("generate").native(move |ctx| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::fs::write(
                ctx.workdir().join("gen.txt"),
                format!("made by {}\n", ctx.name()),
            )?;
            ctx.sh("echo native-said-hello").await
        }
    });
    p.task("check")
        .run("grep 'made by generate' gen.txt")
        .after(&["generate"]);
    p.task("fails")
        .native(|_ctx| async { Err(NativeError::msg("no luck")) });
    let graph = p.to_graph();
    assert_eq!(
        graph.task("generate").unwrap().native.as_deref(),
        Some("generate")
    );

    let events = Arc::new(Collect::default());
    let summary = Runner::new(&p)
        .project_root(dir.path())
        .quiet()
        .keep_going(true)
        .sink(events.clone())
        .run()
        .unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!((summary.passed, summary.failed), (2, 1), "{summary:?}");
    let ev = events.0.lock().unwrap();
    assert!(
        ev.iter().any(|e| matches!(e,
        Event::TaskOutput { task, line, .. } if task == "generate" && line == "native-said-hello"))
    );
    assert!(ev.iter().any(|e| matches!(e,
        Event::TaskOutput { task, line, .. } if task == "fails" && line == "error: no luck")));
    assert!(ev.iter().any(|e| matches!(e,
        Event::TaskFinished(r) if r.task == "fails" && r.exit_code == Some(1))));
}
