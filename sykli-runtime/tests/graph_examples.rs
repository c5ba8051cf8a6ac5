//! The example documents under `tests/graphs/`: every valid one parses, validates, matches the
//! JSON Schema and re-emits identically (after normalising key order); every invalid one fails
//! with exactly the expected errors, each naming the right task(s).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sykli_runtime::graph::{Graph, validate};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/graphs")
        .join(sub)
}

fn files(sub: &str, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.ends_with(suffix) && !n.ends_with(".canonical.json")
        })
        .collect();
    v.sort();
    v
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/sykli-graph.schema.json"),
    )
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

#[test]
fn valid_examples_parse_validate_and_round_trip() {
    let schema = schema();
    let files = files("valid", ".json");
    assert!(files.len() >= 25, "only {} examples", files.len());
    let mut versions = std::collections::BTreeSet::new();
    for f in &files {
        let name = f.display();
        let text = std::fs::read_to_string(f).unwrap();
        let original: Value = serde_json::from_str(&text).unwrap();
        if let Err(e) = schema.validate(&original) {
            panic!("{name} does not match the schema: {e}");
        }
        let g = Graph::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        versions.insert(g.version);
        assert!(g.required_version() <= g.version, "{name}: version too low");
        let v = validate(&g).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert!(v.topological_order().len() == v.len(), "{name}");

        let emitted = g.to_json_pretty();
        let canonical_file = f.with_extension("canonical.json");
        let expected: Value = if canonical_file.exists() {
            serde_json::from_str(&std::fs::read_to_string(&canonical_file).unwrap()).unwrap()
        } else {
            original
        };
        let again: Value = serde_json::from_str(&emitted).unwrap();
        assert_eq!(again, expected, "{name} re-emits differently:\n{emitted}");
        // And the canonical form is a fixed point, byte for byte.
        assert_eq!(
            Graph::from_json(&emitted).unwrap().to_json_pretty(),
            emitted,
            "{name}"
        );
    }
    assert_eq!(
        versions.len(),
        4,
        "examples cover every version: {versions:?}"
    );
}

#[test]
fn invalid_examples_fail_with_the_expected_errors() {
    let files = files("invalid", ".json");
    assert!(files.len() >= 25);
    for f in &files {
        let name = f.display();
        let text = std::fs::read_to_string(f).unwrap();
        let expect: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(f.with_extension("expect")).unwrap())
                .unwrap();
        let g = Graph::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let errs = validate(&g).expect_err(&format!("{name} should be invalid"));
        let all = format!("{errs}\n");
        for e in &expect {
            assert!(all.contains(e.as_str()), "{name}: missing {e:?} in\n{all}");
        }
        let lines = errs.errors().len();
        let expected_count = expect
            .iter()
            .filter(|e| !e.starts_with("at column"))
            .count();
        assert_eq!(lines, expected_count, "{name}: error count\n{all}");
        // Every error names the tasks it is about, and they exist in the document.
        for e in errs.errors() {
            for t in e.tasks() {
                // Cycle paths print bare names (`a -> b -> a`); every other message quotes them.
                let shown = match e {
                    sykli_runtime::graph::ValidationError::Cycle { .. } => format!(" {t} "),
                    _ => format!("\"{t}\""),
                };
                assert!(format!(" {e} ").contains(&shown), "{name}: {e}");
                assert!(g.task(t).is_some(), "{name}: {e} names unknown task {t}");
            }
        }
    }
}

#[test]
fn cycle_paths_are_printed_from_the_first_task() {
    let g = Graph::from_json(
        r#"{"version": "1", "tasks": [
        {"name": "z", "command": "x"},
        {"name": "d", "command": "x", "depends_on": ["e"]},
        {"name": "e", "command": "x", "depends_on": ["f"]},
        {"name": "f", "command": "x", "depends_on": ["g", "z"]},
        {"name": "g", "command": "x", "depends_on": ["d", "e"]}]}"#,
    )
    .unwrap();
    let errs = validate(&g).unwrap_err();
    // One strongly connected component {d, e, f, g}: one cycle, starting at "d" (first in
    // document order) and taking the shortest way back.
    assert_eq!(
        errs.to_string(),
        "error: dependency cycle detected: d -> e -> f -> g -> d"
    );
    assert_eq!(errs.errors()[0].tasks(), ["d", "e", "f", "g"]);
}

#[test]
fn schema_rejects_shape_errors() {
    let schema = schema();
    for bad in [
        r#"{"tasks": []}"#,
        r#"{"version": 1, "tasks": []}"#,
        r#"{"version": "5", "tasks": []}"#,
        r#"{"version": "1", "tasks": [{"command": "x"}]}"#,
        r#"{"version": "1", "tasks": [{"name": "a", "timeout": 0}]}"#,
        r#"{"version": "2", "tasks": [{"name": "a", "mounts": [{"resource": "r", "path": "rel", "type": "cache"}]}]}"#,
        r#"{"version": "1", "tasks": [{"name": "a", "prefer": "elsewhere"}]}"#,
    ] {
        let v: Value = serde_json::from_str(bad).unwrap();
        assert!(!schema.is_valid(&v), "schema accepted {bad}");
    }
}
