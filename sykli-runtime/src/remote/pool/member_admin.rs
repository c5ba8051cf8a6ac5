//! What a joined worker does with serve's administration messages: `Plugin` loads, hot-swaps
//! or removes a target plugin (a running task finishes on the version it started with),
//! `Config` applies the worker-level settings of `sykli config push` (job slots, labels,
//! target settings, grant overrides) without stopping anything. Each is answered with
//! `Applied`: what the worker offers now, or why it refused. Messages are applied one at a
//! time, in the order serve sent them, off the async executor (compiling is CPU work).
//!
//! Pushed plugins are not stored by the worker: serve holds them and sends them again when the
//! worker joins (again). Their compiled code is cached in the worker's store by digest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::mpsc;

use super::proto::{self, Applied, WorkerMsg, serve_msg, worker_msg};
use crate::remote::server::platform::Labels;

/// A joined worker's plugins, job slots and labels, as serve's messages change them.
pub struct MemberAdmin {
    #[cfg(feature = "plugins")]
    plugins: crate::plugin::Plugins,
    #[cfg(feature = "plugins")]
    config: crate::plugin::admin::LiveConfig,
    /// The job slots it was started with (a config without `concurrency` goes back to them).
    #[cfg_attr(not(feature = "plugins"), allow(dead_code))]
    started_jobs: u32,
    jobs: AtomicU32,
    labels: Labels,
}

impl std::fmt::Debug for MemberAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberAdmin")
            .field("jobs", &self.jobs())
            .finish_non_exhaustive()
    }
}

impl MemberAdmin {
    /// A worker with `jobs` slots offering `labels` (pushed labels are set on this shared
    /// value, so its runners see them), running target plugins from `plugins`.
    #[cfg(feature = "plugins")]
    pub fn new(plugins: crate::plugin::Plugins, jobs: u32, labels: Labels) -> MemberAdmin {
        MemberAdmin {
            config: crate::plugin::admin::LiveConfig::new(plugins.clone(), None),
            plugins,
            started_jobs: jobs.max(1),
            jobs: AtomicU32::new(jobs.max(1)),
            labels,
        }
    }

    /// A worker without plugin support: it refuses plugins and applies only job slots and
    /// labels.
    #[cfg(not(feature = "plugins"))]
    pub fn new(jobs: u32, labels: Labels) -> MemberAdmin {
        MemberAdmin {
            started_jobs: jobs.max(1),
            jobs: AtomicU32::new(jobs.max(1)),
            labels,
        }
    }

    /// Its job slots now.
    pub fn jobs(&self) -> u32 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// Its loaded plugins, `NAME@DIGEST`, sorted.
    pub fn plugins(&self) -> Vec<String> {
        #[cfg(feature = "plugins")]
        {
            let mut all: Vec<String> = self
                .plugins
                .list()
                .iter()
                .map(|p| format!("{}@{}", p.name, p.digest))
                .collect();
            all.sort();
            all
        }
        #[cfg(not(feature = "plugins"))]
        Vec::new()
    }

    /// `hello` with what the worker offers now (job slots, labels, plugins).
    pub fn hello(&self, hello: &proto::Hello) -> proto::Hello {
        proto::Hello {
            labels: self.labels.advertised(),
            jobs: self.jobs(),
            plugins: self.plugins(),
            admin: cfg!(feature = "plugins"),
            ..hello.clone()
        }
    }

    /// Applies one `Plugin` or `Config` message (blocking: it may compile a component).
    pub fn apply(&self, kind: serve_msg::Kind) -> Applied {
        let (request, result) = match kind {
            serve_msg::Kind::Plugin(p) => (p.request, self.plugin(p)),
            serve_msg::Kind::Config(c) => (c.request, self.config(&c.toml)),
            _ => (0, Err("not an administration message".to_owned())),
        };
        Applied {
            request,
            error: result.err().unwrap_or_default(),
            jobs: self.jobs(),
            labels: self.labels.advertised(),
            plugins: self.plugins(),
        }
    }

    #[cfg(feature = "plugins")]
    fn plugin(&self, p: proto::PluginPush) -> Result<(), String> {
        use crate::plugin::{Manifest, PluginSource};
        if p.remove {
            // Removing what is not loaded leaves the worker as serve wants it.
            let _ = self.plugins.remove(&p.name);
            return Ok(());
        }
        let origin = format!("plugin `{}` from serve", p.name);
        let manifest = Manifest::parse(&p.manifest, &origin).map_err(|e| e.to_string())?;
        let source = PluginSource {
            manifest,
            manifest_text: p.manifest,
            wasm: p.component,
        };
        let loaded = self
            .plugins
            .host()
            .load(&source, None)
            .map_err(|e| e.to_string())?;
        if loaded.name != p.name {
            return Err(format!(
                "plugin `{}`: the component loads as target `{}`",
                p.name, loaded.name
            ));
        }
        self.plugins.put(Arc::new(loaded));
        Ok(())
    }

    #[cfg(not(feature = "plugins"))]
    fn plugin(&self, p: proto::PluginPush) -> Result<(), String> {
        Err(format!(
            "plugin `{}`: this worker was built without plugin support",
            p.name
        ))
    }

    #[cfg(not(feature = "plugins"))]
    fn config(&self, _toml: &str) -> Result<(), String> {
        Err("this worker was built without plugin support (no hot config)".into())
    }

    #[cfg(feature = "plugins")]
    fn config(&self, toml: &str) -> Result<(), String> {
        let config = self.config.apply(toml).map_err(|e| e.to_string())?;
        let jobs = config.concurrency.map_or(self.started_jobs, |n| n as u32);
        self.jobs.store(jobs.max(1), Ordering::Relaxed);
        self.labels.set_pushed(&config.labels);
        Ok(())
    }
}

/// Starts applying `admin` messages one at a time: each one sent to the returned channel is
/// applied and answered with `Applied` on `out`. Ends when the channel is dropped.
pub fn spawn_applier(
    admin: Arc<MemberAdmin>,
    out: mpsc::Sender<WorkerMsg>,
) -> mpsc::UnboundedSender<serve_msg::Kind> {
    let (tx, mut rx) = mpsc::unbounded_channel::<serve_msg::Kind>();
    tokio::spawn(async move {
        // Bounded by the channel: it ends with the session that owns the sender.
        while let Some(kind) = rx.recv().await {
            let request = match &kind {
                serve_msg::Kind::Plugin(p) => p.request,
                serve_msg::Kind::Config(c) => c.request,
                _ => 0,
            };
            let admin = admin.clone();
            let applied = tokio::task::spawn_blocking(move || admin.apply(kind))
                .await
                .unwrap_or_else(|e| Applied {
                    request,
                    error: format!("applying the message failed: {e}"),
                    ..Default::default()
                });
            let msg = WorkerMsg {
                kind: Some(worker_msg::Kind::Applied(applied)),
            };
            if out.send(msg).await.is_err() {
                break;
            }
        }
    });
    tx
}
