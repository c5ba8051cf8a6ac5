//! Property tests: the JSON reader, the condition parser and the validator never panic on any
//! input, and what they accept satisfies their guarantees.
//!
//! The default case count is modest for CI; for a long run:
//! `PROPTEST_CASES=200000 cargo test --release -p sykli-runtime --test fuzz_graph`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use sykli_runtime::graph::condition::{self, ConditionContext};
use sykli_runtime::graph::{Graph, ValidationError, validate};

fn config() -> ProptestConfig {
    // PROPTEST_CASES overrides this default.
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        ..ProptestConfig::default()
    }
}

const NAMES: &[&str] = &["a", "b", "c", "d", "build", "biuld", "test", "t-x", "", "ü"];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_string)
}

fn condition_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Built from grammar pieces: mostly valid, sometimes not.
        prop::collection::vec(
            prop::sample::select(
                &[
                    "branch",
                    "tag",
                    "event",
                    "ci",
                    "pr_number",
                    "platform",
                    "runner",
                    "==",
                    "!=",
                    "matches",
                    "=~",
                    "&&",
                    "||",
                    "!",
                    "and",
                    "or",
                    "not",
                    "(",
                    ")",
                    "'main'",
                    "\"v*\"",
                    "true",
                    "false",
                    "branch:main",
                    "matches(branch, 'x*')",
                    ",",
                    "&",
                    "'",
                    "bogus",
                ][..]
            ),
            0..12
        )
        .prop_map(|parts| parts.join(" ")),
        any::<String>(),
        "[ -~]{0,40}",
    ]
}

fn task_value() -> impl Strategy<Value = Value> {
    (
        name(),
        prop::option::of(prop_oneof![
            "echo hi".prop_map(String::from),
            Just(String::new())
        ]),
        prop::collection::vec(name(), 0..4),
        prop::option::of(condition_text()),
        prop::collection::btree_map(
            "[a-z]{0,2}",
            prop::collection::vec("[a-z0-9]{0,2}", 0..3),
            0..3,
        ),
        prop::collection::vec((name(), "[a-z]{1,2}"), 0..2),
        prop::collection::vec("[a-z]{1,2}", 0..2),
        prop::collection::vec("[a-z]{1,2}", 0..2),
        prop::option::of(0u64..3),
        prop::collection::btree_map("[A-Z]{0,2}", "[a-z]{0,3}", 0..2),
        any::<u8>(),
    )
        .prop_map(
            |(name, command, deps, when, matrix, inputs, provides, needs, timeout, env, bits)| {
                let mut t = json!({"name": name, "depends_on": deps, "env": env});
                let o = t.as_object_mut().unwrap();
                if let Some(c) = command {
                    o.insert("command".into(), json!(c));
                }
                if let Some(w) = when {
                    o.insert(
                        if bits & 1 == 0 { "when" } else { "condition" }.into(),
                        json!(w),
                    );
                }
                if bits & 2 != 0 {
                    o.insert("matrix".into(), json!(matrix));
                }
                let ti: Vec<Value> = inputs
                    .iter()
                    .map(|(from, out)| json!({"from_task": from, "output": out, "dest": "d"}))
                    .collect();
                o.insert("task_inputs".into(), json!(ti));
                o.insert("outputs".into(), json!({"o": "p", "x": "y"}));
                o.insert("provides".into(), json!(provides));
                o.insert("needs".into(), json!(needs));
                if let Some(t) = timeout {
                    o.insert("timeout".into(), json!(t));
                }
                if bits & 4 != 0 {
                    o.insert("gate".into(), json!({"strategy": "env"}));
                }
                if bits & 8 != 0 {
                    o.insert(
                        "mounts".into(),
                        json!([{"resource": if bits & 16 != 0 { "src:../x" } else { "c" },
                                "path": if bits & 32 != 0 { "/m" } else { "m" },
                                "type": if bits & 64 != 0 { "cache" } else { "directory" }}]),
                    );
                    o.insert("container".into(), json!("alpine"));
                }
                if bits & 128 != 0 {
                    o.insert(
                        "success_criteria".into(),
                        json!([{"type": "file_exists", "path": "../x"}]),
                    );
                    o.insert("x-unknown".into(), json!(1));
                }
                t
            },
        )
}

