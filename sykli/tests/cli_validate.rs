//! `sykli validate` and `sykli graph`, run as the real binary on real project directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sykli(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sykli"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sykli")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn project(json: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("sykli.json"), json).unwrap();
    d
}

const VALID: &str = r#"{"version": "1", "tasks": [
  {"name": "lint", "command": "cargo clippy"},
  {"name": "test", "command": "cargo test", "depends_on": ["lint"], "x-note": 1},
  {"name": "say \"hi\"", "command": "echo", "depends_on": ["lint", "test"]}
]}"#;

#[test]
fn validate_ok_text_and_json() {
    let d = project(VALID);
    let out = sykli(&["validate"], d.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: the pipeline is valid (3 tasks)\n");
    assert_eq!(
        text(&out.stderr),
        "warning: task \"test\" has unknown field `x-note` (kept, ignored)\n"
    );

    let out = sykli(&["validate", "--json", "."], d.path());
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["version"], "1");
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["data"]["tasks"], 3);
    assert_eq!(v["data"]["valid"], true);
    assert!(text(&out.stdout).starts_with(r#"{"ok":true,"version":"1","data":"#));
    assert!(out.stderr.is_empty(), "--json prints nothing else");
}

#[test]
fn validate_lists_every_error_and_exits_2() {
    let d = project(
        r#"{"version": "1", "tasks": [
      {"name": "build", "command": "make", "depends_on": ["tset"]},
      {"name": "test", "depends_on": ["build"], "when": "branch == 'main' &&& ci"},
      {"name": "a", "command": "x", "depends_on": ["b"]},
      {"name": "b", "command": "x", "depends_on": ["a"]}
    ]}"#,
    );
    let out = sykli(&["validate"], d.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error: task \"build\" depends on unknown task \"tset\" (did you mean \"test\"?)\n\
         error: task \"test\" has no command\n\
         error: task \"test\" has an invalid condition: expected `&&`, found a single `&` at column 20\n  \
         branch == 'main' &&& ci\n                     ^\n\
         error: dependency cycle detected: a -> b -> a\n"
    );

    // Validating worked, so the envelope is ok; the pipeline's errors are the data.
    let out = sykli(&["validate", "--json"], d.path());
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["data"]["valid"], false);
    assert_eq!(v["data"]["errors"].as_array().unwrap().len(), 4);
    let errors = v["data"]["errors"].as_array().unwrap();
    assert_eq!(errors[1]["code"], "missing_command");
    assert_eq!(errors[1]["tasks"], serde_json::json!(["test"]));
    assert_eq!(errors[3]["code"], "cycle");
    assert_eq!(errors[3]["tasks"], serde_json::json!(["a", "b"]));
}

#[test]
fn graph_mermaid_and_dot() {
    let d = project(VALID);
    let out = sykli(&["graph"], d.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "graph TD\n  t0[\"lint\"]\n  t1[\"test\"]\n  t2[\"say #quot;hi#quot;\"]\n  t0 --> t1\n  t0 --> t2\n  t1 --> t2\n"
    );
    let out = sykli(&["graph", "--dot", "sykli.json"], d.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "digraph sykli {\n  rankdir=TB;\n  \"lint\";\n  \"test\";\n  \"say \\\"hi\\\"\";\n  \"lint\" -> \"test\";\n  \"lint\" -> \"say \\\"hi\\\"\";\n  \"test\" -> \"say \\\"hi\\\"\";\n}\n"
    );
}

#[test]
fn graph_draws_the_matrix_expansion() {
    let d = project(
        r#"{"version": "1", "tasks": [
      {"name": "test", "command": "t", "matrix": {"os": ["linux", "mac"]}},
      {"name": "ship", "command": "s", "depends_on": ["test"]}]}"#,
    );
    let out = sykli(&["graph"], d.path());
    assert_eq!(
        text(&out.stdout),
        "graph TD\n  t0[\"test-linux\"]\n  t1[\"test-mac\"]\n  t2[\"ship\"]\n  t0 --> t2\n  t1 --> t2\n"
    );
}

