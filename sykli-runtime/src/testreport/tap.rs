//! The Test Anything Protocol (TAP 12, 13 and 14): test points `ok 1 - name` /
//! `not ok 2 - name`, `# SKIP` and `# TODO` directives, YAML diagnostic blocks, the plan
//! `1..N`, `Bail out!`. TAP 14 subtests (indented) are summed up by their parent's test
//! point, which is what is reported.

use super::{TestCase, TestOutcome};

/// The test points in TAP output, plus a failed `(plan)` case when the plan is missing or
/// not met and a failed `(bail out)` case when the producer gave up.
pub(super) fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<TestCase> {
    let mut cases: Vec<TestCase> = Vec::new();
    let mut plan: Option<usize> = None;
    let mut bailed = false;
    // Inside a YAML block of the last test point.
    let mut yaml = false;
    for line in lines {
        if yaml {
            if line.trim_end() == "  ..." {
                yaml = false;
            } else if let Some(case) = cases.last_mut() {
                let text = line.strip_prefix("  ").unwrap_or(line);
                if case.message.is_none()
                    && let Some(m) = text.strip_prefix("message:")
                {
                    let m = m.trim().trim_matches(|c| c == '"' || c == '\'');
                    if !m.is_empty() {
                        case.message = Some(m.to_string());
                    }
                }
                case.output.push_str(text);
                case.output.push('\n');
            }
            continue;
        }
        if line.trim_end() == "  ---" && !cases.is_empty() {
            yaml = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("Bail out!") {
            bailed = true;
            let mut case = TestCase::new("(bail out)", TestOutcome::Failed);
            let why = rest.trim();
            case.message = Some(if why.is_empty() {
                "the producer bailed out".to_string()
            } else {
                why.to_string()
            });
            cases.push(case);
            break;
        }
        if let Some(n) = plan_line(line) {
            plan = Some(n);
            continue;
        }
        if let Some(case) = test_point(line, cases.len() + 1) {
            cases.push(case);
        }
    }
    if !bailed {
        let ran = cases.len();
        let problem = match plan {
            None => Some("no TAP plan (1..N) was printed".to_string()),
            Some(n) if n != ran => Some(format!("planned {n} tests, ran {ran}")),
            Some(_) => None,
        };
        if let Some(message) = problem {
            let mut case = TestCase::new("(plan)", TestOutcome::Failed);
            case.message = Some(message);
            cases.push(case);
        }
    }
    cases
}

/// `1..N` (possibly `1..0 # skip reason`).
fn plan_line(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("1..")?;
    let digits: &str = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    let after = rest[digits.len()..].trim_start();
    if digits.is_empty() || !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    digits.parse().ok()
}

/// `ok [n] [-] [description] [# SKIP|TODO reason]`; `next` numbers an unnumbered point.
fn test_point(line: &str, next: usize) -> Option<TestCase> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok") {
        (false, r)
    } else {
        (true, line.strip_prefix("ok")?)
    };
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim_start();
    let digits = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("");
    let number = digits.parse::<usize>().unwrap_or(next);
    let rest = rest[digits.len()..].trim_start();
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    let (description, directive) = split_directive(rest);
    let description = description.trim().replace("\\#", "#");
    let name = if description.is_empty() {
        format!("test {number}")
    } else {
        description
    };
    let directive = directive.map(str::trim);
    let lower = directive.map(str::to_ascii_lowercase);
    let (outcome, message) = match lower.as_deref() {
        Some(d) if d.starts_with("skip") => (TestOutcome::Skipped, directive),
        Some(d) if d.starts_with("todo") => (TestOutcome::Skipped, directive),
        _ if ok => (TestOutcome::Passed, None),
        _ => (TestOutcome::Failed, None),
    };
    let mut case = TestCase::new(name, outcome);
    case.message = message.map(str::to_string);
    Some(case)
}

/// The description and the directive after the first unescaped `#`.
fn split_directive(s: &str) -> (&str, Option<&str>) {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1] != b'\\') {
            return (&s[..i], Some(&s[i + 1..]));
        }
    }
    (s, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TestOutcome::*;

    fn summary(cases: &[TestCase]) -> Vec<(&str, TestOutcome, Option<&str>)> {
        cases
            .iter()
            .map(|c| (c.name.as_str(), c.outcome, c.message.as_deref()))
            .collect()
    }

    #[test]
    fn tap14_points_directives_yaml_and_subtests() {
        let out = "TAP version 14
1..5
ok 1 - parses <empty> & input
not ok 2 - rejects junk
  ---
  message: \"expected an error\"
  severity: fail
  ...
ok 3 # SKIP no network
not ok 4 - later # TODO not written
# Subtest: nested
    1..1
    not ok 1 - inner
not ok 5 - nested
stray stderr line
";
        let cases = parse(out.lines());
        assert_eq!(
            summary(&cases),
            [
                ("parses <empty> & input", Passed, None),
                ("rejects junk", Failed, Some("expected an error")),
                ("test 3", Skipped, Some("SKIP no network")),
                ("later", Skipped, Some("TODO not written")),
                ("nested", Failed, None),
            ]
        );
        assert!(cases[1].output.contains("severity: fail"));
    }

    #[test]
    fn an_unmet_or_missing_plan_and_a_bail_out_are_failures() {
        let cases = parse(["1..3", "ok 1", "ok 2"]);
        assert_eq!(
            summary(&cases)[2],
            ("(plan)", Failed, Some("planned 3 tests, ran 2"))
        );
        let cases = parse(["ok - a"]);
        assert_eq!(
            summary(&cases)[1],
            ("(plan)", Failed, Some("no TAP plan (1..N) was printed"))
        );
        let cases = parse(["1..2", "ok 1", "Bail out! database down", "ok 2"]);
        assert_eq!(
            summary(&cases),
            [
                ("test 1", Passed, None),
                ("(bail out)", Failed, Some("database down"))
            ]
        );
        assert_eq!(plan_line("1..0 # skip all"), Some(0));
        assert!(test_point("okay then", 1).is_none());
    }
}
