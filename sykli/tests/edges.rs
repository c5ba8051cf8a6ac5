//! Graphs at the edges, through the real `sykli` binary: documents that ask for too much,
//! graphs from other emitters (`null` for absent fields), and pipeline programs that print
//! text around their graph. Each test is named after the bug it pins.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn sykli(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sykli"))
        .args(args)
        .current_dir(dir)
        .env("SYKLI_GO_SDK", repo().join("sdk-go"))
        .output()
        .expect("run sykli")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn project(file: &str, content: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(file), content).unwrap();
    d
}

/// Issue 10: a 595-byte `sykli.json` (one task, a matrix of 9 keys x 10 values) made
/// `sykli validate` exhaust memory and abort (SIGABRT, exit 134). It must fail validation
/// (exit 2) at once, naming the task and the number of combinations.
#[test]
fn matrix_of_9_keys_by_10_values_fails_validation_instead_of_aborting() {
    let values = r#"["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]"#;
    let dims: Vec<String> = (1..=9).map(|k| format!("\"k{k}\": {values}")).collect();
    let doc = format!(
        "{{\"version\": \"1\", \"tasks\": [{{\"name\": \"big\", \"command\": \"true\", \"matrix\": {{{}}}}}]}}\n",
        dims.join(", ")
    );
    assert!(
        doc.len() < 700,
        "the document stays small: {} bytes",
        doc.len()
    );
    let d = project("sykli.json", &doc);

    let started = Instant::now();
    let out = sykli(&["validate"], d.path());
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: task \"big\" has a matrix of 1000000000 combinations (9 dimensions); the limit is 256\n"
    );
    // Generous: the bug was an abort after minutes of allocation.
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let out = sykli(&["validate", "--json"], d.path());
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v["data"]["errors"][0];
    assert_eq!(e["code"], "matrix_too_large", "{v}");
    assert_eq!(e["tasks"], serde_json::json!(["big"]), "{v}");
}

/// Issue 10: `null` for an optional field (as upstream Sykli and other emitters write an
/// absent one) was a parse error. It means absent, for every optional field.
#[test]
fn null_optional_fields_mean_absent_and_validate() {
    let d = project(
        "sykli.json",
        r#"{"version": "1", "resources": null, "tasks": [
          {"name": "build", "command": "make", "inputs": null, "depends_on": null, "env": null,
           "secrets": null, "outputs": null, "task_inputs": null, "matrix": null, "when": null,
           "condition": null, "retry": null, "timeout": null, "requires": null, "provides": null,
           "needs": null, "gate": null, "services": null, "mounts": null, "secret_refs": null,
           "success_criteria": null, "container": null, "workdir": null, "k8s": null,
           "remote": null, "prefer": null, "native": null, "cache": null, "target": null,
           "task_type": null, "kind": null, "semantic": null, "ai_hooks": null,
           "evidence_required": null, "background": null},
          {"name": "test", "command": "make test", "depends_on": ["build"], "env": null}
        ]}"#,
    );
    let out = sykli(&["validate"], d.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: the pipeline is valid (2 tasks)\n");
    assert_eq!(
        text(&out.stderr),
        "",
        "no warnings: null fields are not unknown"
    );

    // The graph as sykli reads it has the fields absent, not null.
    let out = sykli(&["graph"], d.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("build"), "{}", text(&out.stdout));
}

