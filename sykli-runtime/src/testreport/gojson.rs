//! `go test -json` (test2json) events: one JSON object a line with `Action` (`run`,
//! `output`, `pass`, `fail`, `skip`, `build-output`, `build-fail`, ...), `Package`, `Test`,
//! `Elapsed` and `Output`. Subtests (`TestA/sub`) are tests of their own.

use std::collections::HashMap;

use serde::Deserialize;

use super::{TestCase, TestOutcome};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GoEvent {
    #[serde(default)]
    action: String,
    #[serde(default)]
    package: String,
    #[serde(default)]
    test: Option<String>,
    #[serde(default)]
    elapsed: Option<f64>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    import_path: Option<String>,
    #[serde(default)]
    failed_build: Option<String>,
}

/// The tests in `go test -json` output, in the order they ended; lines that are not test2json
/// events are skipped.
pub(super) fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<TestCase> {
    let mut cases = Vec::new();
    // Tests still running, by (package, test): when each started (to list the ones that
    // never ended in order) and their output.
    let mut running: HashMap<(String, String), (usize, String)> = HashMap::new();
    let mut started = 0;
    let mut package_output: HashMap<String, String> = HashMap::new();
    let mut build_output: HashMap<String, String> = HashMap::new();
    let mut package_failed_tests: HashMap<String, usize> = HashMap::new();
    for line in lines {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let Ok(ev) = serde_json::from_str::<GoEvent>(line) else {
            continue;
        };
        match (ev.action.as_str(), &ev.test) {
            ("build-output", _) => {
                let path = ev.import_path.unwrap_or_default();
                build_output
                    .entry(path)
                    .or_default()
                    .push_str(ev.output.as_deref().unwrap_or(""));
            }
            ("run" | "output", Some(test)) => {
                let entry = running
                    .entry((ev.package.clone(), test.clone()))
                    .or_insert_with(|| {
                        started += 1;
                        (started, String::new())
                    });
                entry.1.push_str(ev.output.as_deref().unwrap_or(""));
            }
            ("output", None) => package_output
                .entry(ev.package.clone())
                .or_default()
                .push_str(ev.output.as_deref().unwrap_or("")),
            (action @ ("pass" | "fail" | "skip"), Some(test)) => {
                let key = (ev.package.clone(), test.clone());
                let output = running.remove(&key).map(|(_, o)| o).unwrap_or_default();
                let outcome = match action {
                    "pass" => TestOutcome::Passed,
                    "fail" => TestOutcome::Failed,
                    _ => TestOutcome::Skipped,
                };
                if outcome == TestOutcome::Failed {
                    *package_failed_tests.entry(ev.package.clone()).or_default() += 1;
                }
                let message = (outcome != TestOutcome::Passed)
                    .then(|| first_message(&output))
                    .flatten();
                cases.push(TestCase {
                    group: Some(ev.package.clone()),
                    name: test.clone(),
                    outcome,
                    seconds: ev.elapsed,
                    message,
                    output,
                });
            }
            ("fail", None) => {
                if let Some(build) = &ev.failed_build {
                    let output = build_output.remove(build).unwrap_or_default();
                    let mut case = TestCase::new("(build)", TestOutcome::Failed);
                    case.group = Some(ev.package.clone());
                    case.message = Some(format!("{build} failed to build"));
                    case.output = output;
                    cases.push(case);
                } else if package_failed_tests.get(&ev.package).copied().unwrap_or(0) == 0 {
                    // The package failed with no test failing: a panic in TestMain, a
                    // timeout, a test binary that exited early.
                    let mut case = TestCase::new("(package)", TestOutcome::Failed);
                    case.group = Some(ev.package.clone());
                    case.seconds = ev.elapsed;
                    case.message = Some(format!("package {} failed", ev.package));
                    case.output = package_output.remove(&ev.package).unwrap_or_default();
                    cases.push(case);
                }
            }
            _ => {}
        }
    }
    // Tests that never ended (the output stopped: killed, timed out).
    let mut unfinished: Vec<_> = running.into_iter().collect();
    unfinished.sort_by_key(|(_, (started, _))| *started);
    for (key, (_, output)) in unfinished {
        let mut case = TestCase::new(key.1, TestOutcome::Failed);
        case.group = Some(key.0);
        case.message = Some("the test did not finish".to_string());
        case.output = output;
        cases.push(case);
    }
    cases
}

