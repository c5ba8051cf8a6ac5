//! The local-process provider: each worker is a `sykli worker --join URL` child process in
//! its own process group, stopped by SIGTERM (the worker drains) and reaped. No orphans: the
//! children get SIGTERM if the thread that started them dies (Linux parent-death signal, so
//! a `kill -9` of serve drains them too), [`LocalProcesses::shutdown`] drains then kills,
//! and dropping the provider kills every process group still alive.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::provider::{ProviderError, WorkerProvider};

/// How local workers are started.
#[derive(Clone)]
pub struct LocalConfig {
    /// The `sykli` executable.
    pub program: PathBuf,
    /// The pool to join (`grpc://IP:PORT`).
    pub join: String,
    /// `--jobs` of each worker.
    pub jobs: usize,
    /// `--label K=V` of each worker.
    pub labels: Vec<String>,
    /// Each worker's store is `worker-N` under this directory, its stderr `worker-N.log`.
    pub store_root: PathBuf,
    /// Handed to workers as `SYKLI_TOKEN` when serve requires a token.
    pub token: Option<String>,
    /// A stopped worker still running after this long is killed.
    pub stop_grace: Duration,
    /// Event lines (a worker started, stopped, ended).
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for LocalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConfig")
            .field("program", &self.program)
            .field("join", &self.join)
            .field("jobs", &self.jobs)
            .field("labels", &self.labels)
            .field("store_root", &self.store_root)
            .finish_non_exhaustive()
    }
}

struct Worker {
    n: u64,
    child: Child,
    /// When it was sent SIGTERM (draining), if it was.
    stopped: Option<Instant>,
}

/// Local `sykli worker --join` processes.
pub struct LocalProcesses {
    config: LocalConfig,
    workers: Vec<Worker>,
    next: u64,
}

