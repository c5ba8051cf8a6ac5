//! `sykli import FILE --to go`: a GitHub Actions workflow of real-world shape becomes a Go
//! pipeline whose emitted graph (through the real `go` toolchain and loader) validates and
//! equals the expected JSON; what was not translated is listed on stderr and in comments.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use sykli::loader::{TsRunner, load_go, load_ts_with};
use sykli_runtime::graph::{Graph, validate};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import")
}

#[test]
fn a_github_workflow_becomes_a_go_pipeline_emitting_the_expected_graph() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let workflow = fixtures().join("ci.yml");
    let out = common::sykli(d, &["import", workflow.to_str().unwrap(), "--to", "go"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let source = String::from_utf8(out.stdout).unwrap();

    // Everything untranslated is on stderr and in the generated file's comments.
    let expected_notes = std::fs::read_to_string(fixtures().join("ci.untranslated.txt")).unwrap();
    let notes: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: not translated: "))
        .collect();
    assert_eq!(
        notes,
        expected_notes.lines().collect::<Vec<_>>(),
        "{stderr}"
    );
    for n in &notes {
        assert!(
            source.contains(&format!("//   - {n}\n")),
            "{n} not in:\n{source}"
        );
    }

    std::fs::write(d.join("sykli.go"), &source).unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-go");
    std::fs::write(
        d.join("go.mod"),
        format!(
            "module imported\n\ngo 1.21\n\nrequire sykli.dev/sdk-go v0.1.0\n\nreplace sykli.dev/sdk-go => {}\n",
            sdk.canonicalize().unwrap().display()
        ),
    )
    .unwrap();
    let emitted = load_go(&d.join("sykli.go")).unwrap_or_else(|e| panic!("{e}\n{source}"));
    let graph: Value = serde_json::from_str(&emitted.json).unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("ci.expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        graph,
        expected,
        "{}",
        serde_json::to_string_pretty(&graph).unwrap()
    );
    validate(&Graph::from_json(&emitted.json).unwrap()).unwrap();
}

/// The same workflow as TypeScript (run with the SDK's tsx) emits the same graph.
#[test]
fn a_github_workflow_becomes_a_ts_pipeline_emitting_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let workflow = fixtures().join("ci.yml");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sdk-ts")
        .canonicalize()
        .unwrap();
    let out = common::command(d, &["import", workflow.to_str().unwrap(), "--to", "ts"])
        .env("SYKLI_TS_SDK", &sdk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let source = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().count(),
        std::fs::read_to_string(fixtures().join("ci.untranslated.txt"))
            .unwrap()
            .lines()
            .count(),
        "{stderr}"
    );
    std::fs::write(d.join("sykli.ts"), &source).unwrap();
    let runner = TsRunner {
        program: sdk.join("node_modules/.bin/tsx").into_os_string(),
        args: vec![],
    };
    let emitted =
        load_ts_with(&d.join("sykli.ts"), &runner).unwrap_or_else(|e| panic!("{e}\n{source}"));
    let graph: Value = serde_json::from_str(&emitted.json).unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("ci.expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        graph,
        expected,
        "{}",
        serde_json::to_string_pretty(&graph).unwrap()
    );
}

#[test]
fn a_target_without_a_generator_and_a_non_workflow_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = fixtures().join("ci.yml");
    let out = common::sykli(
        dir.path(),
        &["import", workflow.to_str().unwrap(), "--to", "rust"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::text(&out)
            .contains("importing to rust is not implemented yet; use --to go or --to ts"),
        "{}",
        common::text(&out)
    );
    std::fs::write(dir.path().join("x.yml"), "- just\n- a list\n").unwrap();
    let out = common::sykli(dir.path(), &["import", "x.yml", "--to", "go"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::text(&out).contains("not a GitHub Actions workflow: the document is not a mapping"),
        "{}",
        common::text(&out)
    );
}
