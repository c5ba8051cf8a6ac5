//! Where run state lives inside the state directory.

use std::path::{Path, PathBuf};

/// `<state_dir>/runs`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// `<state_dir>/runs/<run_id>.json`.
pub fn record_path(state_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir(state_dir).join(format!("{}.json", log_file_stem(run_id)))
}

/// `<state_dir>/logs/<run_id>`.
pub fn logs_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("logs").join(log_file_stem(run_id))
}

/// `<state_dir>/logs/<run_id>/<task>.log`, the task name made safe by [`log_file_name`].
pub fn log_path(state_dir: &Path, run_id: &str, task: &str) -> PathBuf {
    logs_dir(state_dir, run_id).join(log_file_name(task))
}

/// The log file name of a task: the name itself when it is a plain file name, otherwise
/// every byte outside `[A-Za-z0-9._=,+@\[\]-]` (and a leading dot) written as `%XX`, so
/// different names never share a file (`test[os=linux]` stays readable, `a/b` becomes
/// `a%2Fb`).
pub fn log_file_name(task: &str) -> String {
    format!("{}.log", log_file_stem(task))
}

fn log_file_stem(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'_' | b'-' | b'=' | b',' | b'+' | b'@' | b'[' | b']')
            || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_are_safe_and_distinct() {
        assert_eq!(log_file_name("build"), "build.log");
        assert_eq!(log_file_name("test[os=linux]"), "test[os=linux].log");
        assert_eq!(log_file_name("a/b"), "a%2Fb.log");
        assert_eq!(log_file_name("a%2Fb"), "a%252Fb.log");
        assert_eq!(log_file_name(".."), "%2E..log");
        assert_eq!(log_file_name("a b"), "a%20b.log");
        assert_eq!(
            log_path(Path::new("/p/.sykli"), "r1", "x"),
            Path::new("/p/.sykli/logs/r1/x.log")
        );
    }
}
