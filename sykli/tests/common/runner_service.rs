//! The "runner" HTTP service the `http-runner` plugin (examples/plugins/http-runner/) sends
//! tasks to: on 127.0.0.1, `POST /run` with `{"command", "env", "workdir"}` runs
//! `sh -c COMMAND` with exactly that environment in that directory and answers `200` with the
//! command's stdout then stderr as the body and its exit code in the header `x-exit-code`.
//! A malformed request gets `400` with the reason. One thread per connection, `Connection:
//! close`; stopped when dropped. [`RunnerService::start_tls`] serves the same over https.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request larger than this is refused.
const MAX_BODY: usize = 1 << 20;
/// A client silent this long is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A running runner service.
pub struct RunnerService {
    /// `127.0.0.1:PORT`, what a manifest grants in `hosts`.
    pub addr: String,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    tls: bool,
}

impl RunnerService {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub fn start() -> RunnerService {
        Self::serve(None)
    }

    /// Like [`RunnerService::start`], over TLS with the certificate `cert_pem` (for
    /// `localhost`) and its key `key_pem`.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> RunnerService {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("parse the runner's certificate");
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .expect("parse the runner's key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the runner's certificate and key");
        Self::serve(Some(Arc::new(config)))
    }

    fn serve(tls: Option<Arc<rustls::ServerConfig>>) -> RunnerService {
        let secure = tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the runner service");
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let served = served.clone();
                    let tls = tls.clone();
                    std::thread::spawn(move || {
                        let _ = handle(conn, tls, &served);
                    });
                }
            })
        };
        RunnerService {
            addr,
            stop,
            served,
            thread: Some(thread),
            tls: secure,
        }
    }

    /// The URL tasks are posted to (the `runner_url` setting).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}/run", self.port())
        } else {
            format!("http://{}/run", self.addr)
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("the runner's address has a port")
    }

    /// Requests read so far (answered with any status; counted before the answer is sent;
    /// a connection that sent no byte of a request, or failed its TLS handshake, is none).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for RunnerService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The task as the plugin posts it.
#[derive(serde::Deserialize)]
struct Posted {
    command: String,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    workdir: String,
}

/// Reads one request (over TLS when `tls` is given), counts it in `served`, answers it,
/// closes.
fn handle(
    conn: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    served: &AtomicUsize,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    match tls {
        None => exchange(conn, served),
        Some(config) => {
            let session = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
            let mut stream = rustls::StreamOwned::new(session, conn);
            exchange(&mut stream, served)?;
            stream.conn.send_close_notify();
            stream.flush()
        }
    }
}

/// One request and its answer on `stream`.
fn exchange(mut stream: impl Read + Write, served: &AtomicUsize) -> std::io::Result<()> {
    let (status, exit, body) = {
        let mut reader = BufReader::new(&mut stream);
        // A connection that sends nothing, or fails its TLS handshake, made no request.
        if reader.fill_buf()?.is_empty() {
            return Ok(());
        }
        match read_request(&mut reader) {
            Ok(posted) => run(&posted),
            Err(reason) => (400, None, reason.into_bytes()),
        }
    };
    let mut out = stream;
    served.fetch_add(1, Ordering::SeqCst);
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
         connection: close\r\n",
        body.len()
    );
    if let Some(code) = exit {
        head.push_str(&format!("x-exit-code: {code}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&body)?;
    out.flush()
}

fn read_request(reader: &mut impl BufRead) -> Result<Posted, String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("reading the request line: {e}"))?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "POST" || path != "/run" {
        return Err(format!("expected `POST /run`, got `{}`", line.trim()));
    }
    let mut length = None;
    for _ in 0..100 {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("reading the headers: {e}"))?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|e| format!("bad content-length `{}`: {e}", value.trim()))?,
            );
        }
    }
    let length = length.ok_or("no content-length header")?;
    if length > MAX_BODY {
        return Err(format!("body of {length} bytes is over {MAX_BODY}"));
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("reading the {length}-byte body: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("the body is not a task: {e}"))
}

/// Runs the posted command: (status, exit code, body).
fn run(posted: &Posted) -> (u16, Option<i32>, Vec<u8>) {
    let output = Command::new("sh")
        .arg("-c")
        .arg(&posted.command)
        .env_clear()
        .envs(&posted.env)
        .current_dir(&posted.workdir)
        .output();
    match output {
        Ok(o) => {
            use std::os::unix::process::ExitStatusExt as _;
            let code = o
                .status
                .code()
                .or_else(|| o.status.signal().map(|n| 128 + n))
                .unwrap_or(-1);
            let mut body = o.stdout;
            body.extend_from_slice(&o.stderr);
            (200, Some(code), body)
        }
        Err(e) => (
            400,
            None,
            format!("running sh -c in {}: {e}", posted.workdir).into_bytes(),
        ),
    }
}
