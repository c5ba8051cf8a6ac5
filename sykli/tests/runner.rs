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
