//! Shared text formats: durations, the detail line and the final line CI systems parse.

use std::time::Duration;

use sykli_runtime::events::RunSummary;

/// A short human duration: `0.004s`, `4.2s`, `1m 05s`, `1h 02m`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 0.1 {
        format!("{secs:.3}s")
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        let s = d.as_secs();
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let s = d.as_secs();
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// The detail line: `12 passed (3 cached), 1 failed, 0 errored, 2 blocked, 1 skipped in 4.2s`.
/// "passed" counts cached tasks; the parenthesis appears only when something was cached.
pub fn detail_line(s: &RunSummary) -> String {
    let passed = s.passed + s.cached;
    let cached = if s.cached > 0 {
        format!(" ({} cached)", s.cached)
    } else {
        String::new()
    };
    format!(
        "{passed} passed{cached}, {} failed, {} errored, {} blocked, {} skipped in {}",
        s.failed,
        s.errored,
        s.blocked,
        s.skipped,
        format_duration(Duration::from_millis(s.duration_ms))
    )
}

/// The very last line of a run, exactly `sykli: P passed, F failed, S skipped`, where P counts
/// cached tasks, F counts errored ones and S counts blocked ones.
pub fn final_line(s: &RunSummary) -> String {
    format!(
        "sykli: {} passed, {} failed, {} skipped",
        s.passed + s.cached,
        s.failed + s.errored,
        s.skipped + s.blocked
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> RunSummary {
        RunSummary {
            run_id: "r".into(),
            passed: 9,
            cached: 3,
            failed: 1,
            errored: 2,
            blocked: 2,
            skipped: 1,
            duration_ms: 4200,
            interrupted: false,
        }
    }

    #[test]
    fn detail_line_counts_cached_among_passed() {
        assert_eq!(
            detail_line(&summary()),
            "12 passed (3 cached), 1 failed, 2 errored, 2 blocked, 1 skipped in 4.2s"
        );
        let mut s = summary();
        s.cached = 0;
        assert!(detail_line(&s).starts_with("9 passed, 1 failed"));
    }

    #[test]
    fn final_line_folds_errored_into_failed_and_blocked_into_skipped() {
        assert_eq!(
            final_line(&summary()),
            "sykli: 12 passed, 3 failed, 3 skipped"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_millis(4)), "0.004s");
        assert_eq!(format_duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(format_duration(Duration::from_secs(65)), "1m 05s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h 02m");
    }
}