fn go_starter(dir: &Path) -> PathBuf {
    let out = sykli(&["init", "--go", dir.to_str().unwrap()], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir.join("sykli.go")
}

/// Issue 10: a `sykli.go` that prints a line before its graph was refused. The graph is the
/// last JSON object of the output; the line is shown on stderr, prefixed with the file name.
#[test]
fn go_pipeline_printing_a_line_before_its_graph_validates() {
    let d = tempfile::tempdir().unwrap();
    let file = go_starter(d.path());
    let src = std::fs::read_to_string(&file).unwrap();
    let src = src
        .replace(
            "import sykli \"sykli.dev/sdk-go\"",
            "import (\n\t\"fmt\"\n\n\tsykli \"sykli.dev/sdk-go\"\n)",
        )
        .replace(
            "\ts.Emit()",
            "\tfmt.Println(\"building the pipeline {v1}\")\n\ts.Emit()",
        );
    std::fs::write(&file, src).unwrap();

    let out = sykli(&["validate", d.path().to_str().unwrap()], d.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "ok: the pipeline is valid (2 tasks)\n");
    assert_eq!(stderr, "sykli.go: building the pipeline {v1}\n");
}

/// A program may also print after its graph, and print JSON-looking text around it: the last
/// complete top-level object is the graph.
#[test]
fn go_program_printing_before_and_after_its_graph_validates() {
    let d = project(
        "sykli.go",
        "package main\n\nimport \"fmt\"\n\nfunc main() {\n\
         \tfmt.Println(\"{ starting\")\n\
         \tfmt.Println(`{\"log\": \"not the graph\"}`)\n\
         \tfmt.Println(`{\"version\": \"1\", \"tasks\": [{\"name\": \"only\", \"command\": \"true\"}]}`)\n\
         \tfmt.Println(\"done\")\n}\n",
    );
    let out = sykli(&["validate"], d.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "ok: the pipeline is valid (1 task)\n");
    assert_eq!(
        stderr,
        "sykli.go: { starting\nsykli.go: {\"log\": \"not the graph\"}\nsykli.go: done\n"
    );
}

/// When a program prints no graph at all, the error shows what it printed.
#[test]
fn go_program_printing_no_graph_shows_its_output() {
    let d = project(
        "sykli.go",
        "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\
         \tfor i := 0; i < 50; i++ {\n\t\tfmt.Printf(\"progress %d\\n\", i)\n\t}\n\
         \tfmt.Fprintln(os.Stderr, \"warning: no tasks defined\")\n}\n",
    );
    let out = sykli(&["validate"], d.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--emit` for ./sykli.go printed no task graph (a JSON object);\nit printed on stdout:\nprogress 0\n"),
        "{stderr}"
    );
    assert!(stderr.contains("progress 19\n... ("), "{stderr}");
    assert!(!stderr.contains("progress 20"), "cut: {stderr}");
    assert!(
        stderr.contains("it printed on stderr:\nwarning: no tasks defined"),
        "{stderr}"
    );
}

/// A `sykli.json` over the document size limit is refused before it is read.
#[test]
fn oversized_graph_file_is_refused_before_it_is_read() {
    let d = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(d.path().join("sykli.json")).unwrap();
    // Sparse: no 65 MiB written to disk.
    f.set_len((64 << 20) + 1).unwrap();
    let out = sykli(&["validate"], d.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: failed to load the task graph from ./sykli.json: it is larger than 67108864 bytes, the limit for a graph document\n"
    );
}

/// Deeply nested JSON and long strings get an error with their position, not a crash.
#[test]
fn deep_nesting_and_long_strings_are_refused_with_their_position() {
    let deep = format!(
        "{{\"version\": \"1\", \"tasks\": [], \"x\": {}1{}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let d = project("sykli.json", &deep);
    let out = sykli(&["validate"], d.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: failed to parse the task graph from ./sykli.json: arrays and objects nest deeper than 64 levels at line 1 column 99\n"
    );

    let long = format!(
        "{{\"version\": \"1\",\n \"tasks\": [{{\"name\": \"a\", \"command\": \"{}\"}}]}}",
        "x".repeat((1 << 20) + 1)
    );
    let d = project("sykli.json", &long);
    let out = sykli(&["validate"], d.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: failed to parse the task graph from ./sykli.json: the string at line 2 column 37 is 1048577 bytes; the limit is 1048576\n"
    );
}

/// The in-process Rust builder goes through the same limits: the matrix of issue 10 built with
/// `Pipeline` is refused by `validate` without being expanded.
#[test]
fn builder_matrix_of_a_billion_combinations_is_refused_in_process() {
    let p = sykli::Pipeline::new();
    let values = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let mut t = p.task("big").run("true");
    for k in 1..=9 {
        t = t.matrix(&format!("k{k}"), &values);
    }
    drop(t);
    let errors = p.validate().unwrap_err();
    assert_eq!(
        errors.to_string(),
        "error: task \"big\" has a matrix of 1000000000 combinations (9 dimensions); the limit is 256"
    );
}
