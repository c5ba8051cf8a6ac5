//! Task logs: the [`OutputSink`] the scheduler hands to executors.
//!
//! Each chunk is masked by a [`StreamRedactor`], appended in full to
//! `<state_dir>/logs/<run_id>/<task>.log` (opened on the first byte, so silent tasks cost no
//! file), and split into lines that become [`Event::TaskOutput`]. Memory is bounded: a line
//! longer than [`MAX_EVENT_LINE`] is cut in the event (never in the log), and the redactor holds
//! back at most one secret's length.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::events::{Event, EventSink};
use crate::exec::{OutputSink, OutputStream};
use crate::redact::{SecretSet, StreamRedactor};

/// The longest line, in bytes, carried by one output event; the log keeps everything.
pub const MAX_EVENT_LINE: usize = 16 * 1024;

/// The log file name for a task: the name with anything outside `[A-Za-z0-9._-]` replaced by
/// `_`, plus a short hash when that changed it (so two names never share a file).
pub fn log_file_name(task: &str) -> String {
    let clean: String = task
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    if clean == task && !clean.is_empty() {
        format!("{clean}.log")
    } else {
        let hash = blake3::hash(task.as_bytes()).to_hex();
        format!("{clean}-{}.log", &hash[..8])
    }
}

/// The masked, logged, line-splitting output of one task (all its attempts).
pub struct TaskLog {
    task: String,
    path: PathBuf,
    events: Arc<dyn EventSink>,
    inner: Mutex<Inner>,
}

struct Inner {
    file: Option<BufWriter<File>>,
    error: Option<io::Error>,
    attempt: u32,
    header_pending: bool,
    streams: [StreamState; 2],
    scratch: Vec<u8>,
}

struct StreamState {
    redactor: StreamRedactor,
    line: Vec<u8>,
    dropped: usize,
}

impl TaskLog {
    /// A log for `task` at `path` (created on the first output), masking `secrets` and
    /// forwarding lines to `events`.
    pub fn new(
        task: impl Into<String>,
        path: PathBuf,
        secrets: Arc<SecretSet>,
        events: Arc<dyn EventSink>,
    ) -> Self {
        let stream = || StreamState {
            redactor: StreamRedactor::new(secrets.clone()),
            line: Vec::new(),
            dropped: 0,
        };
        TaskLog {
            task: task.into(),
            path,
            events,
            inner: Mutex::new(Inner {
                file: None,
                error: None,
                attempt: 1,
                header_pending: false,
                streams: [stream(), stream()],
                scratch: Vec::new(),
            }),
        }
    }

    /// Where the log is (or would be) written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts attempt `n`: flushes the previous attempt and puts a header line in the log
    /// before the new attempt's first output.
    pub fn begin_attempt(&self, n: u32) {
        let mut inner = self.lock();
        self.flush_streams(&mut inner);
        inner.attempt = n;
        inner.header_pending = n > 1;
    }