#[test]
fn load_errors_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    let out = sykli(&["validate"], d.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: no pipeline found in .: looked for sykli.rs, sykli.go, sykli.ts, sykli.json\n"
        )
    );
    std::fs::write(
        d.path().join("g.json"),
        "{\"version\": \"9\", \"tasks\": []}",
    )
    .unwrap();
    let out = sykli(&["validate", "g.json"], d.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: failed to parse the task graph from g.json: unsupported graph version \"9\" (expected \"1\", \"2\", \"3\" or \"4\") at line 1 column 15\n"
    );
    let out = sykli(&["validate", "--json", "missing.json"], d.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "not_found");
    assert_eq!(
        v["error"]["message"],
        "failed to find missing.json: no such file or directory"
    );
    std::fs::write(d.path().join("sykli.go"), "package main").unwrap();
    let out = sykli(&["validate"], d.path());
    // A sykli.go that does not build: the error names the file, the command and go's stderr.
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sykli.go"), "{err}");
    assert!(err.contains("go build -o"), "{err}");
    assert!(err.contains("function main is undeclared"), "{err}");
}

#[test]
fn help_and_version_everywhere() {
    let d = tempfile::tempdir().unwrap();
    let out = sykli(&["--version"], d.path());
    assert_eq!(
        text(&out.stdout),
        format!("sykli {}\n", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["graph", "--help"],
    ] {
        let out = sykli(args, d.path());
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: sykli"), "{args:?}");
    }
    let out = sykli(&["validate", "--bogus"], d.path());
    assert_eq!(out.status.code(), Some(2));
}

/// A real `sykli.rs` project built with cargo against this SDK: the slow test (one compile,
/// in a target dir shared between runs).
#[test]
fn loads_a_rust_pipeline_crate() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("Cargo.toml"),
        format!(
            r#"[package]
name = "fixture-pipeline"
version = "0.0.0"
edition = "2024"
publish = false

[[bin]]
name = "pipeline"
path = "sykli.rs"

[dependencies]
sykli = {{ path = "{}", default-features = false }}

[workspace]
"#,
            sdk.display()
        ),
    )
    .unwrap();
    std::fs::copy(sdk.join("../Cargo.lock"), d.path().join("Cargo.lock")).unwrap();
    std::fs::write(
        d.path().join("sykli.rs"),
        r#"use sykli::{Condition, Pipeline};
fn main() -> Result<(), sykli::EmitError> {
    let p = Pipeline::new();
    p.task("lint").run("cargo clippy");
    p.task("test").run("cargo test").after(&["lint"]).when_cond(Condition::branch("main"));
    if std::env::var_os("FIXTURE_BREAK").is_some() {
        p.task("deploy").after(&["tset"]);
    }
    p.emit()
}
"#,
    )
    .unwrap();
    // Shared between runs so only the first one compiles the SDK.
    let target: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("sykli-rs-fixture");
    let run = |args: &[&str], brk: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sykli"));
        c.args(args)
            .current_dir(d.path())
            .env("CARGO_TARGET_DIR", &target);
        if brk {
            c.env("FIXTURE_BREAK", "1");
        }
        c.output().unwrap()
    };
    let out = run(&["validate", "--json"], false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data"]["tasks"], 2);
    let out = run(&["graph"], false);
    assert_eq!(
        text(&out.stdout),
        "graph TD\n  t0[\"lint\"]\n  t1[\"test\"]\n  t0 --> t1\n"
    );

    // The program itself rejects its graph: the error names the file, the command, and
    // shows the program's stderr.
    let out = run(&["validate"], true);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: `")
            && err.contains("cargo run --quiet --bin pipeline -- --emit` for ./sykli.rs failed (exit status: 1):\n"),
        "{err}"
    );
    assert!(
        err.contains("error: task \"deploy\" has no command"),
        "{err}"
    );
    assert!(
        err.contains(
            "error: task \"deploy\" depends on unknown task \"tset\" (did you mean \"test\"?)"
        ),
        "{err}"
    );
}
