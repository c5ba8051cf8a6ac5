//! Reports of real runs of the real `sykli` binary: `--junit FILE` with the tests of a real
//! `cargo test`, a real `go test -json` and a TAP-producing script, validated against the
//! JUnit XML schema (`xmllint --schema`, Debian's libxml2-utils, installed by sykli.rs), and
//! the GitHub Actions annotations and job summary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{command, project, text};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::json;

/// The JUnit XML schema (see fixtures/junit/README.md).
fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit/junit.xsd")
}

/// Validates `file` against the schema with xmllint, panicking with its output otherwise.
fn assert_valid_junit(file: &Path) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema())
        .arg(file)
        .output()
        .expect("xmllint (Debian's libxml2-utils) must be installed: sykli.rs installs it");
    assert!(
        out.status.success(),
        "the JUnit file does not validate:\n{}",
        text(&out)
    );
}

/// One `<testcase>`: its suite, classname, name, result (`passed`, `failure`, `error`,
/// `skipped`) and the result's message.
#[derive(Debug, Clone, PartialEq)]
struct Case {
    suite: String,
    classname: String,
    name: String,
    result: String,
    message: String,
    body: String,
}

fn attr(e: &quick_xml::events::BytesStart, name: &str) -> String {
    e.try_get_attribute(name)
        .unwrap()
        .map(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .unwrap()
                .into_owned()
        })
        .unwrap_or_default()
}

/// Every testcase of a JUnit document, in document order.
fn cases(xml: &str) -> Vec<Case> {
    let mut reader = Reader::from_str(xml);
    let mut suite = String::new();
    let mut out: Vec<Case> = Vec::new();
    let mut in_result = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match AsRef::<str>::as_ref(&e.name()) {
                "testsuite" => suite = attr(&e, "name"),
                "testcase" => out.push(Case {
                    suite: suite.clone(),
                    classname: attr(&e, "classname"),
                    name: attr(&e, "name"),
                    result: "passed".into(),
                    message: String::new(),
                    body: String::new(),
                }),
                kind @ ("failure" | "error" | "skipped") => {
                    let c = out.last_mut().unwrap();
                    c.result = kind.to_string();
                    c.message = attr(&e, "message");
                    in_result = true;
                }
                _ => {}
            },
            Event::Text(t) if in_result => {
                let c = out.last_mut().unwrap();
                c.body
                    .push_str(&t.xml_content(quick_xml::XmlVersion::Implicit1_0));
            }
            Event::GeneralRef(r) if in_result => {
                let c = out.last_mut().unwrap();
                let name = String::from_utf8_lossy(AsRef::<[u8]>::as_ref(&*r)).into_owned();
                c.body.push_str(match name.as_str() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "?",
                });
            }
            Event::End(e)
                if matches!(
                    AsRef::<str>::as_ref(&e.name()),
                    "failure" | "error" | "skipped"
                ) =>
            {
                in_result = false;
            }
            _ => {}
        }
    }
    out
}

fn find<'a>(cases: &'a [Case], suite: &str, name: &str) -> &'a Case {
    cases
        .iter()
        .find(|c| c.suite == suite && c.name == name)
        .unwrap_or_else(|| panic!("no testcase {suite} / {name} in {cases:#?}"))
}

/// A real pipeline with real test runners, run once for every test of this file.
struct Fixture {
    dir: tempfile::TempDir,
    out: Output,
    junit: String,
    summary: String,
}

const CRATE_LIB: &str = r#"
pub fn add(a: i32, b: i32) -> i32 { a + b }

#[cfg(test)]
mod tests {
    #[test]
    fn adds() { assert_eq!(super::add(2, 2), 4); }
    #[test]
    fn fails() {
        println!("printed <before> & \u{7} the failure");
        assert_eq!(super::add(2, 2), 5, "math is hard");
    }
    #[test]
    #[ignore = "too slow"]
    fn slow() {}
}
"#;

const GO_TEST: &str = r#"package tiny

import "testing"

func TestAdd(t *testing.T) {}

func TestFails(t *testing.T) { t.Errorf("got %d, want %d", 4, 5) }

func TestSkipped(t *testing.T) { t.Skip("not today") }

func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
}
"#;

