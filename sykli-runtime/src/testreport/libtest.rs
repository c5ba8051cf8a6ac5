//! libtest's human output (`cargo test`): `test name ... ok|FAILED|ignored`, the captured
//! output of failed tests in `---- name stdout ----` sections, and cargo's `Running` and
//! `Doc-tests` lines naming the test binary each result belongs to.

use super::{TestCase, TestOutcome};

/// The tests in libtest output, in the order their results were printed.
pub(super) fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<TestCase> {
    let mut cases: Vec<TestCase> = Vec::new();
    let mut group: Option<String> = None;
    // The failed case whose captured output is being read, and its first index in `cases`
    // for the current binary (results of one binary come before its failure sections).
    let mut section: Option<usize> = None;
    let mut binary_start = 0;
    for line in lines {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            // `Running unittests src/lib.rs (target/debug/deps/tiny-0123)`.
            let desc = match rest.rfind(" (") {
                Some(i) if rest.ends_with(')') => &rest[..i],
                _ => rest,
            };
            group = Some(desc.to_string());
            binary_start = cases.len();
            section = None;
            continue;
        }
        if let Some(krate) = trimmed.strip_prefix("Doc-tests ") {
            group = Some(format!("doctests {krate}"));
            binary_start = cases.len();
            section = None;
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            section = cases[binary_start..]
                .iter()
                .rposition(|c| c.name == name && c.outcome == TestOutcome::Failed)
                .map(|i| i + binary_start);
            continue;
        }
        if let Some(i) = section {
            if line == "failures:" || line.starts_with("test result: ") {
                section = None;
            } else {
                let case = &mut cases[i];
                if case.message.is_none() && line.starts_with("thread '") {
                    // The panic message follows the `panicked at file:line:col:` line.
                    case.message = Some(String::new());
                } else if case.message.as_deref() == Some("") && !line.is_empty() {
                    case.message = Some(line.to_string());
                }
                case.output.push_str(line);
                case.output.push('\n');
                continue;
            }
        }
        if let Some(case) = result_line(line) {
            cases.push(TestCase {
                group: group.clone(),
                ..case
            });
        }
    }
    for c in &mut cases {
        if c.outcome == TestOutcome::Failed && c.message.as_deref().is_none_or(str::is_empty) {
            c.message = Some("test failed".to_string());
        }
        while c.output.ends_with("\n\n") {
            c.output.pop();
        }
    }
    cases
}

/// `test name ... ok`, `... FAILED`, `... ignored[, reason]`; `None` for anything else.
fn result_line(line: &str) -> Option<TestCase> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    let name = name.strip_suffix(" - should panic").unwrap_or(name);
    let (outcome, message) = match result {
        "ok" => (TestOutcome::Passed, None),
        "FAILED" => (TestOutcome::Failed, None),
        "ignored" => (TestOutcome::Skipped, Some("ignored".to_string())),
        r => match r.strip_prefix("ignored, ") {
            Some(why) => (TestOutcome::Skipped, Some(why.to_string())),
            None => return None,
        },
    };
    let mut case = TestCase::new(name, outcome);
    case.message = message;
    Some(case)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a real `cargo test --no-fail-fast` (stdout and stderr, Rust 1.95).
    const OUTPUT: &str = "   Compiling tiny v0.1.0 (/tmp/or-crate)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.03s
     Running unittests src/lib.rs (target/debug/deps/tiny-b8411d1b6389d6df)

running 5 tests
test tests::adds ... ok
test tests::fails ... FAILED
test tests::ignored ... ignored
test tests::ignored_why ... ignored, too slow
test tests::panics - should panic ... ok

failures:

---- tests::fails stdout ----
some <output> & stuff

thread 'tests::fails' (474) panicked at src/lib.rs:13:53:
assertion `left == right` failed: math is hard
  left: 4
 right: 5
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    tests::fails

test result: FAILED. 2 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s

error: test failed, to rerun pass `--lib`
     Running tests/api.rs (target/debug/deps/api-3554ebceee73e358)

running 1 test
test api_works ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests tiny

running 1 test
test src/lib.rs - add (line 3) ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.27s
";

    #[test]
    fn every_result_with_its_binary_and_the_failures_output() {
        let cases = parse(OUTPUT.lines());
        let got: Vec<_> = cases
            .iter()
            .map(|c| (c.group.as_deref().unwrap(), c.name.as_str(), c.outcome))
            .collect();
        use TestOutcome::*;
        assert_eq!(
            got,
            [
                ("unittests src/lib.rs", "tests::adds", Passed),
                ("unittests src/lib.rs", "tests::fails", Failed),
                ("unittests src/lib.rs", "tests::ignored", Skipped),
                ("unittests src/lib.rs", "tests::ignored_why", Skipped),
                ("unittests src/lib.rs", "tests::panics", Passed),
                ("tests/api.rs", "api_works", Passed),
                ("doctests tiny", "src/lib.rs - add (line 3)", Passed),
            ]
        );
        let failed = &cases[1];
        assert_eq!(
            failed.message.as_deref(),
            Some("assertion `left == right` failed: math is hard")
        );
        assert!(
            failed.output.starts_with("some <output> & stuff\n"),
            "{}",
            failed.output
        );
        assert!(
            failed.output.ends_with("display a backtrace\n"),
            "{:?}",
            failed.output
        );
        assert_eq!(cases[3].message.as_deref(), Some("too slow"));
        assert!(cases[0].output.is_empty());
    }

    #[test]
    fn a_failure_without_a_captured_section_still_says_it_failed() {
        let cases = parse(["test a ... FAILED", "test b ... bench: 10 ns/iter"]);
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].message.as_deref(), Some("test failed"));
        assert_eq!(cases[0].group, None);
    }
}
