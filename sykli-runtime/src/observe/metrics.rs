//! Metrics in the Prometheus text format, served at `/metrics` by `sykli worker`, `sykli
//! serve` and `sykli run --serve`/`--ui` (see docs/observe.md for every series).
//!
//! One [`Metrics`] per process ([`Metrics::global`]): a run feeds it through
//! [`MetricsSink`] (an [`EventSink`]), a worker through [`Metrics::action_queued`] and
//! friends, a pool through a [`LoadSource`] read at scrape time, and any code (plugins) may
//! count calls with [`plugin_call`].
//!
//! ```
//! use sykli_runtime::observe::metrics::Metrics;
//! let m = Metrics::new();
//! m.cache_lookup(true);
//! m.plugin_call("lint", true);
//! let text = m.encode();
//! assert!(text.contains("sykli_cache_hits_total 1"));
//! assert!(text.contains("sykli_plugin_calls_total{plugin=\"lint\",outcome=\"ok\"} 1"));
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::events::{Envelope, Event, EventSink};

/// The `status` label of `sykli_tasks_finished_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

/// The labels of `sykli_plugin_calls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
    outcome: String,
}

/// The load of a server, read when `/metrics` is scraped (a pool's queue and workers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Tasks (actions) waiting to start.
    pub queued: usize,
    /// Tasks (actions) running.
    pub running: usize,
    /// Workers in the pool (`None` where there is no pool).
    pub workers: Option<usize>,
}

/// Reads a server's [`Load`] at scrape time.
pub type LoadSource = Arc<dyn Fn() -> Load + Send + Sync>;