const TAP_SCRIPT: &str = r#"#!/bin/sh
echo 'TAP version 14'
echo '1..4'
echo 'ok 1 - parses'
echo 'not ok 2 - rejects <junk> & "quotes"'
echo '  ---'
echo '  message: "expected an error"'
echo '  ...'
echo 'ok 3 - network # SKIP offline'
printf 'not ok 4 - colours \033[31mred\033[0m \001\n'
exit 1
"#;

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = project(json!({"version": "1", "tasks": [
            {"name": "cargo", "command": "cargo test --offline --no-fail-fast 2>&1",
             "workdir": "crate", "tests": "cargo",
             "env": {"CARGO_TARGET_DIR": "target", "CARGO_TERM_COLOR": "never",
                     "RUST_BACKTRACE": "0"}},
            {"name": "go", "command": "go test -json ./...", "workdir": "gomod",
             "tests": "go-json", "env": {"GOFLAGS": "-mod=mod", "GOPROXY": "off"}},
            {"name": "tap", "command": "sh ./tap.sh", "tests": "tap"},
            {"name": "lint", "command": "echo 'all good'"},
            {"name": "deploy", "command": "true", "depends_on": ["tap"]}
        ]}));
        let root = dir.path();
        std::fs::create_dir_all(root.join("crate/src")).unwrap();
        std::fs::write(
            root.join("crate/Cargo.toml"),
            "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(root.join("crate/src/lib.rs"), CRATE_LIB).unwrap();
        std::fs::create_dir_all(root.join("gomod")).unwrap();
        std::fs::write(
            root.join("gomod/go.mod"),
            "module example.com/tiny\n\ngo 1.22\n",
        )
        .unwrap();
        std::fs::write(root.join("gomod/tiny_test.go"), GO_TEST).unwrap();
        std::fs::write(root.join("tap.sh"), TAP_SCRIPT).unwrap();
        let summary = root.join("summary.md");
        // The summary file already holds an earlier step's summary: sykli appends.
        std::fs::write(&summary, "earlier step\n").unwrap();
        let out = command(root, &["run", "--keep-going", "--junit", "report.xml"])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        let junit = std::fs::read_to_string(root.join("report.xml")).unwrap_or_default();
        let summary = std::fs::read_to_string(&summary).unwrap();
        Fixture {
            dir,
            out,
            junit,
            summary,
        }
    })
}

#[test]
fn junit_lists_every_task_and_every_test_of_cargo_go_and_tap_and_validates_against_the_schema() {
    let f = fixture();
    assert_eq!(f.out.status.code(), Some(1), "{}", text(&f.out));
    assert_valid_junit(&f.dir.path().join("report.xml"));
    let cases = cases(&f.junit);
    let run = cases[0].suite.clone();
    assert!(run.starts_with("sykli run "), "{run}");

    // A testcase per task, by status.
    let task = |name| find(&cases, &run, name);
    assert_eq!(task("cargo").result, "failure");
    assert_eq!(task("go").result, "failure");
    assert_eq!(task("tap").result, "failure");
    assert_eq!(task("tap").message, "exited with code 1");
    assert_eq!(task("lint").result, "passed");
    assert_eq!(task("deploy").result, "skipped");
    assert_eq!(task("deploy").message, "dependency `tap` failed");
    assert!(task("lint").classname == "sykli");

    // cargo test: each test under a suite named after the task, classname its test binary.
    let adds = find(&cases, "cargo", "tests::adds");
    assert_eq!(
        (adds.classname.as_str(), adds.result.as_str()),
        ("unittests src/lib.rs", "passed")
    );
    let fails = find(&cases, "cargo", "tests::fails");
    assert_eq!(fails.result, "failure");
    assert_eq!(
        fails.message,
        "assertion `left == right` failed: math is hard"
    );
    assert!(
        fails.body.contains("printed <before> & \\u{7} the failure"),
        "{fails:?}"
    );
    let slow = find(&cases, "cargo", "tests::slow");
    assert_eq!(
        (slow.result.as_str(), slow.message.as_str()),
        ("skipped", "too slow")
    );

    // go test -json: classname the package, subtests are tests.
    let go = |name| find(&cases, "go", name);
    assert_eq!(go("TestAdd").result, "passed");
    assert_eq!(go("TestAdd").classname, "example.com/tiny");
    assert_eq!(go("TestFails").result, "failure");
    assert!(
        go("TestFails").message.ends_with("got 4, want 5"),
        "{:?}",
        go("TestFails")
    );
    assert_eq!(go("TestSkipped").result, "skipped");
    assert_eq!(go("TestSub/ok").result, "passed");

    // TAP: directives, YAML messages, escaping of markup and control characters.
    let tap = |name| find(&cases, "tap", name);
    assert_eq!(tap("parses").result, "passed");
    let junk = tap("rejects <junk> & \"quotes\"");
    assert_eq!(
        (junk.result.as_str(), junk.message.as_str()),
        ("failure", "expected an error")
    );
    assert_eq!(tap("network").result, "skipped");
    assert_eq!(tap("colours red \\u{1}").result, "failure");
    assert_eq!(cases.iter().filter(|c| c.suite == "tap").count(), 4);
}