    /// Flushes what is buffered to the log file, keeping any earlier write error for
    /// [`TaskLog::finish`].
    pub fn flush(&self) -> io::Result<()> {
        let mut inner = self.lock();
        self.flush_streams(&mut inner);
        match inner.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    /// Flushes everything. Returns the log's path if anything was written, or the first error
    /// met while writing it.
    pub fn finish(&self) -> io::Result<Option<PathBuf>> {
        let mut inner = self.lock();
        self.flush_streams(&mut inner);
        if let Some(e) = inner.error.take() {
            return Err(e);
        }
        match inner.file.as_mut() {
            Some(f) => {
                f.flush()?;
                Ok(Some(self.path.clone()))
            }
            None => Ok(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain buffers behind; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flush_streams(&self, inner: &mut Inner) {
        for (i, stream) in [OutputStream::Stdout, OutputStream::Stderr]
            .into_iter()
            .enumerate()
        {
            let mut out = std::mem::take(&mut inner.scratch);
            out.clear();
            inner.streams[i].redactor.finish(&mut out);
            self.append(inner, i, stream, &out);
            let st = &mut inner.streams[i];
            if !st.line.is_empty() || st.dropped > 0 {
                let line = std::mem::take(&mut st.line);
                let dropped = std::mem::take(&mut st.dropped);
                self.emit_line(stream, &line, dropped);
                self.write_file(inner, b"\n");
            }
            inner.scratch = out;
        }
    }

    /// Appends masked bytes of one stream: to the file in full, and as line events.
    fn append(&self, inner: &mut Inner, idx: usize, stream: OutputStream, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.write_file(inner, bytes);
        let st = &mut inner.streams[idx];
        let mut rest = bytes;
        while let Some(nl) = memchr(b'\n', rest) {
            let part = &rest[..nl];
            if st.line.is_empty() && st.dropped == 0 && part.len() <= MAX_EVENT_LINE {
                self.emit_line(stream, part, 0);
            } else {
                push_capped(&mut st.line, &mut st.dropped, part);
                let line = std::mem::take(&mut st.line);
                let dropped = std::mem::take(&mut st.dropped);
                self.emit_line(stream, &line, dropped);
            }
            rest = &rest[nl + 1..];
        }
        push_capped(&mut st.line, &mut st.dropped, rest);
    }

    fn emit_line(&self, stream: OutputStream, line: &[u8], dropped: usize) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut text = String::from_utf8_lossy(line).into_owned();
        if dropped > 0 {
            text.push_str(&format!(" [... {dropped} more bytes in the log]"));
        }
        self.events.emit(&Event::TaskOutput {
            task: self.task.clone(),
            stream,
            line: text,
        });
    }

    fn write_file(&self, inner: &mut Inner, bytes: &[u8]) {
        if inner.error.is_some() {
            return;
        }
        if inner.file.is_none() {
            match open_log(&self.path) {
                Ok(f) => inner.file = Some(f),
                Err(e) => {
                    inner.error = Some(io::Error::new(
                        e.kind(),
                        format!("failed to create log {}: {e}", self.path.display()),
                    ));
                    return;
                }
            }
        }
        let header = if inner.header_pending {
            inner.header_pending = false;
            Some(format!("\n=== sykli: attempt {} ===\n", inner.attempt))
        } else {
            None
        };
        let Some(f) = inner.file.as_mut() else { return };
        let res = match header {
            Some(h) => f.write_all(h.as_bytes()).and_then(|()| f.write_all(bytes)),
            None => f.write_all(bytes),
        };
        if let Err(e) = res {
            inner.error = Some(io::Error::new(
                e.kind(),
                format!("failed to write log {}: {e}", self.path.display()),
            ));
        }
    }
}

impl OutputSink for TaskLog {
    fn processes_started(&self, pgid: u32) {
        crate::observe::resources::watch_group(self.task.clone(), pgid, self.events.clone());
    }

    fn resource_sample(&self, cpu_percent: f64, rss_bytes: u64) {
        self.events.emit(&Event::TaskResources {
            task: self.task.clone(),
            cpu_percent,
            rss_bytes,
        });
    }

    fn write(&self, stream: OutputStream, bytes: &[u8]) {
        let idx = match stream {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        };
        let mut inner = self.lock();
        let mut out = std::mem::take(&mut inner.scratch);
        out.clear();
        inner.streams[idx].redactor.push(bytes, &mut out);
        self.append(&mut inner, idx, stream, &out);
        if out.capacity() > 1 << 20 {
            out = Vec::new();
        }
        inner.scratch = out;
    }
}

fn open_log(path: &Path) -> io::Result<BufWriter<File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(BufWriter::with_capacity(64 * 1024, File::create(path)?))
}

fn push_capped(line: &mut Vec<u8>, dropped: &mut usize, part: &[u8]) {
    let room = MAX_EVENT_LINE.saturating_sub(line.len());
    let take = room.min(part.len());
    line.extend_from_slice(&part[..take]);
    *dropped += part.len() - take;
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Event>>);
    impl EventSink for Collect {
        fn emit(&self, e: &Event) {
            self.0.lock().unwrap().push(e.clone());
        }
    }

    fn lines(c: &Collect) -> Vec<String> {
        c.0.lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::TaskOutput { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn splits_lines_masks_and_writes_the_full_log() {
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Collect::default());
        let path = dir.path().join("logs/r/t.log");
        let log = TaskLog::new(
            "t",
            path.clone(),
            Arc::new(SecretSet::new(["s3cret"])),
            events.clone(),
        );
        log.write(OutputStream::Stdout, b"hello s3c");
        log.write(OutputStream::Stdout, b"ret\nsecond");
        let long = vec![b'x'; MAX_EVENT_LINE + 10];
        log.write(OutputStream::Stderr, &long);
        log.write(OutputStream::Stderr, b"\n");
        log.begin_attempt(2);
        log.write(OutputStream::Stdout, b"again\n");
        assert_eq!(log.finish().unwrap(), Some(path.clone()));
        let got = lines(&events);
        assert_eq!(got[0], "hello ***");
        assert_eq!(
            got[1],
            format!(
                "{} [... 10 more bytes in the log]",
                "x".repeat(MAX_EVENT_LINE)
            )
        );
        assert_eq!(got[2], "second");
        assert_eq!(got[3], "again");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"));
        assert!(text.contains(&"x".repeat(MAX_EVENT_LINE + 10)));
        assert!(text.contains("=== sykli: attempt 2 ===\nagain\n"));
    }

    #[test]
    fn silent_tasks_create_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let log = TaskLog::new(
            "t",
            path.clone(),
            Arc::default(),
            Arc::new(Collect::default()),
        );
        assert_eq!(log.finish().unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(log_file_name("build"), "build.log");
        let odd = log_file_name("../x y");
        assert!(
            odd.starts_with("_x_y-") || odd.starts_with("__x_y-"),
            "{odd}"
        );
        assert!(!odd.contains('/'));
        assert_ne!(log_file_name("a/b"), log_file_name("a_b"));
    }
}