impl std::fmt::Debug for LocalProcesses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProcesses")
            .field("config", &self.config)
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl LocalProcesses {
    /// A provider with no worker started yet.
    pub fn new(config: LocalConfig) -> LocalProcesses {
        LocalProcesses {
            config,
            workers: Vec::new(),
            next: 1,
        }
    }

    /// Process ids of live workers, draining ones included.
    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.child.id()).collect()
    }

    fn log(&self, line: &str) {
        (self.config.log)(line);
    }

    /// Reaps ended workers; kills those draining for longer than the grace.
    fn reap(&mut self) -> Result<(), ProviderError> {
        let grace = self.config.stop_grace;
        let mut i = 0;
        while i < self.workers.len() {
            let w = &mut self.workers[i];
            let pid = w.child.id();
            match w.child.try_wait() {
                Ok(Some(status)) => {
                    let (n, stopped) = (w.n, w.stopped.is_some());
                    self.workers.swap_remove(i);
                    let how = if stopped {
                        "stopped"
                    } else {
                        "ended on its own"
                    };
                    self.log(&format!(
                        "autoscale: worker process {n} (pid {pid}) {how}: {status}"
                    ));
                    continue;
                }
                Ok(None) => {
                    if w.stopped.is_some_and(|t| t.elapsed() >= grace) {
                        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    }
                }
                Err(source) => {
                    return Err(ProviderError::Process {
                        pid,
                        action: "wait for",
                        source,
                    });
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Stops every worker: SIGTERM (drain), then SIGKILL to the process groups of those still
    /// running after `grace`; returns when all are reaped.
    pub fn shutdown(&mut self, grace: Duration) {
        for w in &mut self.workers {
            if w.stopped.is_none() {
                let _ = kill(Pid::from_raw(w.child.id() as i32), Signal::SIGTERM);
                w.stopped = Some(Instant::now());
            }
        }
        let until = Instant::now() + grace;
        while !self.workers.is_empty() && Instant::now() < until {
            if self.reap().is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_all();
    }

    fn kill_all(&mut self) {
        for mut w in self.workers.drain(..) {
            let pid = w.child.id();
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            let _ = w.child.wait();
            (self.config.log)(&format!(
                "autoscale: worker process {} (pid {pid}) killed",
                w.n
            ));
        }
    }

    fn spawn_one(&mut self) -> Result<(), ProviderError> {
        let n = self.next;
        let c = &self.config;
        let store = c.store_root.join(format!("worker-{n}"));
        let mut args: Vec<String> = vec![
            "worker".into(),
            "--join".into(),
            c.join.clone(),
            "--jobs".into(),
            c.jobs.to_string(),
            "--store".into(),
            store.display().to_string(),
        ];
        for label in &c.labels {
            args.extend(["--label".into(), label.clone()]);
        }
        let log_path = c.store_root.join(format!("worker-{n}.log"));
        let stderr = std::fs::create_dir_all(&c.store_root)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log_path)
            })
            .map_err(|source| ProviderError::Log {
                path: log_path.clone(),
                source,
            })?;
        let mut cmd = Command::new(&c.program);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .process_group(0);
        cmd.env_remove(crate::remote::auth::TOKEN_ENV);
        if let Some(t) = &c.token {
            cmd.env(crate::remote::auth::TOKEN_ENV, t);
        }
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died before prctl: nobody will signal us.
                if libc::getppid() != parent {
                    libc::raise(libc::SIGTERM);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| ProviderError::Spawn {
            program: c.program.display().to_string(),
            args: args.join(" "),
            source,
        })?;
        self.log(&format!(
            "autoscale: started worker process {n} (pid {}, store {}, log {})",
            child.id(),
            store.display(),
            log_path.display()
        ));
        self.next += 1;
        self.workers.push(Worker {
            n,
            child,
            stopped: None,
        });
        Ok(())
    }
}

impl WorkerProvider for LocalProcesses {
    fn current(&mut self) -> Result<usize, ProviderError> {
        self.reap()?;
        Ok(self.workers.iter().filter(|w| w.stopped.is_none()).count())
    }

    fn start(&mut self, n: usize) -> Result<(), ProviderError> {
        for _ in 0..n {
            self.spawn_one()?;
        }
        Ok(())
    }

    /// Stops the newest workers first (the oldest hold the warmest stores).
    fn stop(&mut self, n: usize) -> Result<(), ProviderError> {
        let mut left = n;
        for w in self.workers.iter_mut().rev() {
            if left == 0 {
                break;
            }
            if w.stopped.is_some() {
                continue;
            }
            let pid = w.child.id();
            kill(Pid::from_raw(pid as i32), Signal::SIGTERM).map_err(|e| {
                ProviderError::Process {
                    pid,
                    action: "signal",
                    source: e.into(),
                }
            })?;
            w.stopped = Some(Instant::now());
            left -= 1;
            let line = format!(
                "autoscale: stopping worker process {} (pid {pid}): SIGTERM, draining",
                w.n
            );
            (self.config.log)(&line);
        }
        Ok(())
    }
}

impl Drop for LocalProcesses {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in worker: a shell script that records its pid, then waits; `on_term` is its
    /// SIGTERM trap.
    fn provider(dir: &std::path::Path, on_term: &str, grace: Duration) -> LocalProcesses {
        let program = dir.join("fake-worker");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\ntrap '{on_term}' TERM\necho $$ > {d}/pid-$$\nsleep 600 &\nwait; wait\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        LocalProcesses::new(LocalConfig {
            program,
            join: "grpc://127.0.0.1:1".into(),
            jobs: 2,
            labels: vec!["gpu=true".into()],
            store_root: dir.join("stores"),
            token: None,
            stop_grace: grace,
            log: Arc::new(|_| {}),
        })
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z'))
        })
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < until, "no {what} within 20 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn started_workers_are_counted_stopped_by_sigterm_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = provider(dir.path(), "exit 0", Duration::from_secs(30));
        p.start(2).unwrap();
        assert_eq!(p.current().unwrap(), 2);
        let pids = p.pids();
        p.stop(1).unwrap();
        // Stopped: no longer counted at once; the newest one got the signal.
        assert_eq!(p.current().unwrap(), 1);
        wait_until("reaped worker", || {
            p.current().unwrap();
            p.pids().len() == 1
        });
        assert_eq!(p.pids(), vec![pids[0]]);
        assert!(!alive(pids[1]));
        assert!(dir.path().join("stores/worker-2.log").exists());
        drop(p);
        assert!(!alive(pids[0]), "dropping the provider kills its workers");
    }

    #[test]
    fn a_worker_ignoring_sigterm_is_killed_with_its_group_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = provider(dir.path(), "", Duration::from_millis(200));
        p.start(1).unwrap();
        let pid = p.pids()[0];
        // Its trap is set once it wrote its pid file.
        wait_until("trap set", || {
            dir.path().join(format!("pid-{pid}")).exists()
        });
        let stopped = Instant::now();
        p.stop(1).unwrap();
        wait_until("killed worker", || {
            p.current().unwrap();
            p.pids().is_empty()
        });
        assert!(stopped.elapsed() >= Duration::from_millis(200));
        assert!(!alive(pid));
        // Its child (`sleep 600`, same process group) died with it.
        let group = pid.to_string();
        wait_until("its process group gone", || {
            !std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .any(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                        s.rsplit_once(") ").is_some_and(|(_, r)| {
                            !r.starts_with('Z') && r.split_whitespace().nth(2) == Some(&group)
                        })
                    })
                })
        });
    }

    #[test]
    fn a_program_that_cannot_start_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = provider(dir.path(), "exit 0", Duration::from_secs(1));
        p.config.program = dir.path().join("missing");
        let e = p.start(1).unwrap_err().to_string();
        assert!(
            e.contains("missing worker --join grpc://127.0.0.1:1 --jobs 2"),
            "{e}"
        );
        assert!(e.contains("--label gpu=true"), "{e}");
        assert_eq!(p.current().unwrap(), 0);
    }
}
