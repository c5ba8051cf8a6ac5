//! `sykli observe ADDR ARGS` run in the background: its stdout lines on a channel, its stderr
//! collected, every wait bounded by [`DEADLINE`]; killed when dropped.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::command;
use super::runs::DEADLINE;

/// A running `sykli observe`.
pub struct Observer {
    /// The process (tests kill it to cut an observer off).
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Observer {
    /// Starts `sykli observe ADDR ARGS` in `dir` (without `SYKLI_TOKEN` from the test's own
    /// environment).
    pub fn start(dir: &Path, addr: &str, args: &[&str]) -> Observer {
        let mut child = command(dir, &["observe", addr])
            .args(args)
            .env_remove("SYKLI_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Observer {
            child,
            lines: rx,
            stderr,
        }
    }

    /// The next line, within the deadline.
    pub fn next(&self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no line from sykli observe; stderr: {}", self.stderr()))
    }

    /// Reads lines until `pred` holds for one (within the deadline); returns it.
    pub fn until(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "sykli observe never showed {what}; stderr: {}",
                    self.stderr()
                )
            });
            if pred(&line) {
                return line;
            }
        }
    }

    /// Every remaining line, its exit code and its stderr, once it exits by itself (killed
    /// and failing the test past the deadline).
    pub fn rest(mut self) -> (Vec<String>, Option<i32>, String) {
        let until = Instant::now() + DEADLINE;
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("sykli observe did not exit within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines: Vec<String> = self.lines.iter().collect();
        (lines, code, self.stderr())
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
