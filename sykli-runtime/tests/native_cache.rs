//! Native tasks are cached when the run knows the pipeline binary's identity (the run
//! builder digests the running executable), and the outputs they record reach the cache.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Collect, Project};
use serde_json::json;
use sykli_runtime::graph::{ConditionContext, Graph, validate};
use sykli_runtime::scheduler::{CacheChoice, RunBuilder, Signals};
use sykli_runtime::{NativeRegistry, TaskCtx, TaskStatus};

fn registry(calls: Arc<AtomicUsize>) -> NativeRegistry {
    let mut r = NativeRegistry::new();
    r.register("build", move |ctx: TaskCtx| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let src = std::fs::read_to_string(ctx.workdir().join("src/a.txt"))?;
            std::fs::create_dir_all(ctx.workdir().join("out"))?;
            std::fs::write(ctx.workdir().join("out/app"), format!("built from {src}"))?;
            // Recorded where it really is, overriding the declared path.
            ctx.output("app", "out/app")?;
            Ok(())
        }
    });
    r
}

fn run(p: &Project, calls: &Arc<AtomicUsize>) -> Arc<Collect> {
    let built = RunBuilder::new(p.root())
        .native(registry(calls.clone()))
        .signals(Signals::Noop)
        .context(ConditionContext::default())
        .containers(false)
        .history(false)
        .cache(CacheChoice::Local)
        .build();
    assert!(built.warnings.is_empty(), "{:?}", built.warnings);
    let graph: Graph = serde_json::from_value(json!({"version": "1", "tasks": [
        {"name": "build", "native": "build", "inputs": ["src/*.txt"], "outputs": {"app": "dist/app"}},
        {"name": "use", "command": "cat app", "task_inputs": [{"from_task": "build", "output": "app", "dest": "app"}]},
    ]}))
    .unwrap();
    let valid = validate(&graph).unwrap();
    let events = Arc::new(Collect::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let summary = rt
        .block_on(sykli_runtime::run(&valid, built.config, events.clone()))
        .unwrap();
    assert!(summary.ok(), "{summary:?}");
    events
}

#[test]
fn native_tasks_are_cached_on_the_binary_identity_with_their_recorded_outputs() {
    let cache_dir = tempfile::tempdir().unwrap();
    // SAFETY: set before any thread of this test binary starts; its only test.
    unsafe { std::env::set_var("SYKLI_CACHE_DIR", cache_dir.path()) };
    let p = Project::new();
    std::fs::create_dir_all(p.path("src")).unwrap();
    std::fs::write(p.path("src/a.txt"), "one").unwrap();
    let calls = Arc::new(AtomicUsize::new(0));

    let ev = run(&p, &calls);
    assert_eq!(ev.status("build"), TaskStatus::Passed);
    assert_eq!(ev.output("use"), ["built from one"]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The recorded output comes back from the cache, not from the function.
    std::fs::remove_dir_all(p.path("out")).unwrap();
    let ev = run(&p, &calls);
    assert_eq!(
        ev.status("build"),
        TaskStatus::Cached,
        "{:?}",
        ev.report("build")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(p.read("out/app"), "built from one");
    assert_eq!(ev.output("use"), ["built from one"]);

    std::fs::write(p.path("src/a.txt"), "two").unwrap();
    let ev = run(&p, &calls);
    assert_eq!(ev.status("build"), TaskStatus::Passed);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(ev.output("use"), ["built from two"]);
}
