//! A task printing hundreds of megabytes: the full log is written, events stay capped, and
//! the runtime's memory stays bounded (peak RSS read from /proc). One test per binary, so the
//! peak belongs to it alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use sykli_runtime::graph::{ConditionContext, Graph, validate};
use sykli_runtime::{Event, EventSink, RunConfig, Signals};

#[derive(Default)]
struct Count {
    lines: AtomicUsize,
    longest: AtomicUsize,
    /// Final reports, for failure messages.
    reports: std::sync::Mutex<Vec<sykli_runtime::TaskReport>>,
}

impl EventSink for Count {
    fn emit(&self, e: &Event) {
        match e {
            Event::TaskOutput { line, .. } => {
                self.lines.fetch_add(1, Ordering::Relaxed);
                self.longest.fetch_max(line.len(), Ordering::Relaxed);
            }
            Event::TaskFinished(r) => self
                .reports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(r.clone()),
            _ => {}
        }
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_megabytes_of_output_keep_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let graph: Graph = serde_json::from_value(json!({"version": "1", "tasks": [
        // One 200 MB line.
        {"name": "one-line", "command": "head -c 200000000 /dev/zero | tr '\\0' y"},
        // A million lines of 100 bytes.
        {"name": "many-lines", "command": "yes 012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678 | head -c 100000000"},
    ]}))
    .unwrap();
    let valid = validate(&graph).unwrap();
    let mut c = RunConfig::new(dir.path());
    c.signals = Signals::Noop;
    c.context = Some(ConditionContext::default());
    let log_dir = c.log_dir();
    let before = peak_rss_kib();
    let events = Arc::new(Count::default());
    let summary = sykli_runtime::run(&valid, c, events.clone()).await.unwrap();
    assert!(
        summary.ok(),
        "{summary:?} {:?}",
        events.reports.lock().unwrap()
    );
    let after = peak_rss_kib();

    let one = std::fs::metadata(log_dir.join("one-line.log"))
        .unwrap()
        .len();
    let many = std::fs::metadata(log_dir.join("many-lines.log"))
        .unwrap()
        .len();
    // The unterminated line gets its newline in the log when the task ends.
    assert_eq!(one, 200_000_001);
    assert_eq!(many, 100_000_000);
    assert_eq!(events.lines.load(Ordering::Relaxed), 1 + 1_000_000);
    assert!(events.longest.load(Ordering::Relaxed) < 17 * 1024);
    println!("peak RSS before {before} KiB, after {after} KiB");
    assert!(
        after < 96 * 1024,
        "peak RSS {after} KiB after 300 MB of output"
    );
    assert!(
        after - before < 48 * 1024,
        "RSS grew by {} KiB",
        after - before
    );
}