#[test]
fn github_actions_gets_error_annotations_and_a_job_summary() {
    let f = fixture();
    let stdout = String::from_utf8_lossy(&f.out.stdout);
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 3, "one per failed task:\n{stdout}");
    let tap = errors
        .iter()
        .find(|l| l.starts_with("::error title=sykli%3A task tap failed::"))
        .unwrap_or_else(|| panic!("no annotation for tap:\n{stdout}"));
    assert!(
        tap.contains("exited with code 1%0A2 failed test(s): rejects <junk> & \"quotes\", colours red \\u{1}%0A"),
        "{tap}"
    );
    assert!(
        tap.contains("%0Aok 1 - parses%0A"),
        "the tail of the log, escaped: {tap}"
    );
    assert!(
        !stdout.contains("task lint"),
        "no annotation for a passed task"
    );

    let s = &f.summary;
    assert!(
        s.starts_with("earlier step\n### sykli run `"),
        "appended:\n{s}"
    );
    assert!(s.contains("| Task | Status | Duration | Tests |"), "{s}");
    assert!(s.contains("| lint | ✅ passed |"), "{s}");
    assert!(s.contains("| deploy | ⏭️ blocked |  |  |"), "{s}");
    assert!(s.contains("| tap | ❌ failed |"), "{s}");
    assert!(
        s.contains("| 1 passed, 2 failed, 1 skipped |"),
        "tap's tests:\n{s}"
    );
    assert!(s.contains("- failed test `tests::fails`: assertion"), "{s}");
    assert!(s.contains("#### `go`: exited with code 1"), "{s}");
    assert!(s.contains("```text\n"), "{s}");
}

#[test]
fn a_junit_path_that_cannot_be_written_fails_before_anything_runs() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "mark", "command": "touch ran"}]}));
    let out = command(
        dir.path(),
        &["run", "--json", "--junit", "missing/dir/report.xml"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "write_failed");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("cannot write the JUnit file missing/dir/report.xml"),
        "{msg}"
    );
    assert!(!dir.path().join("ran").exists());
}

#[test]
fn an_unknown_test_format_is_a_validation_error_naming_the_task_and_value() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "unit", "command": "true", "tests": "xunit"}]}));
    let out = command(dir.path(), &["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(
            "task \"unit\" has unknown test output format \"xunit\" in `tests` (expected one of: cargo, go-json, tap)"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn under_json_the_annotations_go_to_stderr_and_stdout_stays_one_envelope() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "bad", "command": "echo 'oops: 100%'; exit 3"}]}));
    let summary = dir.path().join("summary.md");
    let out = command(dir.path(), &["run", "--json"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON envelope");
    assert_eq!(v["ok"], true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "::error title=sykli%3A task bad failed::exited with code 3%0A%0Aoops: 100%25\n"
        ),
        "{stderr}"
    );
    let s = std::fs::read_to_string(&summary).unwrap();
    assert!(s.contains("| bad | ❌ failed |"), "{s}");
}

#[test]
fn outside_github_actions_nothing_is_annotated() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "bad", "command": "exit 3"}]}));
    let out = command(dir.path(), &["run"])
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out).contains("::error"), "{}", text(&out));
}

#[test]
fn report_junit_rebuilds_the_file_of_a_recorded_run_from_its_logs() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "tap", "command": "printf '1..2\\nok 1 - a\\nnot ok 2 - b\\n'; exit 1",
         "tests": "tap", "retry": 1},
        {"name": "ok", "command": "echo fine"}]}));
    let out = command(dir.path(), &["run", "--keep-going", "--junit", "live.xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = command(dir.path(), &["report", "--junit", "later.xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_valid_junit(&dir.path().join("later.xml"));
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let (live, later) = (cases(&read("live.xml")), cases(&read("later.xml")));
    assert_eq!(
        live, later,
        "the same testcases, from the events or from the logs"
    );
    // The retried task's tests are its last attempt's, not both attempts'.
    assert_eq!(later.iter().filter(|c| c.suite == "tap").count(), 2);
    assert_eq!(find(&later, "tap", "b").result, "failure");

    let out = command(
        dir.path(),
        &["report", "--json", "--junit", "no/such/dir.xml"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "write_failed");
}

#[test]
fn a_run_that_cannot_be_carried_out_leaves_no_junit_file() {
    let dir = project(json!({"version": "1", "tasks": [
        {"name": "a", "command": "true"}]}));
    let out = command(
        dir.path(),
        &["run", "--filter", "nosuch", "--junit", "report.xml"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nosuch"), "{}", text(&out));
    assert!(!dir.path().join("report.xml").exists());
}