/// The process's metrics: gauges, counters and the task duration histogram, in one registry.
pub struct Metrics {
    registry: Registry,
    queued: Gauge,
    running: Gauge,
    workers: Gauge,
    tasks: Family<StatusLabel, Counter>,
    duration: Histogram,
    cache_hits: Counter,
    cache_lookups: Counter,
    runs: Family<StatusLabel, Counter>,
    plugin_calls: Family<PluginLabel, Counter>,
    source: Mutex<Option<LoadSource>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, every series at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sykli");
        let queued = Gauge::default();
        let running = Gauge::default();
        let workers = Gauge::default();
        let tasks = Family::<StatusLabel, Counter>::default();
        // 10 ms to about 2.9 h, doubling.
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 21));
        let cache_hits = Counter::default();
        let cache_lookups = Counter::default();
        let runs = Family::<StatusLabel, Counter>::default();
        let plugin_calls = Family::<PluginLabel, Counter>::default();
        registry.register(
            "queue_depth",
            "Tasks (actions) waiting to start",
            queued.clone(),
        );
        registry.register("running_tasks", "Tasks (actions) running", running.clone());
        registry.register(
            "workers",
            "Workers in the pool that are not lost (sykli serve; 0 elsewhere)",
            workers.clone(),
        );
        registry.register(
            "tasks_finished",
            "Tasks (actions) that reached a final status, by status",
            tasks.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "Wall-clock time of finished tasks (actions), all attempts",
            duration.clone(),
        );
        registry.register(
            "cache_hits",
            "Cache lookups that found a result (hit ratio: hits / lookups)",
            cache_hits.clone(),
        );
        registry.register(
            "cache_lookups",
            "Cache lookups (hits and misses)",
            cache_lookups.clone(),
        );
        registry.register("runs_finished", "Runs that ended, by outcome", runs.clone());
        registry.register(
            "plugin_calls",
            "Calls into plugins, by plugin and outcome (ok or error)",
            plugin_calls.clone(),
        );
        Metrics {
            registry,
            queued,
            running,
            workers,
            tasks,
            duration,
            cache_hits,
            cache_lookups,
            runs,
            plugin_calls,
            source: Mutex::new(None),
        }
    }

    /// The metrics of this process, which its `/metrics` serves.
    pub fn global() -> &'static Metrics {
        static GLOBAL: OnceLock<Metrics> = OnceLock::new();
        GLOBAL.get_or_init(Metrics::new)
    }

    /// Reads the queue, running and worker gauges from `source` at each scrape instead of
    /// counting them from events (a pool's scheduler knows them exactly).
    pub fn set_load_source(&self, source: LoadSource) {
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// The text exposition (Prometheus/OpenMetrics text, ending in `# EOF`).
    pub fn encode(&self) -> String {
        let source = self
            .source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(source) = source {
            let load = source();
            self.queued.set(load.queued as i64);
            self.running.set(load.running as i64);
            self.workers.set(load.workers.unwrap_or(0) as i64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A task (action) was queued.
    pub fn action_queued(&self) {
        self.queued.inc();
    }

    /// A queued task (action) started running.
    pub fn action_started(&self) {
        self.queued.dec();
        self.running.inc();
    }

    /// A task (action) that never started left the queue (refused, stopped).
    pub fn action_dropped(&self) {
        self.queued.dec();
    }

    /// A running task (action) finished with `status` (a [`crate::TaskStatus`] wire name,
    /// or `passed`/`failed`/`errored` for a worker's actions) after `seconds`.
    pub fn action_finished(&self, status: &str, seconds: f64) {
        self.running.dec();
        self.finished(status, seconds);
    }

    fn finished(&self, status: &str, seconds: f64) {
        self.tasks
            .get_or_create(&StatusLabel {
                status: status.to_owned(),
            })
            .inc();
        self.duration.observe(seconds);
    }

    /// A cache was asked for a result; `hit` when it had one.
    pub fn cache_lookup(&self, hit: bool) {
        self.cache_lookups.inc();
        if hit {
            self.cache_hits.inc();
        }
    }

    /// A plugin was called; `ok` unless the call failed.
    pub fn plugin_call(&self, plugin: &str, ok: bool) {
        self.plugin_calls
            .get_or_create(&PluginLabel {
                plugin: plugin.to_owned(),
                outcome: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }
}

/// Counts one call into `plugin` in this process's metrics (`sykli_plugin_calls_total`);
/// `ok` unless the call failed. Plugin hosts call this once per call.
pub fn plugin_call(plugin: &str, ok: bool) {
    Metrics::global().plugin_call(plugin, ok);
}

/// Feeds a run's events into [`Metrics`]: tasks waiting and running, finished tasks by
/// status with their durations, cache hits and lookups, runs by outcome.
pub struct MetricsSink {
    metrics: &'static Metrics,
    runs: Mutex<HashMap<String, RunGauges>>,
}

#[derive(Default)]
struct RunGauges {
    queued: HashSet<String>,
    running: HashSet<String>,
}

impl std::fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSink").finish_non_exhaustive()
    }
}

impl MetricsSink {
    /// A sink feeding `metrics` (usually [`Metrics::global`]).
    pub fn new(metrics: &'static Metrics) -> MetricsSink {
        MetricsSink {
            metrics,
            runs: Mutex::new(HashMap::new()),
        }
    }

    fn apply(&self, run_id: &str, event: &Event) {
        let m = self.metrics;
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::RunStarted { tasks, .. } => {
                let run = runs.entry(run_id.to_owned()).or_default();
                for t in tasks {
                    if run.queued.insert(t.clone()) {
                        m.action_queued();
                    }
                }
            }
            Event::TaskStarted { task, .. } => {
                let run = runs.entry(run_id.to_owned()).or_default();
                if run.queued.remove(task) {
                    m.queued.dec();
                }
                if run.running.insert(task.clone()) {
                    m.running.inc();
                }
            }
            Event::TaskCacheMiss { .. } => m.cache_lookup(false),
            Event::TaskFinished(report) => {
                let run = runs.entry(run_id.to_owned()).or_default();
                if run.queued.remove(&report.task) {
                    m.queued.dec();
                }
                if run.running.remove(&report.task) {
                    m.running.dec();
                }
                if report.status == crate::TaskStatus::Cached {
                    m.cache_lookup(true);
                }
                m.finished(report.status.as_str(), report.duration_ms as f64 / 1000.0);
            }
            Event::RunFinished(summary) => {
                Self::forget(m, runs.remove(run_id));
                let outcome = if summary.interrupted {
                    "interrupted"
                } else if summary.ok() {
                    "passed"
                } else {
                    "failed"
                };
                m.runs
                    .get_or_create(&StatusLabel {
                        status: outcome.to_owned(),
                    })
                    .inc();
            }
            Event::RunParked { .. } => Self::forget(m, runs.remove(run_id)),
            Event::TaskPlaced { .. }
            | Event::TaskOutput { .. }
            | Event::TaskRerun { .. }
            | Event::TaskRetrying { .. }
            | Event::TaskResources { .. }
            | Event::TaskAttached { .. }
            | Event::TaskReattachFailed { .. } => {}
        }
    }

    /// Takes what an ended run still counted off the gauges.
    fn forget(m: &Metrics, run: Option<RunGauges>) {
        if let Some(run) = run {
            m.queued.dec_by(run.queued.len() as i64);
            m.running.dec_by(run.running.len() as i64);
        }
    }
}

impl EventSink for MetricsSink {
    fn emit(&self, event: &Event) {
        self.apply("", event);
    }

    fn emit_envelope(&self, envelope: &Envelope) {
        self.apply(&envelope.run_id, &envelope.event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskStatus;
    use crate::events::{RunSummary, TaskReport};

    fn leak() -> &'static Metrics {
        Box::leak(Box::new(Metrics::new()))
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    fn finished(task: &str, status: TaskStatus) -> Event {
        Event::TaskFinished(TaskReport {
            task: task.into(),
            status,
            exit_code: None,
            duration_ms: 1500,
            attempts: 1,
            message: None,
        })
    }

    #[test]
    fn a_run_moves_tasks_from_queued_to_running_to_finished_and_counts_cache_hits() {
        let m = leak();
        let sink = MetricsSink::new(m);
        sink.emit(&Event::RunStarted {
            run_id: "r".into(),
            tasks: vec!["a".into(), "b".into(), "c".into()],
            jobs: 2,
            started_at_ms: 0,
            plan_digest: None,
            resumed: false,
        });
        let t = m.encode();
        assert_eq!(value(&t, "sykli_queue_depth"), 3.0);
        sink.emit(&Event::TaskStarted {
            task: "a".into(),
            attempt: 1,
            executor: "process".into(),
        });
        sink.emit(&Event::TaskCacheMiss {
            task: "a".into(),
            reason: "no previous entry".into(),
        });
        let t = m.encode();
        assert_eq!(value(&t, "sykli_queue_depth"), 2.0);
        assert_eq!(value(&t, "sykli_running_tasks"), 1.0);
        sink.emit(&finished("a", TaskStatus::Passed));
        sink.emit(&finished("b", TaskStatus::Cached));
        let t = m.encode();
        assert_eq!(value(&t, "sykli_running_tasks"), 0.0);
        assert_eq!(value(&t, "sykli_queue_depth"), 1.0);
        assert_eq!(value(&t, "sykli_cache_hits_total"), 1.0);
        assert_eq!(value(&t, "sykli_cache_lookups_total"), 2.0);
        assert_eq!(value(&t, "sykli_task_duration_seconds_count"), 2.0);
        assert_eq!(value(&t, "sykli_task_duration_seconds_sum"), 3.0);
        assert_eq!(
            value(&t, "sykli_tasks_finished_total{status=\"cached\"}"),
            1.0
        );
        // The run ends with `c` never started (interrupted): nothing stays queued.
        sink.emit(&Event::RunFinished(RunSummary {
            run_id: "r".into(),
            passed: 1,
            cached: 1,
            failed: 0,
            errored: 0,
            blocked: 0,
            skipped: 0,
            duration_ms: 3000,
            interrupted: true,
        }));
        let t = m.encode();
        assert_eq!(value(&t, "sykli_queue_depth"), 0.0);
        assert_eq!(
            value(&t, "sykli_runs_finished_total{status=\"interrupted\"}"),
            1.0
        );
    }

    #[test]
    fn a_load_source_sets_the_gauges_at_scrape_time() {
        let m = leak();
        m.set_load_source(Arc::new(|| Load {
            queued: 4,
            running: 2,
            workers: Some(3),
        }));
        let t = m.encode();
        assert_eq!(value(&t, "sykli_queue_depth"), 4.0);
        assert_eq!(value(&t, "sykli_running_tasks"), 2.0);
        assert_eq!(value(&t, "sykli_workers"), 3.0);
    }
}
