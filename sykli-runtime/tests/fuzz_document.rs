//! Whole-document property suite: arbitrary documents of up to 64 KiB, adversarial matrices,
//! deep nesting, long strings and dense dependencies included, go through everything `sykli`
//! does with a graph before running it (parse, validate, expand, order, re-emit). None may
//! panic or abort, and none may make that work allocate more than [`MEMORY_BOUND`], measured
//! by the counting global allocator of this test binary (peak live bytes, not wall-clock).
//!
//! 256 cases per property by default (CI); more on demand:
//! `PROPTEST_CASES=20000 cargo test --release -p sykli-runtime --test fuzz_document -- --nocapture`.
//! The summary line printed at the end gives the documents run and the peak memory seen.
//!
//! Every property runs inside ONE `#[test]`, so no other test thread allocates while a
//! document is measured.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use sykli_runtime::graph::condition::{self, ConditionContext};
use sykli_runtime::graph::{Graph, Limits, validate};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest document generated.
const MAX_DOCUMENT: usize = 64 << 10;

/// What handling one document of up to [`MAX_DOCUMENT`] bytes may allocate at its peak, beyond
/// what was live before (the document itself included). With the default [`Limits`] the
/// expanded graph is at most 16 MiB of JSON (`max_matrix_bytes`), 4,096 matrix tasks and
/// 65,536 matrix edges; the rest is linear in the document.
const MEMORY_BOUND: usize = 64 << 20;

/// What the suite saw, for the summary line.
#[derive(Default)]
struct Seen {
    documents: usize,
    parsed: usize,
    valid: usize,
    expanded_tasks_max: usize,
    largest: usize,
    peak: usize,
    peak_document: usize,
}

/// Everything done with a graph before it runs, measured. Returns the peak bytes allocated.
fn handle(text: &str, seen: &mut Seen) -> usize {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    seen.documents += 1;
    seen.largest = seen.largest.max(text.len());
    if let Ok(g) = Graph::from_json(text) {
        seen.parsed += 1;
        // Re-emission is what `sykli graph` and the SDKs print.
        let _ = g.to_json_pretty();
        match validate(&g) {
            Ok(v) => {
                seen.valid += 1;
                seen.expanded_tasks_max = seen.expanded_tasks_max.max(v.len());
                let order = v.topological_order();
                assert_eq!(order.len(), v.len(), "a valid graph orders every task");
                let ctx = ConditionContext {
                    branch: Some("main".into()),
                    ci: true,
                    ..Default::default()
                };
                for i in 0..v.len() {
                    if let Some(expr) = v.task(i).condition_expr() {
                        let c = condition::parse(expr).expect("a valid graph's conditions parse");
                        let _ = c.evaluate(&ctx);
                        let _ = c.to_string();
                    }
                }
            }
            Err(errors) => {
                for e in errors.errors() {
                    assert!(!e.to_string().is_empty());
                    let _ = e.code();
                }
            }
        }
    }
    let used = PEAK.load(Relaxed).saturating_sub(base);
    if used > seen.peak {
        seen.peak = used;
        seen.peak_document = text.len();
    }
    used
}

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Serialises a graph document, dropping tasks from the end until it fits in 64 KiB.
fn fit(mut doc: Value) -> String {
    loop {
        let text = doc.to_string();
        if text.len() <= MAX_DOCUMENT {
            return text;
        }
        let tasks = doc["tasks"].as_array_mut().expect("a graph document");
        let keep = tasks.len() * 3 / 4;
        tasks.truncate(keep);
    }
}

fn condition_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(
            prop::sample::select(
                &[
                    "branch",
                    "tag",
                    "ci",
                    "==",
                    "!=",
                    "matches",
                    "&&",
                    "||",
                    "!",
                    "(",
                    ")",
                    "'main'",
                    "'v*'",
                    "true",
                    "branch:main",
                    ","
                ][..]
            ),
            0..16
        )
        .prop_map(|p| p.join(" ")),
        // Deep parentheses and long operator chains.
        (1usize..3000).prop_map(|n| format!("{}ci{}", "(".repeat(n), ")".repeat(n))),
        (1usize..3000).prop_map(|n| vec!["ci"; n].join(" && ")),
        (1usize..3000).prop_map(|n| format!("{}ci", "!".repeat(n))),
    ]
}

