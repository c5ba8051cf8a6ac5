//! `sykli import FILE --to rust|go|ts`: GitHub Actions workflows of real-world shape and a
//! Loom `.loom.yml` become pipelines whose emitted graphs (built with cargo against this SDK,
//! through the real `go` toolchain, and the TypeScript SDK's `tsx`, with the real loader)
//! validate and equal the expected JSON; what was not translated is listed on stderr and in
//! the generated file's comments.
//!
//! Fixtures in `tests/import/`: `<name>.yml`, the graph it must emit
//! (`<name>.expected.json`, the same for every SDK) and what must be listed as not translated
//! (`<name>.untranslated.txt`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sykli::loader::{TsRunner, load_go, load_ts_with};
use sykli_runtime::graph::{Graph, validate};

const WORKFLOWS: [&str; 4] = ["ci", "node", "go", "multi.loom"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import")
}

fn sdk(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .canonicalize()
        .unwrap()
}

/// `sykli import <workflow>.yml --to <to>` in `dir`: the source, after checking the
/// untranslated list on stderr and in the comments.
fn import(dir: &Path, workflow: &str, to: &str) -> String {
    let file = fixtures().join(format!("{workflow}.yml"));
    let out = common::command(dir, &["import", file.to_str().unwrap(), "--to", to])
        .env("SYKLI_TS_SDK", sdk("sdk-ts"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{workflow} --to {to}: {stderr}");
    let source = String::from_utf8(out.stdout).unwrap();
    let expected =
        std::fs::read_to_string(fixtures().join(format!("{workflow}.untranslated.txt"))).unwrap();
    let notes: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: not translated: "))
        .collect();
    assert_eq!(
        notes,
        expected.lines().collect::<Vec<_>>(),
        "{workflow}: {stderr}"
    );
    for n in &notes {
        assert!(
            source.contains(&format!("//   - {n}\n")),
            "{n} not in:\n{source}"
        );
    }
    source
}

/// Checks an emitted graph against `<workflow>.expected.json` and validates it.
fn check(workflow: &str, to: &str, json: &str, source: &str) {
    let graph: Value = serde_json::from_str(json).unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(format!("{workflow}.expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        graph,
        expected,
        "{workflow} --to {to}:\n{}\n{source}",
        serde_json::to_string_pretty(&graph).unwrap()
    );
    validate(&Graph::from_json(json).unwrap())
        .unwrap_or_else(|e| panic!("{workflow} --to {to}: {e}"));
}

#[test]
fn github_workflows_become_go_pipelines_emitting_the_expected_graphs() {
    for workflow in WORKFLOWS {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let source = import(d, workflow, "go");
        std::fs::write(d.join("sykli.go"), &source).unwrap();
        std::fs::write(
            d.join("go.mod"),
            format!(
                "module imported\n\ngo 1.21\n\nrequire sykli.dev/sdk-go v0.1.0\n\nreplace sykli.dev/sdk-go => {}\n",
                sdk("sdk-go").display()
            ),
        )
        .unwrap();
        let emitted = load_go(&d.join("sykli.go")).unwrap_or_else(|e| panic!("{e}\n{source}"));
        check(workflow, "go", &emitted.json, &source);
    }
}

#[test]
fn github_workflows_become_ts_pipelines_emitting_the_same_graphs() {
    let runner = TsRunner {
        program: sdk("sdk-ts").join("node_modules/.bin/tsx").into_os_string(),
        args: vec![],
    };
    for workflow in WORKFLOWS {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let source = import(d, workflow, "ts");
        std::fs::write(d.join("sykli.ts"), &source).unwrap();
        let emitted =
            load_ts_with(&d.join("sykli.ts"), &runner).unwrap_or_else(|e| panic!("{e}\n{source}"));
        check(workflow, "ts", &emitted.json, &source);
    }
}

/// The Rust pipelines: one cargo project with a bin per workflow, built against this SDK in a
/// target dir shared with cli_validate's pipeline crate (so only the first run compiles it).
#[test]
fn github_and_loom_workflows_become_rust_pipelines_emitting_the_same_graphs() {
    let sdk_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = |w: &str| w.replace('.', "-");
    let mut manifest = String::from(
        "[package]\nname = \"imported-pipelines\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n",
    );
    let mut sources = Vec::new();
    for workflow in WORKFLOWS {
        let source = import(d, workflow, "rust");
        std::fs::write(d.join(format!("{}.rs", bin(workflow))), &source).unwrap();
        manifest.push_str(&format!(
            "[[bin]]\nname = \"{0}\"\npath = \"{0}.rs\"\n\n",
            bin(workflow)
        ));
        sources.push(source);
    }
    manifest.push_str(&format!(
        "[dependencies]\nsykli = {{ path = \"{}\", default-features = false }}\n\n[workspace]\n",
        sdk_dir.display()
    ));
    std::fs::write(d.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(sdk_dir.join("../Cargo.lock"), d.join("Cargo.lock")).unwrap();
    let target: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("sykli-rs-fixture");
    for (workflow, source) in WORKFLOWS.iter().zip(&sources) {
        let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "run",
                "--quiet",
                "--offline",
                "--bin",
                &bin(workflow),
                "--",
                "--emit",
            ])
            .current_dir(d)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{workflow} --to rust: {}\n{source}",
            String::from_utf8_lossy(&out.stderr)
        );
        check(
            workflow,
            "rust",
            &String::from_utf8(out.stdout).unwrap(),
            source,
        );
    }
}

#[test]
fn a_non_workflow_and_a_loom_file_without_steps_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.loom.yml"),
        "name: x\njobs:\n  build:\n    runs-on: go\n",
    )
    .unwrap();
    let out = common::sykli(dir.path(), &["import", "bad.loom.yml", "--to", "rust"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::text(&out).contains(
            "not a Loom workflow: job `build` has no `steps` list (each job must have steps)"
        ),
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
