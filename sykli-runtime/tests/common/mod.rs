//! Helpers shared by the runtime's integration tests: build a graph, run it with signals
//! off, collect events.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sykli_runtime::graph::{ConditionContext, Graph, validate};
use sykli_runtime::{Event, EventSink, RunConfig, RunSummary, Signals, TaskReport, TaskStatus};

#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, e: &Event) {
        self.0.lock().unwrap().push(e.clone());
    }
}

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    pub fn report(&self, task: &str) -> TaskReport {
        self.events()
            .into_iter()
            .find_map(|e| match e {
                Event::TaskFinished(r) if r.task == task => Some(r),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no report for {task}: {:#?}", self.events()))
    }

    pub fn status(&self, task: &str) -> TaskStatus {
        self.report(task).status
    }

    pub fn output(&self, task: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::TaskOutput { task: t, line, .. } if t == task => Some(line),
                _ => None,
            })
            .collect()
    }

    /// Everything the events carry, as one JSON text (to search for leaks).
    pub fn all_json(&self) -> String {
        self.events()
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// A config with signals off, no git lookups, fast retries and a short grace period.
    pub fn config(&self) -> RunConfig {
        let mut c = RunConfig::new(self.root());
        c.signals = Signals::Noop;
        c.context = Some(ConditionContext::default());
        c.retry_backoff = Duration::from_millis(20);
        c.kill_grace = Duration::from_millis(500);
        c.jobs = 4;
        c
    }

    pub async fn run(
        &self,
        graph: serde_json::Value,
        config: RunConfig,
    ) -> (RunSummary, Arc<Collect>) {
        let graph: Graph = serde_json::from_value(graph).expect("graph JSON");
        let valid = validate(&graph).unwrap_or_else(|e| panic!("invalid graph: {e:?}"));
        let events = Arc::new(Collect::default());
        let summary = sykli_runtime::run(&valid, config, events.clone())
            .await
            .expect("run");
        (summary, events)
    }

    /// Every log file of the project's runs, concatenated.
    pub fn all_logs(&self) -> String {
        let mut out = String::new();
        let logs = self.path(".sykli/logs");
        for run in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(run.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.push_str(&std::fs::read_to_string(f.path()).unwrap_or_default());
            }
        }
        out
    }
}

/// Processes (other than this one) whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker) {
            // Zombies have an empty cmdline, so anything here is alive.
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

/// A marker unique to this test process and call site.
pub fn marker(tag: &str) -> String {
    format!("sykli-test-{tag}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

/// Polls `cond` until it holds; panics naming `what` once `limit` has passed. The one way
/// tests wait for a readiness signal (a file a task writes, a process appearing or gone).
pub async fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `fut` on a runtime of its own and panics naming `what` if it takes longer than
/// `limit`. The runtime is then abandoned without waiting for its blocking threads, so a
/// read stuck forever (on a FIFO, say) fails the test instead of hanging it, as a
/// `#[tokio::test]` would on shutdown.
pub fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let out = rt.block_on(async { tokio::time::timeout(limit, fut).await });
    rt.shutdown_background();
    out.unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}

/// Writes a file (creating its folders) and backdates it an hour, so it is not "racy" for the
/// cache's stat index.
pub fn write_backdated(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    backdate(&p);
}

/// Sets a file's modification time an hour back.
pub fn backdate(p: &Path) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}
