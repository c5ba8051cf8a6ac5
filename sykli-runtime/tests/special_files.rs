//! FIFOs, sockets and devices in a project are never read as content: opening a FIFO blocks
//! until someone writes it, and a read stuck on tokio's blocking pool kept a run (and sykli's
//! exit, even after SIGTERM) waiting forever. Each run here has a deadline and fails, not
//! hangs, if that comes back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Project, within};
use nix::sys::stat::Mode;
use serde_json::json;
use sykli_runtime::TaskStatus;
use sykli_runtime::cache::{LocalCache, Store, TaskCache};

const LIMIT: Duration = Duration::from_secs(30);

fn cached_config(p: &Project, cache_dir: &std::path::Path) -> sykli_runtime::RunConfig {
    let mut c = p.config();
    let cache = TaskCache::open(Store::open(cache_dir).unwrap(), p.root()).unwrap();
    c.cache = Some(Arc::new(LocalCache::new(cache)));
    c.keep_going = true;
    c
}

/// The bug: `inputs: ["src/**"]` matching a FIFO hung the cache key's hashing forever.
#[test]
fn a_fifo_matched_by_inputs_does_not_hang_the_run() {
    let p = Project::new();
    let cache_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(p.path("src")).unwrap();
    std::fs::write(p.path("src/a.txt"), "a").unwrap();
    nix::unistd::mkfifo(&p.path("src/pipe"), Mode::S_IRWXU).unwrap();
    let (s, ev) = within(
        LIMIT,
        "a run whose inputs match a FIFO",
        p.run(
            json!({"version": "1", "tasks": [
                {"name": "build", "inputs": ["src/**"], "command": "touch ran"},
            ]}),
            cached_config(&p, cache_dir.path()),
        ),
    );
    // The cache cannot key the task; it runs uncached and says why.
    assert!(s.ok(), "{:?}", ev.events());
    assert!(p.path("ran").exists());
    let out = ev.output("build").join("\n");
    assert!(
        out.contains("cache lookup failed")
            && out.contains("src/pipe")
            && out.contains("it is a FIFO, not a regular file"),
        "{out}"
    );
}

/// A task that leaves a FIFO as its declared output: neither the cache nor a dependent's
/// `task_inputs` copy opens it.
#[test]
fn a_fifo_output_is_neither_stored_nor_copied() {
    let p = Project::new();
    let cache_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(p.path("src")).unwrap();
    std::fs::write(p.path("src/a.txt"), "a").unwrap();
    let (s, ev) = within(
        LIMIT,
        "a run with a FIFO output",
        p.run(
            json!({"version": "1", "tasks": [
                {"name": "make", "inputs": ["src/**"], "command": "mkfifo out",
                 "outputs": {"o": "out"}},
                {"name": "use", "command": "touch used",
                 "task_inputs": [{"from_task": "make", "output": "o", "dest": "in"}]},
            ]}),
            cached_config(&p, cache_dir.path()),
        ),
    );
    assert_eq!(ev.status("make"), TaskStatus::Passed, "{:?}", ev.events());
    let stored = ev.output("make").join("\n");
    assert!(
        stored.contains("cache store failed") && stored.contains("is a FIFO, not a regular file"),
        "{stored}"
    );
    let r = ev.report("use");
    assert_eq!(r.status, TaskStatus::Errored);
    let m = r.message.unwrap_or_default();
    assert!(
        m.contains("is a FIFO, not a regular file or directory"),
        "{m}"
    );
    assert!(!p.path("used").exists());
    assert_eq!(s.errored, 1);
}
