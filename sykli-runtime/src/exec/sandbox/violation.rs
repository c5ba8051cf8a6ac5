//! Sandbox violations: which undeclared path a failed task tripped over.
//!
//! The sandbox does not trace system calls. When a task fails, its stderr (the last
//! [`TAIL`] bytes) is scanned for the paths the usual tools name in their errors ("No such
//! file or directory", "Read-only file system", "Permission denied"). A path the task could
//! not find that exists on the host is an undeclared input; a path it could not write that
//! is not an output is a write outside the outputs. Each becomes one line of advice. A
//! failure that names no path gets no advice: the report never guesses.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::exec::{OutputSink, OutputStream};

/// How much of the task's stderr is kept for the scan.
pub const TAIL: usize = 64 * 1024;

/// Forwards output to the task's sink, keeping the tail of stderr.
pub struct TailSink {
    inner: Arc<dyn OutputSink>,
    tail: Mutex<Vec<u8>>,
}

impl TailSink {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn OutputSink>) -> Self {
        TailSink {
            inner,
            tail: Mutex::new(Vec::new()),
        }
    }

    /// The kept stderr, lossily decoded.
    pub fn stderr(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&tail).into_owned()
    }
}

impl OutputSink for TailSink {
    fn write(&self, stream: OutputStream, bytes: &[u8]) {
        if stream == OutputStream::Stderr {
            let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
            tail.extend_from_slice(bytes);
            if tail.len() > TAIL {
                let cut = tail.len() - TAIL;
                tail.drain(..cut);
            }
        }
        self.inner.write(stream, bytes);
    }

    fn processes_started(&self, pgid: u32) {
        self.inner.processes_started(pgid);
    }

    fn resource_sample(&self, cpu_percent: f64, rss_bytes: u64) {
        self.inner.resource_sample(cpu_percent, rss_bytes);
    }
}

/// What a failed task tripped over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// It could not find `path`, which exists on the host: not a declared input.
    UndeclaredInput(PathBuf),
    /// It could not write `path`: outside its outputs.
    WriteOutsideOutputs(PathBuf),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::UndeclaredInput(p) => write!(
                f,
                "sykli: sandbox violation: the task could not read {}: the sandbox hides \
                 undeclared inputs; declare it in `inputs` (or its directory in the sandbox's \
                 `paths`)",
                p.display()
            ),
            Violation::WriteOutsideOutputs(p) => write!(
                f,
                "sykli: sandbox violation: the task could not write {}: only its outputs \
                 and /tmp are writable in the sandbox; declare it in `outputs`",
                p.display()
            ),
        }
    }
}

const NOT_FOUND: &str = "No such file or directory";
/// What the sandbox's read-only mounts answer a write with (EROFS).
const WRITE_ERROR: &str = "Read-only file system";

/// The violations `stderr` names. `workdir` resolves relative paths; `visible` says whether
/// a host path was visible in the sandbox (declared), `exists` whether it exists on the host.
pub fn scan(
    stderr: &str,
    workdir: &Path,
    visible: impl Fn(&Path) -> bool,
    exists: impl Fn(&Path) -> bool,
) -> Vec<Violation> {
    let mut found = Vec::new();
    for line in stderr.lines() {
        // The path an error is about comes right before the error text.
        let (write, before) = if let Some(i) = line.find(NOT_FOUND) {
            (false, &line[..i])
        } else if let Some(i) = line.find(WRITE_ERROR) {
            (true, &line[..i])
        } else {
            continue;
        };
        if let Some(candidate) = paths_in(before).pop() {
            let path = if candidate.is_absolute() {
                candidate
            } else {
                workdir.join(candidate)
            };
            let v = if write {
                Violation::WriteOutsideOutputs(path)
            } else {
                if visible(&path) || !exists(&path) {
                    continue;
                }
                Violation::UndeclaredInput(path)
            };
            if !found.contains(&v) {
                found.push(v);
            }
        }
    }
    found
}

/// Path-like words of an error line: `cat: /x: No such ...`, `can't open '/x'`,
/// `cannot create x.txt: Read-only ...`, `"/x"`.
fn paths_in(line: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for raw in line.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')') {
        let w = raw
            .trim_matches(|c| matches!(c, '\'' | '"' | '`' | '‘' | '’'))
            .trim_end_matches(':')
            .trim_matches(|c| matches!(c, '\'' | '"' | '`' | '‘' | '’'));
        if w.is_empty() || w.contains("://") {
            continue;
        }
        let looks_like_path = w.starts_with('/')
            || w.starts_with("./")
            || w.starts_with("../")
            || (w.contains('/') && !w.ends_with('/'))
            || (w.contains('.') && w.chars().all(|c| c.is_alphanumeric() || "._-".contains(c)));
        if looks_like_path && !w.chars().all(|c| c.is_ascii_digit() || c == '.') {
            out.push(PathBuf::from(w));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_host_file_is_an_undeclared_input_and_a_write_error_names_its_path() {
        let stderr = "cat: /home/u/secret.txt: No such file or directory\n\
                      sh: 1: cannot create out/x.txt: Read-only file system\n\
                      cat: /nowhere: No such file or directory\n";
        let v = scan(
            stderr,
            Path::new("/p"),
            |_| false,
            |p| p == Path::new("/home/u/secret.txt"),
        );
        assert_eq!(
            v,
            [
                Violation::UndeclaredInput("/home/u/secret.txt".into()),
                Violation::WriteOutsideOutputs("/p/out/x.txt".into()),
            ]
        );
        assert!(v[0].to_string().contains("declare it in `inputs`"));
    }

    #[test]
    fn a_failure_naming_no_path_gives_no_advice() {
        let v = scan(
            "error: tests failed\n",
            Path::new("/p"),
            |_| false,
            |_| true,
        );
        assert!(v.is_empty());
    }
}