/// A value for an optional field: often absent, sometimes `null`.
fn maybe(v: Value, pick: u8) -> Option<Value> {
    match pick % 4 {
        0 | 1 => None,
        2 => Some(Value::Null),
        _ => Some(v),
    }
}

/// Graph-shaped documents: up to 600 tasks with random dependencies (unknown names, cycles),
/// matrices of up to 12 dimensions of up to 12 values (combination counts far past the
/// limits), conditions, capabilities, task inputs and `null` fields.
fn graph_document() -> impl Strategy<Value = String> {
    (1usize..600).prop_flat_map(|n| {
        prop::collection::vec(
            (
                prop::collection::vec(0..n + n / 4 + 1, 0..8),
                prop::option::weighted(0.2, prop::collection::vec((1usize..12, 0usize..8), 1..12)),
                prop::option::weighted(0.2, condition_text()),
                any::<[u8; 8]>(),
                prop::option::weighted(0.1, 0..n),
                0usize..3000,
            ),
            n,
        )
        .prop_map(move |specs| {
            let tasks: Vec<Value> = specs
                .into_iter()
                .enumerate()
                .map(|(i, (deps, matrix, when, picks, input, long))| {
                    let name = if picks[0] == 0 {
                        format!("t{}", i / 2) // duplicates
                    } else {
                        format!("t{i}")
                    };
                    let deps: Vec<String> = deps
                        .into_iter()
                        .map(|d| {
                            if d < n {
                                format!("t{d}")
                            } else {
                                format!("t{}x", d - n) // unknown, close to a real name
                            }
                        })
                        .collect();
                    let mut t = json!({"name": name, "command": "true", "depends_on": deps,
                                       "outputs": {"o": "out"}});
                    let o = t.as_object_mut().unwrap();
                    if let Some(dims) = matrix {
                        let m: serde_json::Map<String, Value> = dims
                            .into_iter()
                            .enumerate()
                            .map(|(k, (values, dup))| {
                                let vals: Vec<String> = (0..values)
                                    .map(|v| format!("{}", v % values.saturating_sub(dup).max(1)))
                                    .collect();
                                (format!("k{k}"), json!(vals))
                            })
                            .collect();
                        o.insert("matrix".into(), Value::Object(m));
                    }
                    if let Some(w) = when {
                        o.insert("when".into(), json!(w));
                    }
                    if let Some(src) = input {
                        o.insert(
                            "task_inputs".into(),
                            json!([{"from_task": format!("t{src}"), "output": "o",
                                    "dest": "d".repeat(long)}]),
                        );
                    }
                    if picks[1] % 5 == 0 {
                        o.insert("provides".into(), json!([format!("c{}", picks[2] % 4)]));
                    }
                    if picks[1] % 7 == 0 {
                        o.insert("needs".into(), json!([format!("c{}", picks[3] % 5)]));
                    }
                    for (k, field, v) in [
                        (4, "inputs", json!(["src/**"])),
                        (5, "env", json!({"A": "1"})),
                        (6, "secrets", json!(["TOKEN"])),
                        (7, "retry", json!(1)),
                    ] {
                        if let Some(v) = maybe(v, picks[k]) {
                            o.insert(field.into(), v);
                        }
                    }
                    t
                })
                .collect();
            fit(json!({"version": "1", "tasks": tasks}))
        })
    })
}

