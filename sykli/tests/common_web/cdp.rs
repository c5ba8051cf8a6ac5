//! A headless Chromium (Debian's `chromium`) driven over the Chrome DevTools Protocol on a
//! pipe (`--remote-debugging-pipe`: JSON messages separated by NUL on fds 3 and 4), so tests
//! can load a page once, read its live DOM as it changes and take screenshots. Every wait has
//! a deadline; the browser is killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// How long one protocol call may take.
const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// A headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
}

/// Where Debian's chromium is, or why the test cannot run.
pub fn chromium() -> std::path::PathBuf {
    for p in ["/usr/bin/chromium", "/usr/lib/chromium/chromium"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!(
        "chromium is not installed: the pipeline's `chromium` setup task (.ci/chromium-setup.sh) \
         installs Debian's package"
    );
}

impl Browser {
    /// Starts headless Chromium (profile in `profile`) and attaches to a blank page.
    pub fn start(profile: &Path) -> Browser {
        let (child_reads, to) = std::io::pipe().expect("a pipe");
        let (from_reader, child_writes) = std::io::pipe().expect("a pipe");
        let mut cmd = Command::new(chromium());
        cmd.args([
            "--headless",
            // Tests run as root in CI: Chromium's sandbox refuses root.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--remote-debugging-pipe",
            "--window-size=1280,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        {
            use std::os::fd::AsRawFd;
            let (r, w) = (child_reads.as_raw_fd(), child_writes.as_raw_fd());
            // SAFETY: only async-signal-safe dup2 calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || move_to_3_and_4(r, w).map_err(std::io::Error::from));
            }
        }
        let child = cmd.spawn().expect("spawn chromium");
        drop(child_reads);
        drop(child_writes);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        match serde_json::from_slice::<Value>(&buf) {
                            Ok(v) => {
                                if tx.send(v).is_err() {
                                    break;
                                }
                            }
                            Err(_) => continue,
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to,
            from: rx,
            next_id: 0,
            session: String::new(),
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        b.page("Page.enable", json!({}));
        b.page("Runtime.enable", json!({}));
        b
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method}: chromium's pipe: {e}"));
        let deadline = Instant::now() + CALL_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self.from.recv_timeout(left).unwrap_or_else(|e| {
                panic!("{method}: no answer from chromium within {CALL_DEADLINE:?}: {e}")
            });
            if reply["id"] == json!(id) {
                if let Some(err) = reply.get("error") {
                    panic!("{method}: {err}");
                }
                return reply["result"].clone();
            }
        }
    }

    /// A protocol call on the page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Loads `url` in the page.
    pub fn navigate(&mut self, url: &str) {
        let r = self.page("Page.navigate", json!({"url": url}));
        if let Some(e) = r.get("errorText") {
            panic!("loading {url}: {e}");
        }
    }

    /// Evaluates `expression` in the page; its value (JSON).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Saves a PNG screenshot of the page to `path`; its size in bytes.
    pub fn screenshot(&mut self, path: &Path) -> usize {
        let r = self.page("Page.captureScreenshot", json!({"format": "png"}));
        let data = r["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 PNG");
        std::fs::write(path, &png).expect("write the screenshot");
        png.len()
    }
}

/// In the child: puts `r` on fd 3 and `w` on fd 4, both inherited across exec. Each is first
/// copied above 10 so that neither can be overwritten by the other's move nor left
/// close-on-exec by a no-op `dup2` onto itself.
fn move_to_3_and_4(r: i32, w: i32) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, fcntl};
    use std::os::fd::BorrowedFd;
    // SAFETY: both descriptors are open in the child until exec (the parent closes its copies
    // only after spawn returns); every call here is async-signal-safe.
    let (r, w) = unsafe { (BorrowedFd::borrow_raw(r), BorrowedFd::borrow_raw(w)) };
    let high_r = fcntl(r, FcntlArg::F_DUPFD(10))?;
    let high_w = fcntl(w, FcntlArg::F_DUPFD(10))?;
    for (high, target) in [(high_r, 3), (high_w, 4)] {
        // SAFETY: as above; the new descriptor must stay open for chromium, so it is not
        // closed here.
        let high = unsafe { BorrowedFd::borrow_raw(high) };
        std::mem::forget(unsafe { nix::unistd::dup2_raw(high, target) }?);
    }
    Ok(())
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
