//! The local cache wired into the scheduler: hits are `cached` with their log replayed and
//! outputs restored; dependency output digests flow to dependents.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::Project;
use serde_json::json;
use sykli_runtime::TaskStatus;
use sykli_runtime::cache::{LocalCache, Store, TaskCache};

fn graph() -> serde_json::Value {
    json!({"version": "1", "tasks": [
        {"name": "build",
         "command": "echo build >> runs.log; cat src/a.txt > out.txt; echo built; echo careful >&2",
         "inputs": ["src/**"], "outputs": {"bin": "out.txt"}},
        {"name": "test", "depends_on": ["build"],
         "command": "echo test >> runs.log; cat out.txt tests/t.txt > tested.txt; echo tested",
         "inputs": ["tests/**"], "outputs": {"report": "tested.txt"}},
        {"name": "uncached", "command": "echo uncached >> runs.log"},
    ]})
}

async fn run(p: &Project, cache_dir: &Path) -> (Vec<TaskStatus>, Arc<common::Collect>) {
    let mut c = p.config();
    let cache = TaskCache::open(Store::open(cache_dir).unwrap(), p.root()).unwrap();
    c.cache = Some(Arc::new(LocalCache::new(cache)));
    let (s, ev) = p.run(graph(), c).await;
    assert!(s.ok(), "{s:?}");
    let statuses = ["build", "test", "uncached"]
        .iter()
        .map(|t| ev.status(t))
        .collect();
    (statuses, ev)
}

/// The `(task, reason)` of every cache miss in a run.
fn miss_reasons(ev: &common::Collect) -> Vec<(String, String)> {
    ev.events()
        .into_iter()
        .filter_map(|e| match e {
            sykli_runtime::Event::TaskCacheMiss { task, reason } => Some((task, reason)),
            _ => None,
        })
        .collect()
}

/// The tasks that ran since the last call, sorted (independent tasks run in any order).
fn runs(p: &Project) -> Vec<String> {
    let mut v: Vec<String> = p.read("runs.log").lines().map(str::to_owned).collect();
    v.sort();
    std::fs::remove_file(p.path("runs.log")).unwrap();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_is_cached_with_log_replayed_and_outputs_restored() {
    use TaskStatus::{Cached, Passed};
    let p = Project::new();
    let cache_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(p.path("src")).unwrap();
    std::fs::create_dir_all(p.path("tests")).unwrap();
    std::fs::write(p.path("src/a.txt"), "A1\n").unwrap();
    std::fs::write(p.path("src/b.txt"), "B1\n").unwrap();
    std::fs::write(p.path("tests/t.txt"), "T1\n").unwrap();

    let (st, _) = run(&p, cache_dir.path()).await;
    assert_eq!(st, [Passed, Passed, Passed]);
    assert_eq!(runs(&p), ["build", "test", "uncached"]);

    // Nothing changed: both cacheable tasks hit; outputs come back; the log is replayed.
    std::fs::remove_file(p.path("out.txt")).unwrap();
    std::fs::write(p.path("tested.txt"), "stale").unwrap();
    let (st, ev) = run(&p, cache_dir.path()).await;
    assert_eq!(st, [Cached, Cached, Passed]);
    assert_eq!(runs(&p), ["uncached"]);
    assert_eq!(p.read("out.txt"), "A1\n");
    assert_eq!(p.read("tested.txt"), "A1\nT1\n");
    let out = ev.output("build");
    assert!(out.iter().any(|l| l == "built"), "{out:?}");
    assert!(out.iter().any(|l| l == "careful"), "{out:?}");

    // An input of build changes but not its output: build runs, test stays cached, because
    // test is keyed on build's output digest, not on build's inputs.
    std::fs::write(p.path("src/b.txt"), "B2\n").unwrap();
    let (st, ev) = run(&p, cache_dir.path()).await;
    assert_eq!(st, [Passed, Cached, Passed]);
    assert_eq!(runs(&p), ["build", "uncached"]);
    // The run says why build missed: the input that changed, by its relative path.
    let why = miss_reasons(&ev);
    assert!(
        why.iter()
            .any(|(t, r)| t == "build" && r.contains("src/b.txt")),
        "{why:?}"
    );
    assert!(!why.iter().any(|(t, _)| t == "test"), "{why:?}");

    // Build's output changes: test runs again.
    std::fs::write(p.path("src/a.txt"), "A2\n").unwrap();
    let (st, ev) = run(&p, cache_dir.path()).await;
    assert_eq!(st, [Passed, Passed, Passed]);
    assert_eq!(runs(&p), ["build", "test", "uncached"]);
    assert_eq!(p.read("tested.txt"), "A2\nT1\n");
    let why = miss_reasons(&ev);
    assert!(
        why.iter().any(|(t, r)| t == "test" && r.contains("build")),
        "{why:?}"
    );

    // Without a cache (`--no-cache`) everything runs.
    let (s, ev) = p.run(graph(), p.config()).await;
    assert!(s.ok());
    assert_eq!(ev.status("build"), Passed);
    assert_eq!(runs(&p), ["build", "test", "uncached"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tasks_are_not_stored() {
    let p = Project::new();
    let cache_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(p.path("src")).unwrap();
    std::fs::write(p.path("src/a.txt"), "x").unwrap();
    let g = json!({"version": "1", "tasks": [
        {"name": "flaky", "command": "echo run >> runs.log; exit 3", "inputs": ["src/**"]},
    ]});
    for _ in 0..2 {
        let mut c = p.config();
        let cache = TaskCache::open(Store::open(cache_dir.path()).unwrap(), p.root()).unwrap();
        c.cache = Some(Arc::new(LocalCache::new(cache)));
        let (_, ev) = p.run(g.clone(), c).await;
        assert_eq!(ev.status("flaky"), TaskStatus::Failed);
    }
    assert_eq!(runs(&p), ["run", "run"]);
    let stats = Store::open(cache_dir.path()).unwrap().stats().unwrap();
    assert_eq!(stats.entries, 0);
}