/// Adversarial matrices: matrix tasks whose combinations sit around the limit, a long command
/// each expansion copies, long values, and dependents that fan into every expansion.
fn matrix_document() -> impl Strategy<Value = String> {
    (
        1usize..64, // matrix tasks
        // (dimensions, values per dimension): random, or exactly at and just past the limit.
        prop_oneof![
            3 => (1usize..10, 1usize..5),
            1 => prop::sample::select(&[(8, 2), (4, 4), (2, 16), (1, 256), (9, 2), (1, 257)][..]),
        ],
        0usize..60_000, // command length, shared among the matrix tasks
        0usize..300,    // dependents of every matrix task
        0usize..200,    // value length
        any::<bool>(),  // dependents take task inputs from the matrix tasks
        prop::option::of(0usize..4000), // each matrix task takes an input from the previous one
    )
        .prop_map(|(m, (dims, vals), command, dependents, value_len, inputs, chain)| {
            let command = "x".repeat(command / m);
            let value = "v".repeat(value_len);
            let mut tasks = Vec::new();
            for i in 0..m {
                let matrix: serde_json::Map<String, Value> = (0..dims)
                    .map(|d| {
                        let vs: Vec<String> = (0..vals).map(|v| format!("{value}{v}")).collect();
                        (format!("d{d}"), json!(vs))
                    })
                    .collect();
                let mut t = json!({"name": format!("m{i}"), "command": command,
                                   "outputs": {"o": "out"}, "matrix": matrix});
                // Matrix into matrix: every expansion takes the input from every expansion
                // of the previous task, each copy with its own long destination.
                if let Some(dest) = chain.filter(|_| i > 0) {
                    t["task_inputs"] = json!([{"from_task": format!("m{}", i - 1), "output": "o",
                                               "dest": "d".repeat(dest)}]);
                }
                tasks.push(t);
            }
            let all: Vec<String> = (0..m).map(|i| format!("m{i}")).collect();
            for j in 0..dependents {
                let mut t =
                    json!({"name": format!("dep{j}"), "command": "true", "depends_on": all});
                if inputs {
                    let ti: Vec<Value> = all
                        .iter()
                        .map(|f| json!({"from_task": f, "output": "o", "dest": "in"}))
                        .collect();
                    t["task_inputs"] = json!(ti);
                }
                tasks.push(t);
            }
            fit(json!({"version": "1", "tasks": tasks}))
        })
}

/// Deep nesting: arrays and objects nested up to 20,000 deep, balanced or not, in an unknown
/// field, as the whole document, or inside a field the model carries as is.
fn nesting_document() -> impl Strategy<Value = String> {
    (1usize..20_000, 0u8..4, any::<bool>()).prop_map(|(depth, place, balanced)| {
        let depth = depth.min(MAX_DOCUMENT / 8);
        let (open, close) = if place % 2 == 0 {
            ("[", "]")
        } else {
            ("{\"a\":", "}")
        };
        let inner = format!(
            "{}1{}",
            open.repeat(depth),
            if balanced { close.repeat(depth) } else { String::new() }
        );
        match place {
            0 => inner,
            1 => format!("{{\"version\": \"1\", \"tasks\": [], \"x\": {inner}}}"),
            2 => format!(
                "{{\"version\": \"1\", \"tasks\": [{{\"name\": \"a\", \"command\": \"x\", \"k8s\": {inner}}}]}}"
            ),
            _ => format!("{{\"version\": \"1\", \"tasks\": [{{\"name\": \"a\", \"semantic\": {inner}}}]}}"),
        }
    })
}

/// Long strings in every place a string can be: names (copied into errors and expansion
/// names), commands, matrix values, dependencies.
fn long_string_document() -> impl Strategy<Value = String> {
    (0usize..MAX_DOCUMENT - 200, 0u8..5).prop_map(|(len, place)| {
        let s = "é".repeat(len / 2);
        let doc = match place {
            0 => json!({"version": "1", "tasks": [{"name": s, "command": "x"}]}),
            1 => json!({"version": "1", "tasks": [{"name": "a", "command": s,
                         "matrix": {"k": ["1", "2", "3", "4"]}}]}),
            2 => json!({"version": "1", "tasks": [{"name": "a", "command": "x",
                         "matrix": {"k": [s, "2"]}}]}),
            3 => json!({"version": "1", "tasks": [{"name": "a", "command": "x",
                         "depends_on": [s]}, {"name": "b", "command": "x"}]}),
            _ => json!({"version": "1", "tasks": [{"name": "a", "command": "x", "when": s}]}),
        };
        doc.to_string()
    })
}

/// Many tasks with many similar unknown dependencies: the "did you mean" suggestions must stay
/// within their budget.
fn typo_document() -> impl Strategy<Value = String> {
    (1usize..800, 1usize..20).prop_map(|(n, per)| {
        // About 16 bytes per dependency and 40 per task: keep within the size bound.
        let n = n.min(MAX_DOCUMENT / (per * 16 + 40));
        let tasks: Vec<Value> = (0..n)
            .map(|i| {
                let deps: Vec<String> = (0..per).map(|k| format!("task-{}-{k}y", i % 97)).collect();
                json!({"name": format!("task-{i}"), "command": "x", "depends_on": deps})
            })
            .collect();
        fit(json!({"version": "1", "tasks": tasks}))
    })
}

fn bytes_document() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..MAX_DOCUMENT).prop_map(|b| {
        // Invalid UTF-8 becomes U+FFFD (3 bytes): cut back to the size bound.
        let mut s = String::from_utf8_lossy(&b).into_owned();
        let mut cut = s.len().min(MAX_DOCUMENT);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s
    })
}

