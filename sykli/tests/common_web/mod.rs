//! What the metrics and web page tests share: plain HTTP/1.1 GETs against 127.0.0.1 with
//! deadlines, `/metrics` parsed with a Prometheus text parser, `sykli run --ui` started in the
//! background with its page's address read from stderr, and bounded waiting.
#![allow(dead_code)] // each test binary uses its own subset

pub mod cdp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one HTTP exchange may take.
const IO_DEADLINE: Duration = Duration::from_secs(10);

/// A response: status code, headers (lowercase names) and body.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding undone).
    pub body: String,
}

impl Reply {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` from `addr` over HTTP/1.1 (`Connection: close`), with `headers`.
pub fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_DEADLINE)?;
    stream.set_read_timeout(Some(IO_DEADLINE))?;
    stream.set_write_timeout(Some(IO_DEADLINE))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// `GET path` from `addr`.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, &[]).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = body.split_once("\r\n") else {
            return out;
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return out;
        };
        if size == 0 || rest.len() < size {
            return out;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
}

/// `/metrics` of `addr`, parsed.
pub fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let reply = get(addr, "/metrics");
    assert_eq!(reply.status, 200, "/metrics: {reply:?}");
    let lines = reply.body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text")
}

/// The value of the sample `metric` with exactly `labels` (`None` when there is none).
pub fn value(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    use prometheus_parse::Value;
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .filter(|s| s.labels.len() == labels.len())
        .find_map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// The buckets `(le, cumulative count)` of histogram `metric` (no labels), in order.
pub fn buckets(scrape: &prometheus_parse::Scrape, metric: &str) -> Vec<(f64, f64)> {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && s.labels.is_empty())
        .unwrap_or_else(|| panic!("no histogram {metric}"));
    let prometheus_parse::Value::Histogram(buckets) = &sample.value else {
        panic!("{metric} is not a histogram: {:?}", sample.value);
    };
    let mut b: Vec<(f64, f64)> = buckets.iter().map(|h| (h.less_than, h.count)).collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    b
}

/// Like [`value`], 0 for a series not exported yet (a labelled counter before its first
/// increment).
pub fn count(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    value(scrape, metric, labels).unwrap_or(0.0)
}

/// Polls `check` until it returns `Ok`, panicking with `what` and the last state after
/// `deadline`.
pub fn wait_for<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if start.elapsed() > deadline => {
                panic!("{what}: not within {deadline:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A `sykli run --ui` in the background.
pub struct UiRun {
    /// The process.
    pub child: Child,
    /// Where its page is served.
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
    /// Its stderr lines so far.
    pub lines: Vec<String>,
}

impl UiRun {
    /// Starts `sykli run --ui 127.0.0.1:0 ARGS...` in `dir` (the project's own cache) and
    /// waits (with a deadline) for its `web page at` line.
    pub fn start(dir: &Path, args: &[&str]) -> UiRun {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sykli"))
            .args(["run", "--ui", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env_remove("CI")
            .env("SYKLI_CACHE_DIR", dir.join(".test-cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sykli run --ui");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let found = line
                        .strip_prefix("sykli run: web page at http://")
                        .and_then(|rest| rest.strip_suffix("/ui"))
                        .map(|a| a.parse::<SocketAddr>().expect("an address"));
                    lines.push(line);
                    if let Some(a) = found {
                        break a;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "sykli run --ui printed no page address; stderr:\n{}",
                        lines.join("\n")
                    );
                }
            }
        };
        UiRun {
            child,
            addr,
            stderr: rx,
            lines,
        }
    }

    /// Waits (with a deadline) for the run to exit; its exit code and all of stderr.
    pub fn finish(mut self, deadline: Duration) -> (Option<i32>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for sykli run") {
                break s;
            }
            if start.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("sykli run did not end within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends at EOF; take what it has (bounded by its end).
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.lines.push(line);
        }
        (status.code(), self.lines.join("\n"))
    }
}

impl Drop for UiRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A task command that waits (at most 120 s) for `file` to exist, then prints a line.
pub fn wait_on(file: &Path, line: &str) -> String {
    format!(
        "for i in $(seq 2400); do [ -e '{}' ] && break; sleep 0.05; done; [ -e '{}' ] && echo '{line}'",
        file.display(),
        file.display()
    )
}
