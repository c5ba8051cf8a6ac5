//! The cache seam: a hit makes a task `cached` without running it and hands its outputs to
//! consumers; a pass is stored with its outputs.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::Project;
use futures::future::BoxFuture;
use serde_json::json;
use sykli_runtime::TaskStatus;
use sykli_runtime::scheduler::{CacheHit, CacheLookup, CacheQuery, TaskCache};

/// Hits for tasks named in `hits` (restoring a file), records stores.
struct Table {
    hits: Vec<&'static str>,
    stored: Mutex<Vec<(String, BTreeMap<String, PathBuf>)>>,
}

impl TaskCache for Table {
    fn lookup<'a>(&'a self, q: CacheQuery<'a>) -> BoxFuture<'a, Result<CacheLookup, String>> {
        Box::pin(async move {
            if !self.hits.contains(&q.task.name.as_str()) {
                return Ok(CacheLookup::Miss {
                    reason: Some(format!("{} is not in the table", q.task.name)),
                });
            }
            let path = q.workdir.join("restored.txt");
            std::fs::write(&path, "from cache").map_err(|e| e.to_string())?;
            Ok(CacheLookup::Hit(CacheHit {
                outputs: BTreeMap::from([("out".to_owned(), path)]),
                message: Some("restored".into()),
                log: None,
            }))
        })
    }

    fn store<'a>(
        &'a self,
        q: CacheQuery<'a>,
        outputs: &'a BTreeMap<String, PathBuf>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.stored
                .lock()
                .unwrap()
                .push((q.task.name.clone(), outputs.clone()));
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_skip_the_command_and_passes_are_stored() {
    let p = Project::new();
    let cache = Arc::new(Table {
        hits: vec!["cached"],
        stored: Mutex::new(Vec::new()),
    });
    let mut c = p.config();
    c.cache = Some(cache.clone());
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "cached", "command": "touch ran", "outputs": {"out": "never-written"}},
                {"name": "fresh", "command": "echo new > fresh.txt", "outputs": {"out": "fresh.txt"}},
                {"name": "use", "command": "cat got", "task_inputs": [{"from_task": "cached", "output": "out", "dest": "got"}]},
            ]}),
            c,
        )
        .await;
    assert!(s.ok());
    let r = ev.report("cached");
    assert_eq!(
        (r.status, r.attempts, r.message.as_deref()),
        (TaskStatus::Cached, 0, Some("restored"))
    );
    assert!(!p.path("ran").exists());
    assert_eq!(ev.output("use"), ["from cache"]);
    assert_eq!((s.cached, s.passed), (1, 2));
    let stored = cache.stored.lock().unwrap().clone();
    let fresh = stored
        .iter()
        .find(|(t, _)| t == "fresh")
        .expect("fresh stored");
    assert_eq!(fresh.1["out"], p.path("fresh.txt"));
    assert!(!stored.iter().any(|(t, _)| t == "cached"));
    // A miss says why, once, for the task that missed; a hit says nothing of the sort.
    let misses: Vec<(String, String)> = ev
        .events()
        .into_iter()
        .filter_map(|e| match e {
            sykli_runtime::Event::TaskCacheMiss { task, reason } => Some((task, reason)),
            _ => None,
        })
        .collect();
    assert!(misses.contains(&("fresh".to_owned(), "fresh is not in the table".to_owned())));
    assert!(!misses.iter().any(|(t, _)| t == "cached"));
}