#[test]
fn whole_documents_never_panic_and_stay_under_the_memory_bound() {
    // The allocator counts what is allocated...
    let base = LIVE.load(Relaxed);
    let big = vec![1u8; 8 << 20];
    assert!(
        LIVE.load(Relaxed) >= base + (8 << 20),
        "the allocator counts"
    );
    drop(big);
    // ...and the ~600-byte document of issue 10 (a billion combinations) costs next to nothing.
    let values: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let dims: serde_json::Map<String, Value> =
        (0..9).map(|k| (format!("k{k}"), json!(values))).collect();
    let billion =
        json!({"version": "1", "tasks": [{"name": "big", "command": "true", "matrix": dims}]})
            .to_string();
    let mut seen = Seen::default();
    let used = handle(&billion, &mut seen);
    assert!(
        used < 1 << 20,
        "the billion-combination matrix took {used} bytes"
    );
    let g = Graph::from_json(&billion).unwrap();
    assert_eq!(
        validate(&g).unwrap_err().errors()[0].code(),
        "matrix_too_large"
    );
    assert!(
        Limits::UNLIMITED.check_graph(&g).is_empty(),
        "the limit, not the document, stops it"
    );

    // Hand-made documents at the limits: a 256-way matrix copying a 60 KB command, and a
    // 256-way matrix taking an input from every expansion of another (65,280 copies, each with
    // its own 150-byte destination).
    let sixteen: Vec<String> = (0..16).map(|i| format!("{i:x}")).collect();
    let at_the_limits = [
        json!({"version": "1", "tasks": [{"name": "m", "command": "x".repeat(60_000),
               "matrix": {"a": sixteen, "b": sixteen}}]}),
        json!({"version": "1", "tasks": [
            {"name": "a", "command": "x", "outputs": {"o": "out"},
             "matrix": {"a": sixteen, "b": sixteen}},
            {"name": "b", "command": "x", "matrix": {"a": sixteen, "b": sixteen},
             "task_inputs": [{"from_task": "a", "output": "o", "dest": "d".repeat(150)}]}]}),
    ];
    for doc in at_the_limits {
        let text = doc.to_string();
        let used = handle(&text, &mut seen);
        assert!(
            Graph::from_json(&text).is_ok_and(|g| validate(&g).is_ok()),
            "within the limits"
        );
        assert!(
            used <= MEMORY_BOUND,
            "{used} bytes for a document at the limits"
        );
    }
    let properties: Vec<(&str, BoxedStrategy<String>)> = vec![
        ("graph documents", graph_document().boxed()),
        ("adversarial matrices", matrix_document().boxed()),
        ("deep nesting", nesting_document().boxed()),
        ("long strings", long_string_document().boxed()),
        ("unknown dependencies", typo_document().boxed()),
        ("arbitrary bytes", bytes_document().boxed()),
    ];
    let seen = std::cell::RefCell::new(seen);
    for (name, strategy) in properties {
        let started = std::time::Instant::now();
        let before = seen.borrow().documents;
        let mut runner = TestRunner::new(config());
        let result = runner.run(&strategy, |text| {
            prop_assert!(
                text.len() <= MAX_DOCUMENT,
                "document of {} bytes",
                text.len()
            );
            let used = handle(&text, &mut seen.borrow_mut());
            prop_assert!(
                used <= MEMORY_BOUND,
                "a document of {} bytes took {used} bytes (bound {MEMORY_BOUND}): {}",
                text.len(),
                text.chars().take(200).collect::<String>()
            );
            Ok(())
        });
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        eprintln!(
            "fuzz_document: {name}: {} documents in {:.1?}",
            seen.borrow().documents - before,
            started.elapsed()
        );
    }
    let seen = seen.into_inner();
    eprintln!(
        "fuzz_document: {} documents ({} parsed, {} valid; up to {} tasks after expansion), largest {} bytes; peak memory {} bytes ({:.1} MiB) for a {}-byte document; bound {} MiB",
        seen.documents,
        seen.parsed,
        seen.valid,
        seen.expanded_tasks_max,
        seen.largest,
        seen.peak,
        seen.peak as f64 / (1 << 20) as f64,
        seen.peak_document,
        MEMORY_BOUND >> 20
    );
    assert!(
        seen.parsed > 0 && seen.valid > 0,
        "the generators reach the validator"
    );
}
