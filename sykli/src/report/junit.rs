//! JUnit XML (`sykli run --junit FILE`): the run as test results that CI systems show.
//!
//! One `<testsuites>` holding a `<testsuite>` for the run, with a `<testcase>` per task
//! (`<failure>`, `<error>` or `<skipped>` by its status, the tail of its output in
//! `<system-out>`), then for every task that declares a test output format and ran, a
//! `<testsuite>` named after the task with a `<testcase>` per test parsed from its output.
//! The shape is the JUnit XML its consumers accept (`sykli/tests/fixtures/junit/junit.xsd`
//! describes it). Text is escaped by quick-xml;
//! characters XML 1.0 cannot carry at all (most control characters) are written as `\u{1b}`,
//! after ANSI colour sequences are dropped.

use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use sykli_runtime::TaskStatus;
use sykli_runtime::testreport::{TestCase, TestOutcome};

use super::collect::{CollectedRun, CollectedTask, MAX_TEST_OUTPUT};

/// The JUnit XML document of `run`.
pub fn junit_xml(run: &CollectedRun) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write_document(&mut w, run);
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

/// Writes the JUnit XML document of `run` to `path`.
pub fn write_junit(path: &Path, run: &CollectedRun) -> io::Result<()> {
    std::fs::write(path, junit_xml(run))
}

/// Counts of one `<testsuite>`.
#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Counts {
    fn attrs(&self) -> [(&'static str, String); 4] {
        [
            ("tests", self.tests.to_string()),
            ("failures", self.failures.to_string()),
            ("errors", self.errors.to_string()),
            ("skipped", self.skipped.to_string()),
        ]
    }
}

type W = Writer<Vec<u8>>;

