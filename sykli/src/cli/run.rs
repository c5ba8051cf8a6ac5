//! `sykli run`: load, validate and run the pipeline with the terminal or JSON reporter.

use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

/// How to run a pipeline: the flags of `sykli run`, also accepted by pipeline binaries
/// (`sykli::run`) started without `--emit`.
#[derive(Debug, Clone, Default, Args)]
pub struct RunOptions {
    /// Run only this task and what it depends on (repeatable).
    #[arg(long = "filter", value_name = "NAME")]
    pub filter: Vec<String>,
    /// Tasks run at once [default: the number of CPUs].
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
    /// Keep starting independent tasks after a failure.
    #[arg(long)]
    pub keep_going: bool,
    /// Default time limit of a task that sets none (`30s`, `5m`, `0` for none).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Timeout>,
    /// Print one JSON document on stdout instead of the terminal view.
    #[arg(long)]
    pub json: bool,
    /// Run every task even when a cached result exists.
    #[arg(long)]
    pub no_cache: bool,
    /// Show every task's output as it is printed.
    #[arg(short, long)]
    pub verbose: bool,
}

/// A `--timeout` value: a humantime duration, or `0` for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Option<Duration>);

impl FromStr for Timeout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(Timeout(None));
        }
        match humantime::parse_duration(s) {
            Ok(d) if d.is_zero() => Ok(Timeout(None)),
            Ok(d) => Ok(Timeout(Some(d))),
            Err(e) => Err(format!(
                "invalid duration \"{s}\": {e} (examples: 30s, 5m, 1h30m, 0 for no limit)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!("0".parse(), Ok(Timeout(None)));
        assert_eq!("30s".parse(), Ok(Timeout(Some(Duration::from_secs(30)))));
        assert_eq!("5m".parse(), Ok(Timeout(Some(Duration::from_secs(300)))));
        let e = "5 parsecs".parse::<Timeout>().unwrap_err();
        assert!(e.contains("invalid duration \"5 parsecs\""), "{e}");
    }
}
