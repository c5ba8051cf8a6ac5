//! The multi-module pipeline as other engines see it: `--emit` output and `--sykli-exec`.

use std::path::Path;
use std::process::{Command, Output};

const PIPELINE: &str = env!("CARGO_BIN_EXE_pipeline");

/// Runs the pipeline binary in `dir`, with a cache of its own there: the user cache is shared
/// by every checkout (keys hold no absolute paths), so another run's hits must not leak in.
fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(PIPELINE)
        .args(args)
        .current_dir(dir)
        .env("SYKLI_CACHE_DIR", dir.join(".sykli-test-cache"))
        .output()
        .expect("the pipeline binary starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn emit_matches_the_expected_graph() {
    let out = run(&["--emit"], Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let expected = include_str!("expected.json");
    assert_eq!(text(&out.stdout), expected);
    // Tasks from all three modules, dependencies resolved to task names.
    let graph: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = graph["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 6);
    // The builder task added by `sykli::main!(builder_tasks)` comes last.
    assert_eq!(names.last(), Some(&"docs"));
    for name in ["fmt", "lint", "build-manifest", "unit-tests", "publish"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[test]
fn sykli_exec_runs_one_native_task_and_reports_success() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(PIPELINE)
        .args(["--sykli-exec", "build-manifest"])
        .env("PROFILE", "bench")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let manifest = std::fs::read_to_string(dir.path().join("target/manifest.txt")).unwrap();
    assert_eq!(manifest, "crate: multi-module\nprofile: bench\n");
}

#[test]
fn sykli_exec_exits_1_with_the_task_error_when_the_task_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src/deep")).unwrap();
    std::fs::write(dir.path().join("src/ok.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.path().join("src/deep/bad.rs"), "// TODO: finish\n").unwrap();
    let out = run(&["--sykli-exec", "lint"], dir.path());
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "error: TODO left in src/deep/bad.rs\n");

    std::fs::remove_file(dir.path().join("src/deep/bad.rs")).unwrap();
    let out = run(&["--sykli-exec", "lint"], dir.path());
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
}

#[test]
fn sykli_exec_of_an_unknown_task_names_it_and_the_known_ones() {
    let out = run(
        &["--sykli-exec", "nope"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: no native task named \"nope\" in this binary \
         (native tasks: build-manifest, lint, publish)\n"
    );
    // A shell task is not a native task.
    let out = run(
        &["--sykli-exec", "fmt"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_emitted_command_of_a_native_task_runs_it_through_cargo() {
    // What another engine does with the graph: run `command` with /bin/sh in the project.
    let graph: serde_json::Value = serde_json::from_str(include_str!("expected.json")).unwrap();
    let task = graph["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "lint")
        .unwrap();
    assert_eq!(task["native"], "lint");
    let command = task["command"].as_str().unwrap();
    let out = Command::new("/bin/sh")
        .args(["-c", command])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{command}` failed: {}",
        text(&out.stderr)
    );
}

/// A copy of the example's sources in a fresh project directory.
fn project_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    std::fs::create_dir(dir.path().join("src")).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            dir.path().join("src").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    dir
}

#[test]
fn in_process_run_calls_native_tasks_directly_with_the_task_env() {
    let dir = project_copy();
    let out = run(&["--filter", "build-manifest"], dir.path());
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    // `fmt` is a shell task, `lint` and `build-manifest` native ones called in-process.
    assert!(stdout.contains("start lint [native]"), "stdout: {stdout}");
    assert!(stdout.contains("start fmt [process]"), "stdout: {stdout}");
    assert!(
        stdout.ends_with("sykli: 3 passed, 0 failed, 0 skipped\n"),
        "stdout: {stdout}"
    );
    // `env = {"PROFILE": "release"}` reached the native function's context.
    let manifest = std::fs::read_to_string(dir.path().join("target/manifest.txt")).unwrap();
    assert_eq!(manifest, "crate: multi-module\nprofile: release\n");
}

#[test]
fn in_process_run_mixes_builder_and_declared_tasks() {
    let dir = project_copy();
    let out = run(&["--filter", "docs", "--verbose"], dir.path());
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("docs for crate: multi-module"),
        "stdout: {stdout}"
    );
    assert!(
        stdout.ends_with("sykli: 4 passed, 0 failed, 0 skipped\n"),
        "stdout: {stdout}"
    );
}

#[test]
fn in_process_run_reports_a_failing_native_task_and_blocks_its_dependents() {
    let dir = project_copy();
    std::fs::write(dir.path().join("src/extra.rs"), "// TODO later\n").unwrap();
    let out = run(&["--filter", "build-manifest"], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}");
    assert!(
        stdout.contains("TODO left in src/extra.rs"),
        "stdout: {stdout}"
    );
    assert!(
        stdout.contains("blocked build-manifest"),
        "stdout: {stdout}"
    );
    assert!(!dir.path().join("target/manifest.txt").exists());
}