fn write_document(w: &mut W, run: &CollectedRun) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let suites: Vec<(&CollectedTask, Vec<TestCase>)> = run
        .tasks
        .iter()
        .filter(|t| t.format.is_some() && t.report.as_ref().is_some_and(|r| r.attempts > 0))
        .map(|t| (t, t.tests()))
        .collect();
    let mut total = task_counts(run);
    for (_, cases) in &suites {
        let c = case_counts(cases);
        total.tests += c.tests;
        total.failures += c.failures;
        total.errors += c.errors;
        total.skipped += c.skipped;
    }
    let run_ms = run.summary.as_ref().map_or_else(
        || {
            run.tasks
                .iter()
                .filter_map(|t| t.report.as_ref())
                .map(|r| r.duration_ms)
                .max()
                .unwrap_or(0)
        },
        |s| s.duration_ms,
    );
    let mut attrs: Vec<(&str, String)> = vec![("name", "sykli".to_string())];
    attrs.extend(total.attrs().into_iter().take(3));
    attrs.push(("time", seconds(run_ms)));
    w.create_element("testsuites")
        .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_str())))
        .write_inner_content(|w| {
            write_run_suite(w, run, run_ms)?;
            for (task, cases) in &suites {
                write_task_suite(w, run, task, cases)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn task_counts(run: &CollectedRun) -> Counts {
    let mut c = Counts::default();
    for t in &run.tasks {
        c.tests += 1;
        match t.report.as_ref().map(|r| r.status) {
            Some(TaskStatus::Failed) => c.failures += 1,
            Some(TaskStatus::Errored) | None => c.errors += 1,
            Some(TaskStatus::Blocked | TaskStatus::Skipped) => c.skipped += 1,
            Some(TaskStatus::Passed | TaskStatus::Cached) => {}
        }
    }
    c
}

fn case_counts(cases: &[TestCase]) -> Counts {
    let mut c = Counts::default();
    for t in cases {
        c.tests += 1;
        match t.outcome {
            TestOutcome::Failed => c.failures += 1,
            TestOutcome::Skipped => c.skipped += 1,
            TestOutcome::Passed => {}
        }
    }
    c
}

fn timestamp(ms: u64) -> String {
    // ISO 8601 without a zone suffix, as JUnit's `timestamp` is usually written.
    let t = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string();
    t.trim_end_matches('Z').to_string()
}

fn write_run_suite(w: &mut W, run: &CollectedRun, run_ms: u64) -> io::Result<()> {
    let counts = task_counts(run);
    let name = format!("sykli run {}", run.run_id);
    let mut attrs: Vec<(&str, String)> = vec![("name", attr(&name))];
    attrs.extend(counts.attrs());
    attrs.push(("time", seconds(run_ms)));
    attrs.push(("timestamp", timestamp(run.started_at_ms)));
    w.create_element("testsuite")
        .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_str())))
        .write_inner_content(|w| {
            for t in &run.tasks {
                write_task_case(w, t)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_task_case(w: &mut W, t: &CollectedTask) -> io::Result<()> {
    let name = attr(&t.name);
    let time = seconds(t.report.as_ref().map_or(0, |r| r.duration_ms));
    let el = w.create_element("testcase").with_attributes([
        ("classname", "sykli"),
        ("name", name.as_str()),
        ("time", time.as_str()),
    ]);
    let (status, message) = match &t.report {
        Some(r) => (Some(r.status), why(r)),
        None => (
            None,
            "the task did not finish (the run was interrupted)".to_string(),
        ),
    };
    let outcome = match status {
        Some(TaskStatus::Failed) => Some(("failure", "failed")),
        Some(TaskStatus::Errored) => Some(("error", "errored")),
        None => Some(("error", "unfinished")),
        Some(TaskStatus::Blocked) => Some(("skipped", "blocked")),
        Some(TaskStatus::Skipped) => Some(("skipped", "skipped")),
        Some(TaskStatus::Passed | TaskStatus::Cached) => None,
    };
    if outcome.is_none() && t.tail.is_empty() && status != Some(TaskStatus::Cached) {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| {
        if let Some((element, kind)) = outcome {
            let message = attr(&message);
            let el = w
                .create_element(element)
                .with_attributes([("message", message.as_str()), ("type", kind)]);
            if element == "skipped" {
                el.write_empty()?;
            } else {
                el.write_text_content(BytesText::new(&text(&message)))?;
            }
        }
        let mut out = String::new();
        if status == Some(TaskStatus::Cached) {
            out.push_str("restored from the cache\n");
        }
        if t.total_lines > t.tail.len() as u64 {
            out.push_str(&format!(
                "[... the last {} of {} lines; the whole log: sykli logs RUN {}]\n",
                t.tail.len(),
                t.total_lines,
                t.name
            ));
        }
        for l in &t.tail {
            out.push_str(l);
            out.push('\n');
        }
        if !out.is_empty() {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&text(&out)))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Why a task did not pass, in one line.
fn why(r: &sykli_runtime::TaskReport) -> String {
    match (&r.message, r.exit_code) {
        (Some(m), _) => m.clone(),
        (None, Some(code)) => format!("exit code {code}"),
        (None, None) => r.status.as_str().to_string(),
    }
}

fn write_task_suite(
    w: &mut W,
    run: &CollectedRun,
    task: &CollectedTask,
    cases: &[TestCase],
) -> io::Result<()> {
    let counts = case_counts(cases);
    let name = attr(&task.name);
    let ms = task.report.as_ref().map_or(0, |r| r.duration_ms);
    let mut attrs: Vec<(&str, String)> = vec![("name", name)];
    attrs.extend(counts.attrs());
    attrs.push(("time", seconds(ms)));
    attrs.push(("timestamp", timestamp(run.started_at_ms)));
    w.create_element("testsuite")
        .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_str())))
        .write_inner_content(|w| {
            for c in cases {
                write_test_case(w, task, c)?;
            }
            if task.test_output_cut {
                let note = format!(
                    "the output was cut after {} MiB; tests printed after that are not listed",
                    MAX_TEST_OUTPUT / (1024 * 1024)
                );
                w.create_element("system-out")
                    .write_text_content(BytesText::new(&note))?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_test_case(w: &mut W, task: &CollectedTask, c: &TestCase) -> io::Result<()> {
    let classname = attr(c.group.as_deref().unwrap_or(&task.name));
    let name = attr(&c.name);
    let mut attrs = vec![("classname", classname.as_str()), ("name", name.as_str())];
    let time = c.seconds.map(|s| format!("{s:.3}"));
    if let Some(t) = &time {
        attrs.push(("time", t));
    }
    let el = w.create_element("testcase").with_attributes(attrs);
    if c.outcome == TestOutcome::Passed && c.output.is_empty() {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| {
        let message = attr(c.message.as_deref().unwrap_or(""));
        match c.outcome {
            TestOutcome::Failed => {
                w.create_element("failure")
                    .with_attributes([("message", message.as_str()), ("type", "failed")])
                    .write_text_content(BytesText::new(&text(&c.output)))?;
            }
            TestOutcome::Skipped => {
                w.create_element("skipped")
                    .with_attribute(("message", message.as_str()))
                    .write_empty()?;
            }
            TestOutcome::Passed => {}
        }
        if c.outcome != TestOutcome::Failed && !c.output.is_empty() {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&text(&c.output)))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Seconds with millisecond precision, as JUnit's `time` is written.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `s` as XML 1.0 can carry it in text: ANSI colour sequences dropped, other characters XML
/// cannot hold written as `\u{..}`.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            // CSI: ESC [, parameter and intermediate bytes (0x20-0x3f), one final byte in
            // @..~. A sequence cut short ends at the first other character, which is kept.
            chars.next();
            while chars
                .next_if(|c| ('\u{20}'..='\u{3f}').contains(c))
                .is_some()
            {}
            chars.next_if(|c| ('@'..='~').contains(c));
            continue;
        }
        if xml_char(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    out
}

/// `s` as one attribute line: [`text`], with line breaks and tabs as spaces (a parser would
/// fold them anyway).
fn attr(s: &str) -> String {
    text(s).replace(['\n', '\r', '\t'], " ")
}

/// Whether XML 1.0 allows `c` (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sykli_runtime::TaskReport;
    use sykli_runtime::testreport::TestFormat;

    fn task(name: &str, status: TaskStatus, tail: &[&str]) -> CollectedTask {
        CollectedTask {
            name: name.into(),
            report: Some(TaskReport {
                task: name.into(),
                status,
                exit_code: (status == TaskStatus::Failed).then_some(3),
                duration_ms: 1234,
                attempts: u32::from(!matches!(status, TaskStatus::Blocked | TaskStatus::Skipped)),
                message: None,
            }),
            tail: tail.iter().map(|s| s.to_string()).collect(),
            total_lines: tail.len() as u64,
            ..Default::default()
        }
    }

    /// Regression (found by the round-trip property): an ESC [ cut short swallowed everything
    /// up to the next letter, newlines and following lines included.
    #[test]
    fn an_unterminated_colour_sequence_swallows_nothing_after_it() {
        assert_eq!(text("\u{1b}[\nnext line"), "\nnext line");
        assert_eq!(text("a\u{1b}[31"), "a");
        assert_eq!(text("\u{1b}[1;31mred\u{1b}[0m"), "red");
    }

    #[test]
    fn control_characters_and_ansi_colours_never_reach_the_xml() {
        assert_eq!(
            text("\u{1b}[1;31mred\u{1b}[0m a\u{0}b\u{7}"),
            "red a\\u{0}b\\u{7}"
        );
        assert_eq!(attr("a\nb\tc"), "a b c");
        let mut t = task(
            "x<&>\"'",
            TaskStatus::Failed,
            &["\u{1b}[31merror\u{1b}[0m: \u{8}bad <tag> & \u{fffe}"],
        );
        t.report.as_mut().unwrap().message = Some("a\u{1}b\nc".into());
        let run = CollectedRun {
            run_id: "r1".into(),
            tasks: vec![t],
            ..Default::default()
        };
        let xml = String::from_utf8(junit_xml(&run)).unwrap();
        assert!(
            xml.contains(r#"name="x&lt;&amp;&gt;&quot;&apos;""#),
            "{xml}"
        );
        assert!(
            xml.contains("error: \\u{8}bad &lt;tag&gt; &amp; \\u{fffe}"),
            "{xml}"
        );
        assert!(xml.contains(r#"message="a\u{1}b c""#), "{xml}");
        assert!(!xml.chars().any(|c| !xml_char(c)));
    }

    proptest::proptest! {
        /// Whatever a task is called and prints, the document is well-formed XML that reads
        /// back to the same name and output (as cleaned by [`text`]).
        #[test]
        fn any_name_and_output_round_trips(name in "[\\s\\S]{0,20}", line in "[\\s\\S]{0,40}") {
            let run = CollectedRun {
                run_id: "r".into(),
                tasks: vec![task(&name, TaskStatus::Failed, &[&line])],
                ..Default::default()
            };
            let xml = String::from_utf8(junit_xml(&run)).unwrap();
            proptest::prop_assert!(xml.chars().all(xml_char));
            let mut reader = quick_xml::Reader::from_str(&xml);
            let (mut names, mut out, mut in_out) = (Vec::new(), String::new(), false);
            loop {
                match reader.read_event().unwrap() {
                    quick_xml::events::Event::Eof => break,
                    quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                        if AsRef::<str>::as_ref(&e.name()) == "testcase" {
                            let a = e.try_get_attribute("name").unwrap().unwrap();
                            names.push(
                                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .unwrap()
                                    .into_owned(),
                            );
                        }
                        in_out = AsRef::<str>::as_ref(&e.name()) == "system-out";
                    }
                    quick_xml::events::Event::Text(t) if in_out => {
                        out.push_str(&t.xml_content(quick_xml::XmlVersion::Implicit1_0));
                    }
                    quick_xml::events::Event::GeneralRef(r) if in_out => {
                        let r = String::from_utf8_lossy(AsRef::<[u8]>::as_ref(&*r)).into_owned();
                        let decoded = match r.as_str() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "quot" => '"',
                            "apos" => '\'',
                            other => other
                                .strip_prefix('#')
                                .and_then(|n| n.parse::<u32>().ok())
                                .and_then(char::from_u32)
                                .unwrap_or_else(|| panic!("unexpected reference {other}")),
                        };
                        out.push(decoded);
                    }
                    quick_xml::events::Event::End(_) => in_out = false,
                    _ => {}
                }
            }
            proptest::prop_assert_eq!(names, vec![attr(&name)]);
            proptest::prop_assert_eq!(out, format!("{}\n", text(&line)));
        }
    }

    #[test]
    fn statuses_map_to_failure_error_and_skipped() {
        let mut unfinished = task("d", TaskStatus::Passed, &[]);
        unfinished.report = None;
        let mut tap = task("tap", TaskStatus::Failed, &[]);
        tap.format = Some(TestFormat::Tap);
        tap.test_output = vec!["1..2".into(), "ok 1 - a".into(), "not ok 2 - b".into()];
        let run = CollectedRun {
            run_id: "r".into(),
            tasks: vec![
                task("a", TaskStatus::Passed, &[]),
                task("b", TaskStatus::Failed, &["boom"]),
                task("c", TaskStatus::Blocked, &[]),
                unfinished,
                tap,
            ],
            ..Default::default()
        };
        let xml = String::from_utf8(junit_xml(&run)).unwrap();
        assert!(
            xml.contains(
                r#"<testsuites name="sykli" tests="7" failures="3" errors="1" time="1.234">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase classname="sykli" name="a" time="1.234"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="exit code 3" type="failed">exit code 3</failure>"#),
            "{xml}"
        );
        assert!(xml.contains("<system-out>boom\n</system-out>"), "{xml}");
        assert!(
            xml.contains(r#"<skipped message="blocked" type="blocked"/>"#),
            "{xml}"
        );
        assert!(xml.contains(r#"type="unfinished""#), "{xml}");
        assert!(
            xml.contains(r#"<testsuite name="tap" tests="2" failures="1" errors="0" skipped="0""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase classname="tap" name="a"/>"#),
            "{xml}"
        );
    }
}
