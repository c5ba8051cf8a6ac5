//! Test reports: the individual tests a task ran, parsed from its output.
//!
//! A task declares the format its command prints (`"tests": "cargo" | "go-json" | "tap"` on
//! the wire, see `docs/reports.md`); after the run the reporters parse its output into
//! [`TestCase`]s, e.g. one JUnit `<testcase>` each. Parsing never fails: lines that are not
//! in the format (compiler progress, stray prints) are skipped, and what the format says
//! went wrong without naming a test (a Go package that did not build, a TAP plan that was
//! not met, `Bail out!`) becomes a failed case of its own, so it is never lost.

mod gojson;
mod libtest;
mod tap;

use std::fmt;
use std::str::FromStr;

/// The test output format a task's command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestFormat {
    /// libtest's human output, as `cargo test` prints it (`test foo ... ok`).
    Cargo,
    /// `go test -json` events (one JSON object a line).
    GoJson,
    /// The Test Anything Protocol, versions 12 to 14 (`ok 1 - name`).
    Tap,
}

impl TestFormat {
    /// Every format, in the order error messages list them.
    pub const ALL: [TestFormat; 3] = [TestFormat::Cargo, TestFormat::GoJson, TestFormat::Tap];

    /// The wire name: `cargo`, `go-json` or `tap`.
    pub fn as_str(self) -> &'static str {
        match self {
            TestFormat::Cargo => "cargo",
            TestFormat::GoJson => "go-json",
            TestFormat::Tap => "tap",
        }
    }

    /// The tests found in `lines`, the output of one attempt of a task, in the order they
    /// finished.
    pub fn parse<'a>(self, lines: impl IntoIterator<Item = &'a str>) -> Vec<TestCase> {
        match self {
            TestFormat::Cargo => libtest::parse(lines),
            TestFormat::GoJson => gojson::parse(lines),
            TestFormat::Tap => tap::parse(lines),
        }
    }
}

impl fmt::Display for TestFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `tests` value that names no known format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown test output format \"{value}\" (expected one of: cargo, go-json, tap)")]
pub struct UnknownTestFormat {
    /// The value given.
    pub value: String,
}

impl FromStr for TestFormat {
    type Err = UnknownTestFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TestFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownTestFormat {
                value: s.to_string(),
            })
    }
}

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestOutcome {
    /// It passed.
    Passed,
    /// It failed.
    Failed,
    /// It was not run (ignored, skipped, a TAP `TODO`).
    Skipped,
}

/// One test, as its runner reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// What the test belongs to, when the format says: the Go package, the cargo test binary
    /// (`unittests src/lib.rs`, `tests/api.rs`, `doctests`).
    pub group: Option<String>,
    /// The test's name as its runner prints it (`tests::parses`, `TestParse/empty`).
    pub name: String,
    /// How it ended.
    pub outcome: TestOutcome,
    /// Its run time in seconds, when the format gives one.
    pub seconds: Option<f64>,
    /// Why it failed or was skipped, in one line, when the format says.
    pub message: Option<String>,
    /// What it printed, when the format keeps that per test (libtest's captured output of
    /// failed tests, Go's output lines, TAP's YAML diagnostics).
    pub output: String,
}

impl TestCase {
    fn new(name: impl Into<String>, outcome: TestOutcome) -> Self {
        TestCase {
            group: None,
            name: name.into(),
            outcome,
            seconds: None,
            message: None,
            output: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lines near each format's syntax, mixed with arbitrary text.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            "(test |ok|not ok|---- |  ---|  \\.\\.\\.|1\\.\\.|Bail out!|\\{\"Action\":)?[ -~é\\x00\\x1b#]{0,30}",
            Just("test a ... FAILED".to_string()),
            Just("---- a stdout ----".to_string()),
            Just("thread 'a' panicked at x:1:1:".to_string()),
            Just("failures:".to_string()),
            Just("     Running tests/x.rs (t/x-1)".to_string()),
            Just(r#"{"Action":"fail","Package":"p","Test":"T"}"#.to_string()),
            Just(r#"{"Action":"fail","Package":"p","FailedBuild":"p"}"#.to_string()),
            Just(r#"{"Action":"output","Package":"p","Test":"T","Output":"x\n"}"#.to_string()),
        ]
    }

    proptest! {
        #[test]
        fn parsing_any_output_never_panics(lines in prop::collection::vec(line(), 0..40)) {
            for f in TestFormat::ALL {
                let cases = f.parse(lines.iter().map(String::as_str));
                for c in cases {
                    // Every failure libtest reports says why, at least "test failed".
                    if f == TestFormat::Cargo && c.outcome == TestOutcome::Failed {
                        prop_assert!(c.message.as_deref().is_some_and(|m| !m.is_empty()));
                    }
                }
            }
        }
    }

    #[test]
    fn formats_round_trip_and_unknown_ones_name_the_value() {
        for f in TestFormat::ALL {
            assert_eq!(f.as_str().parse::<TestFormat>(), Ok(f));
        }
        let e = "junit".parse::<TestFormat>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown test output format \"junit\" (expected one of: cargo, go-json, tap)"
        );
    }
}