fn graph_value() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&["1", "2", "3", "4"][..]),
        prop::collection::vec(task_value(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(version, tasks, res)| {
            let mut g = json!({"version": version, "tasks": tasks});
            if res {
                g["resources"] = json!({"c": {"type": "cache", "name": "c"}});
            }
            g
        })
}

/// Checks the guarantees of a graph that validated.
fn check_valid(g: &Graph) {
    let Ok(v) = validate(g) else { return };
    let n = v.len();
    let mut seen = std::collections::HashSet::new();
    for i in 0..n {
        let t = v.task(i);
        assert!(!t.name.is_empty());
        assert!(seen.insert(t.name.clone()), "duplicate {}", t.name);
        assert_eq!(v.index_of(&t.name), Some(i));
        assert!(t.matrix.is_empty(), "matrix not expanded");
        let names: Vec<&str> = v.deps(i).iter().map(|&d| v.task(d).name.as_str()).collect();
        assert_eq!(names, t.depends_on, "deps(i) and depends_on disagree");
        for ti in &t.task_inputs {
            assert!(
                t.depends_on.contains(&ti.from_task),
                "task input source not a dependency"
            );
        }
        for &d in v.deps(i) {
            assert!(v.dependents(d).contains(&i));
        }
    }
    let order = v.topological_order();
    assert_eq!(order.len(), n, "a validated graph is acyclic");
    let mut pos = vec![0; n];
    for (k, &i) in order.iter().enumerate() {
        pos[i] = k;
    }
    for i in 0..n {
        for &d in v.deps(i) {
            assert!(pos[d] < pos[i]);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(g) = Graph::from_json(&text) {
            check_valid(&g);
        }
    }

    #[test]
    fn arbitrary_json_values_never_panic(v in any_json()) {
        let text = v.to_string();
        if let Ok(g) = Graph::from_json(&text) {
            check_valid(&g);
        }
    }

    #[test]
    fn arbitrary_graphs_validate_without_panic(v in graph_value()) {
        let g = Graph::from_json(&v.to_string()).expect("generated graphs have the right shape");
        check_valid(&g);
        // Re-emission is a fixed point whatever the content.
        let once = g.to_json_pretty();
        prop_assert_eq!(Graph::from_json(&once).unwrap().to_json_pretty(), once);
        if let Err(errs) = validate(&g) {
            for e in errs.errors() {
                let text = e.to_string();
                prop_assert!(!text.is_empty());
                if let ValidationError::Cycle { path } = e {
                    prop_assert!(path.len() >= 3 && path.first() == path.last());
                }
            }
        }
    }

    #[test]
    fn conditions_parse_or_fail_cleanly(src in condition_text()) {
        match condition::parse(&src) {
            Ok(c) => {
                let rendered = c.to_string();
                let again = condition::parse(&rendered).expect("canonical form parses");
                prop_assert_eq!(&again, &c);
                prop_assert_eq!(again.to_string(), rendered);
                let ctx = ConditionContext { branch: Some("main".into()), ci: true, ..Default::default() };
                prop_assert_eq!(c.evaluate(&ctx), again.evaluate(&ctx));
            }
            Err(e) => {
                prop_assert!(e.column >= 1 && e.column <= src.chars().count() + 1, "{e}");
                prop_assert!(e.to_string().contains('^'));
            }
        }
    }

    #[test]
    fn glob_matching_never_panics(glob in "[a-c*?/]{0,12}", text in "[a-c/]{0,16}") {
        let m = condition::glob_match(&glob, &text);
        if !glob.contains(['*', '?']) {
            prop_assert_eq!(m, glob == text);
        }
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(
            &[
                "1",
                "2",
                "4",
                "a",
                "",
                "src:.",
                "cache",
                "directory",
                "exit_code"
            ][..]
        )
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "version",
                        "tasks",
                        "resources",
                        "name",
                        "command",
                        "depends_on",
                        "outputs",
                        "matrix",
                        "gate",
                        "strategy",
                        "provides",
                        "type",
                        "path",
                        "mounts",
                        "when",
                        "timeout",
                        "env",
                        "x"
                    ][..]
                )
                .prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect())),
        ]
    })
}