/// The first line of a test's own output (not go's `=== RUN` / `--- FAIL` framing).
fn first_message(output: &str) -> Option<String> {
    output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("=== ") && !l.starts_with("--- "))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a real `go test -json ./...` (Go 1.26) with a package that does not build.
    const OUTPUT: &str = r##"{"ImportPath":"example.com/tiny/broken [example.com/tiny/broken.test]","Action":"build-output","Output":"# example.com/tiny/broken [example.com/tiny/broken.test]\n"}
{"ImportPath":"example.com/tiny/broken [example.com/tiny/broken.test]","Action":"build-output","Output":"broken/broken_test.go:5:28: undefined: undefined\n"}
{"ImportPath":"example.com/tiny/broken [example.com/tiny/broken.test]","Action":"build-fail"}
{"Time":"2026-11-30T12:43:12.6046741Z","Action":"start","Package":"example.com/tiny"}
{"Time":"2026-11-30T12:43:12.604963158Z","Action":"start","Package":"example.com/tiny/broken"}
{"Time":"2026-11-30T12:43:12.604978982Z","Action":"output","Package":"example.com/tiny/broken","Output":"FAIL\texample.com/tiny/broken [build failed]\n"}
{"Time":"2026-11-30T12:43:12.604989668Z","Action":"fail","Package":"example.com/tiny/broken","Elapsed":0,"FailedBuild":"example.com/tiny/broken [example.com/tiny/broken.test]"}
{"Time":"2026-11-30T12:43:12.609322866Z","Action":"run","Package":"example.com/tiny","Test":"TestAdd"}
{"Time":"2026-11-30T12:43:12.609350417Z","Action":"output","Package":"example.com/tiny","Test":"TestAdd","Output":"=== RUN   TestAdd\n"}
{"Time":"2026-11-30T12:43:12.609440581Z","Action":"output","Package":"example.com/tiny","Test":"TestAdd","Output":"--- PASS: TestAdd (0.00s)\n"}
{"Time":"2026-11-30T12:43:12.609484946Z","Action":"pass","Package":"example.com/tiny","Test":"TestAdd","Elapsed":0.25}
{"Time":"2026-11-30T12:43:12.609512087Z","Action":"run","Package":"example.com/tiny","Test":"TestFails"}
{"Time":"2026-11-30T12:43:12.609514771Z","Action":"output","Package":"example.com/tiny","Test":"TestFails","Output":"=== RUN   TestFails\n"}
{"Time":"2026-11-30T12:43:12.609739794Z","Action":"output","Package":"example.com/tiny","Test":"TestFails","Output":"    tiny_test.go:12: some \u003coutput\u003e \u0026 stuff\n"}
{"Time":"2026-11-30T12:43:12.609748247Z","Action":"output","Package":"example.com/tiny","Test":"TestFails","Output":"    tiny_test.go:13: got 4, want 5\n"}
{"Time":"2026-11-30T12:43:12.609753685Z","Action":"output","Package":"example.com/tiny","Test":"TestFails","Output":"--- FAIL: TestFails (0.00s)\n"}
{"Time":"2026-11-30T12:43:12.609756579Z","Action":"fail","Package":"example.com/tiny","Test":"TestFails","Elapsed":0}
{"Time":"2026-11-30T12:43:12.609759684Z","Action":"run","Package":"example.com/tiny","Test":"TestSkipped"}
{"Time":"2026-11-30T12:43:12.609762057Z","Action":"output","Package":"example.com/tiny","Test":"TestSkipped","Output":"=== RUN   TestSkipped\n"}
{"Time":"2026-11-30T12:43:12.609764871Z","Action":"output","Package":"example.com/tiny","Test":"TestSkipped","Output":"    tiny_test.go:17: not today\n"}
{"Time":"2026-11-30T12:43:12.609768346Z","Action":"output","Package":"example.com/tiny","Test":"TestSkipped","Output":"--- SKIP: TestSkipped (0.00s)\n"}
{"Time":"2026-11-30T12:43:12.60977082Z","Action":"skip","Package":"example.com/tiny","Test":"TestSkipped","Elapsed":0}
{"Time":"2026-11-30T12:43:12.609773424Z","Action":"run","Package":"example.com/tiny","Test":"TestSub"}
{"Time":"2026-11-30T12:43:12.609775637Z","Action":"output","Package":"example.com/tiny","Test":"TestSub","Output":"=== RUN   TestSub\n"}
{"Time":"2026-11-30T12:43:12.609778041Z","Action":"run","Package":"example.com/tiny","Test":"TestSub/ok"}
{"Time":"2026-11-30T12:43:12.609780174Z","Action":"output","Package":"example.com/tiny","Test":"TestSub/ok","Output":"=== RUN   TestSub/ok\n"}
{"Time":"2026-11-30T12:43:12.609782698Z","Action":"output","Package":"example.com/tiny","Test":"TestSub/ok","Output":"--- PASS: TestSub/ok (0.00s)\n"}
{"Time":"2026-11-30T12:43:12.609785091Z","Action":"pass","Package":"example.com/tiny","Test":"TestSub/ok","Elapsed":0}
{"Time":"2026-11-30T12:43:12.609787385Z","Action":"run","Package":"example.com/tiny","Test":"TestSub/bad"}
{"Time":"2026-11-30T12:43:12.609789368Z","Action":"output","Package":"example.com/tiny","Test":"TestSub/bad","Output":"=== RUN   TestSub/bad\n"}
{"Time":"2026-11-30T12:43:12.609791591Z","Action":"output","Package":"example.com/tiny","Test":"TestSub/bad","Output":"    tiny_test.go:22: sub failed\n"}
{"Time":"2026-11-30T12:43:12.609799473Z","Action":"output","Package":"example.com/tiny","Test":"TestSub/bad","Output":"--- FAIL: TestSub/bad (0.00s)\n"}
{"Time":"2026-11-30T12:43:12.609801806Z","Action":"fail","Package":"example.com/tiny","Test":"TestSub/bad","Elapsed":0}
{"Time":"2026-11-30T12:43:12.609805582Z","Action":"output","Package":"example.com/tiny","Test":"TestSub","Output":"--- FAIL: TestSub (0.00s)\n"}
{"Time":"2026-11-30T12:43:12.609808206Z","Action":"fail","Package":"example.com/tiny","Test":"TestSub","Elapsed":0}
{"Time":"2026-11-30T12:43:12.609810599Z","Action":"output","Package":"example.com/tiny","Output":"FAIL\n"}
{"Time":"2026-11-30T12:43:12.610226636Z","Action":"output","Package":"example.com/tiny","Output":"FAIL\texample.com/tiny\t0.005s\n"}
{"Time":"2026-11-30T12:43:12.610239014Z","Action":"fail","Package":"example.com/tiny","Elapsed":0.006}"##;

    #[test]
    fn tests_subtests_and_a_package_that_did_not_build() {
        let cases = parse(OUTPUT.lines());
        use TestOutcome::*;
        let got: Vec<_> = cases
            .iter()
            .map(|c| (c.group.as_deref().unwrap(), c.name.as_str(), c.outcome))
            .collect();
        assert_eq!(
            got,
            [
                ("example.com/tiny/broken", "(build)", Failed),
                ("example.com/tiny", "TestAdd", Passed),
                ("example.com/tiny", "TestFails", Failed),
                ("example.com/tiny", "TestSkipped", Skipped),
                ("example.com/tiny", "TestSub/ok", Passed),
                ("example.com/tiny", "TestSub/bad", Failed),
                ("example.com/tiny", "TestSub", Failed),
            ]
        );
        assert!(cases[0].output.contains("undefined: undefined"));
        assert_eq!(cases[1].seconds, Some(0.25));
        assert_eq!(
            cases[2].message.as_deref(),
            Some("tiny_test.go:12: some <output> & stuff")
        );
        assert!(cases[2].output.contains("got 4, want 5"));
        assert_eq!(
            cases[3].message.as_deref(),
            Some("tiny_test.go:17: not today")
        );
    }

    #[test]
    fn a_package_failing_without_a_failed_test_and_a_test_that_never_ended() {
        let lines = [
            "not json",
            r#"{"Action":"run","Package":"p","Test":"TestHang"}"#,
            r#"{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}"#,
            r#"{"Action":"output","Package":"p","Output":"panic: test timed out after 1s\n"}"#,
            r#"{"Action":"fail","Package":"p","Elapsed":1.5}"#,
        ];
        let cases = parse(lines);
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].name, "(package)");
        assert!(cases[0].output.contains("timed out"));
        assert_eq!(cases[1].name, "TestHang");
        assert_eq!(cases[1].message.as_deref(), Some("the test did not finish"));
    }
}
