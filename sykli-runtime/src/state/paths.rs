//! Where run state lives inside the state directory.

use std::path::{Path, PathBuf};

/// `<state_dir>/runs`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// `<state_dir>/runs/<run_id>.json`.
pub fn record_path(state_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir(state_dir).join(format!("{run_id}.json"))
}

/// `<state_dir>/logs/<run_id>`, where the scheduler writes the run's task logs.
pub fn logs_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("logs").join(run_id)
}

/// `<state_dir>/logs/<run_id>/<file>`, the file name from [`crate::logs::log_file_name`].
pub fn log_path(state_dir: &Path, run_id: &str, task: &str) -> PathBuf {
    logs_dir(state_dir, run_id).join(crate::logs::log_file_name(task))
}

/// Whether `run_id` can name a file in the state directory (no separators, no leading dot).
pub(crate) fn is_plain_id(run_id: &str) -> bool {
    !run_id.is_empty() && !run_id.starts_with('.') && !run_id.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            log_path(Path::new("/p/.sykli"), "r1", "x"),
            Path::new("/p/.sykli/logs/r1/x.log")
        );
        assert_eq!(
            record_path(Path::new("/p/.sykli"), "r1"),
            Path::new("/p/.sykli/runs/r1.json")
        );
        assert!(is_plain_id("20261122T201711.123Z-3f9a2c"));
        assert!(!is_plain_id("../x"));
        assert!(!is_plain_id(".."));
    }
}
