//! Plugins and config pushed to the pool: serve sends each `Plugin` and `Config` to every
//! joined worker that applies them and waits for their `Applied`; it keeps them and sends
//! them again to each worker that joins later. A worker's `Applied` tells what it offers now
//! (job slots, labels, loaded plugins), which placement uses: an action asking for
//! `sykli-target=NAME` goes only to a worker that has plugin NAME loaded, at the version serve
//! holds when serve holds one, so new leases get a pushed version while running ones finish on
//! the old.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Op, PoolScheduler, State, WorkerEntry, WorkerState};
use crate::remote::pool::proto::{self, serve_msg};
use crate::remote::server::platform::{Labels, SYKLI_TARGET};

/// How long a push waits for each joined worker's answer.
pub const ACK_LIMIT: Duration = Duration::from_secs(60);

/// What was pushed to the pool, and the answers awaited.
#[derive(Default)]
pub(super) struct AdminState {
    /// Plugins by name, as sent (the request number is set per send).
    plugins: BTreeMap<String, proto::PluginPush>,
    /// The component digest serve holds for each plugin name.
    required: BTreeMap<String, String>,
    /// The config's TOML.
    config: Option<String>,
    pending: HashMap<u64, Pending>,
    next_request: u64,
}

struct Pending {
    worker: u64,
    tx: oneshot::Sender<proto::Applied>,
}

impl AdminState {
    fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }
}

/// `NAME@DIGEST` of each plugin.
pub(super) fn named(plugins: &BTreeMap<String, String>) -> Vec<String> {
    plugins.iter().map(|(n, d)| format!("{n}@{d}")).collect()
}

/// The plugins of `NAME@DIGEST` entries (an entry without `@` has an empty digest).
pub(super) fn parse_named(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|e| match e.split_once('@') {
            Some((n, d)) => (n.to_owned(), d.to_owned()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

/// Sends worker `id` (just joined) every plugin and the config pushed so far; nobody waits
/// for its answers, which update what it offers.
pub(super) fn catch_up(state: &mut State, id: u64) {
    if !state.workers.get(&id).is_some_and(|w| w.admin) {
        return;
    }
    let mut msgs = Vec::new();
    let pushed: Vec<proto::PluginPush> = state.admin.plugins.values().cloned().collect();
    for p in pushed {
        let request = state.admin.request();
        msgs.push(serve_msg::Kind::Plugin(proto::PluginPush { request, ..p }));
    }
    if let Some(toml) = state.admin.config.clone() {
        let request = state.admin.request();
        msgs.push(serve_msg::Kind::Config(proto::ConfigPush { request, toml }));
    }
    if let Some(w) = state.workers.get(&id) {
        for m in msgs {
            w.send(m);
        }
    }
}

/// Worker `id` applied (or refused) a request: what it offers now replaces what serve knew.
pub(super) fn applied(
    state: &mut State,
    id: u64,
    a: proto::Applied,
    log: &std::sync::Arc<dyn Fn(&str) + Send + Sync>,
) {
    if let Some(w) = state.workers.get_mut(&id) {
        w.jobs = a.jobs.max(1);
        w.labels = Labels::announced(&a.labels);
        w.advertised = a.labels.clone();
        w.plugins = parse_named(&a.plugins);
        if !a.error.is_empty() {
            log(&format!("worker {id} ({}) refused: {}", w.name, a.error));
        }
    }
    if let Some(p) = state.admin.pending.remove(&a.request)
        && p.worker == id
    {
        let _ = p.tx.send(a);
    }
}

/// Worker `id` left: nobody waits for its answers any more.
pub(super) fn forget_worker(state: &mut State, id: u64) {
    // Dropping the senders tells the waiting pushes it left.
    state.admin.pending.retain(|_, p| p.worker != id);
}

/// Whether `w` has every plugin `op` asks for, at the version serve holds.
pub(super) fn has_plugins(state: &State, w: &WorkerEntry, op: &Op) -> bool {
    op.platform
        .iter()
        .filter(|(n, _)| n == SYKLI_TARGET)
        .all(|(_, name)| has_plugin(state, w, name))
}

fn has_plugin(state: &State, w: &WorkerEntry, name: &str) -> bool {
    match (w.plugins.get(name), state.admin.required.get(name)) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(have), Some(want)) => have == want,
    }
}

/// Why no worker of `live` can run `op`'s plugin, naming it (none when one can).
pub(super) fn missing_plugins(state: &State, live: &[&WorkerEntry], op: &Op) -> Option<String> {
    let name = op
        .platform
        .iter()
        .filter(|(n, _)| n == SYKLI_TARGET)
        .map(|(_, v)| v)
        .find(|name| !live.iter().any(|w| has_plugin(state, w, name)))?;
    let loaded: Vec<String> = live
        .iter()
        .filter_map(|w| {
            w.plugins
                .get(name.as_str())
                .map(|d| format!("{} has digest {}", w.name, short(d)))
        })
        .collect();
    Some(match state.admin.required.get(name.as_str()) {
        Some(want) if !loaded.is_empty() => format!(
            "no worker has plugin `{name}` loaded at the version serve holds (digest {}): {}",
            short(want),
            loaded.join(", ")
        ),
        _ => format!(
            "no worker has plugin `{name}` loaded (push it to the pool with `sykli plugin push \
             MANIFEST --to SERVE`)"
        ),
    })
}

fn short(digest: &str) -> &str {
    &digest[..12.min(digest.len())]
}

impl PoolScheduler {
    /// Remembers a plugin for the workers that join from now on, without sending it (serve
    /// reloading what it stored).
    pub fn remember_plugin(&self, name: &str, digest: &str, manifest: &str, component: Vec<u8>) {
        let mut state = self.state();
        state
            .admin
            .required
            .insert(name.to_owned(), digest.to_owned());
        state.admin.plugins.insert(
            name.to_owned(),
            proto::PluginPush {
                request: 0,
                name: name.to_owned(),
                manifest: manifest.to_owned(),
                component,
                remove: false,
            },
        );
    }

    /// Remembers the config for the workers that join from now on, without sending it.
    pub fn remember_config(&self, toml: &str) {
        self.state().admin.config = Some(toml.to_owned());
    }

    /// Loads (or hot-swaps) a plugin on every joined worker and remembers it for later ones;
    /// from now on only workers that loaded this version get its actions. Returns the
    /// refusals, each naming the worker and why.
    pub async fn push_plugin(
        &self,
        name: &str,
        digest: &str,
        manifest: &str,
        component: Vec<u8>,
    ) -> Vec<String> {
        self.remember_plugin(name, digest, manifest, component);
        let msg = self.state().admin.plugins.get(name).cloned();
        let Some(msg) = msg else {
            return Vec::new();
        };
        self.broadcast(move |request| {
            serve_msg::Kind::Plugin(proto::PluginPush {
                request,
                ..msg.clone()
            })
        })
        .await
    }

    /// Unloads a plugin on every joined worker and forgets it.
    pub async fn remove_plugin(&self, name: &str) -> Vec<String> {
        {
            let mut state = self.state();
            state.admin.plugins.remove(name);
            state.admin.required.remove(name);
        }
        let name = name.to_owned();
        self.broadcast(move |request| {
            serve_msg::Kind::Plugin(proto::PluginPush {
                request,
                name: name.clone(),
                remove: true,
                ..Default::default()
            })
        })
        .await
    }

    /// Applies a (validated) config on every joined worker and remembers it for later ones.
    pub async fn push_config(&self, toml: &str) -> Vec<String> {
        self.remember_config(toml);
        let toml = toml.to_owned();
        self.broadcast(move |request| {
            serve_msg::Kind::Config(proto::ConfigPush {
                request,
                toml: toml.clone(),
            })
        })
        .await
    }

    /// Sends `make(request)` to every worker that applies administration messages and waits
    /// (at most [`ACK_LIMIT`]) for the answers of those not lost; the refusals.
    async fn broadcast(&self, make: impl Fn(u64) -> serve_msg::Kind) -> Vec<String> {
        let mut waits = Vec::new();
        {
            let mut state = self.state();
            let ids: Vec<u64> = state
                .workers
                .iter()
                .filter(|(_, w)| w.admin)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                let request = state.admin.request();
                let Some(w) = state.workers.get(&id) else {
                    continue;
                };
                w.send(make(request));
                // A lost worker gets it too, but nobody waits for it: its answer (if it
                // comes back) updates what it offers.
                if w.state == WorkerState::Lost {
                    continue;
                }
                let label = format!("worker {id} ({})", w.name);
                let (tx, rx) = oneshot::channel();
                state
                    .admin
                    .pending
                    .insert(request, Pending { worker: id, tx });
                waits.push((request, label, rx));
            }
        }
        let answers =
            futures::future::join_all(waits.into_iter().map(|(request, label, rx)| async move {
                (request, label, tokio::time::timeout(ACK_LIMIT, rx).await)
            }))
            .await;
        let mut refusals = Vec::new();
        for (request, label, answer) in answers {
            match answer {
                Ok(Ok(a)) if a.error.is_empty() => {}
                Ok(Ok(a)) => refusals.push(format!("{label}: {}", a.error)),
                Ok(Err(_)) => refusals.push(format!("{label} left before answering")),
                Err(_) => {
                    self.state().admin.pending.remove(&request);
                    refusals.push(format!(
                        "{label} did not answer within {}",
                        humantime::format_duration(ACK_LIMIT)
                    ));
                }
            }
        }
        refusals
    }
}

#[cfg(feature = "plugins")]
#[tonic::async_trait]
impl crate::plugin::admin::Fanout for PoolScheduler {
    async fn plugin(
        &self,
        name: &str,
        digest: &str,
        source: &crate::plugin::PluginSource,
    ) -> Vec<String> {
        self.push_plugin(name, digest, &source.manifest_text, source.wasm.clone())
            .await
    }

    async fn removed(&self, name: &str) -> Vec<String> {
        self.remove_plugin(name).await
    }

    async fn config(&self, toml: &str) -> Vec<String> {
        self.push_config(toml).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::mpsc;
    use tonic::Status;

    use super::super::{PoolConfig, PoolScheduler};
    use crate::cache::digest::DigestFunction;
    use crate::remote::pool::proto::{self, ServeMsg, serve_msg, worker_msg};
    use crate::remote::server::digests::BlobDigest;
    use crate::remote::server::execution::{Scheduler, Submission};
    use crate::remote::server::live::LiveLogs;
    use crate::remote::server::store::DiskStore;
    use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;

    type Rx = mpsc::UnboundedReceiver<Result<ServeMsg, Status>>;

    fn pool() -> (tempfile::TempDir, Arc<PoolScheduler>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DiskStore::open(dir.path()).unwrap());
        let live = Arc::new(LiveLogs::default());
        let pool = PoolScheduler::new(store, live, PoolConfig::default(), None);
        (dir, pool)
    }

    fn join(pool: &PoolScheduler, name: &str, plugins: &[&str]) -> (u64, Rx) {
        let (tx, rx) = mpsc::unbounded_channel();
        let hello = proto::Hello {
            name: name.into(),
            jobs: 2,
            plugins: plugins.iter().map(|p| p.to_string()).collect(),
            admin: true,
            ..Default::default()
        };
        (pool.add_worker(hello, tx), rx)
    }

    fn plugin_action(n: u32, target: &str) -> Submission {
        let action = reapi::Action {
            platform: Some(reapi::Platform {
                properties: vec![reapi::platform::Property {
                    name: "sykli-target".into(),
                    value: target.into(),
                }],
            }),
            do_not_cache: true,
            ..Default::default()
        };
        Submission {
            function: DigestFunction::Blake3,
            action_digest: BlobDigest::of(DigestFunction::Blake3, format!("a{n}").as_bytes()),
            action,
            command: reapi::Command::default(),
            secrets: Default::default(),
            attempt: 1,
            secrets_hash: [0; 32],
            id: format!("op{n}"),
            client: "c".into(),
        }
    }

    /// Everything sent to a worker so far.
    fn sent(rx: &mut Rx) -> Vec<serve_msg::Kind> {
        let mut out = Vec::new();
        while let Ok(Ok(ServeMsg { kind: Some(kind) })) = rx.try_recv() {
            out.push(kind);
        }
        out
    }

    fn leases(msgs: &[serve_msg::Kind]) -> usize {
        msgs.iter()
            .filter(|k| matches!(k, serve_msg::Kind::Work(_)))
            .count()
    }

    #[test]
    fn a_plugin_action_waits_for_a_worker_with_the_version_serve_holds() {
        let (_dir, pool) = pool();
        pool.remember_plugin("spawn", "new", "name = \"spawn\"", vec![1]);
        let (old, mut old_rx) = join(&pool, "old", &["spawn@old"]);
        let (_none, mut none_rx) = join(&pool, "none", &[]);
        // Both got the plugin on joining.
        for rx in [&mut old_rx, &mut none_rx] {
            let msgs = sent(rx);
            assert!(
                msgs.iter().any(
                    |k| matches!(k, serve_msg::Kind::Plugin(p) if p.name == "spawn" && !p.remove)
                ),
                "no plugin sent on join"
            );
        }
        let _op = pool.clone().submit(plugin_action(1, "spawn")).unwrap();
        assert_eq!(leases(&sent(&mut old_rx)), 0, "leased to an old version");
        assert_eq!(leases(&sent(&mut none_rx)), 0, "leased without the plugin");
        pool.message(
            old,
            worker_msg::Kind::Applied(proto::Applied {
                jobs: 2,
                plugins: vec!["spawn@new".into()],
                ..Default::default()
            }),
        );
        assert_eq!(leases(&sent(&mut old_rx)), 1, "not leased once loaded");
        assert_eq!(pool.status().workers[0].plugins, ["spawn@new"]);
    }

    /// The request number of the `Plugin` message a worker gets (bounded wait).
    async fn plugin_request(rx: &mut Rx) -> u64 {
        for _ in 0..400 {
            if let Some(serve_msg::Kind::Plugin(p)) = sent(rx).pop() {
                return p.request;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("no Plugin message sent within 2 s");
    }

    #[tokio::test]
    async fn a_push_answers_once_every_worker_did_naming_those_that_refused() {
        let (_dir, pool) = pool();
        let (a, mut a_rx) = join(&pool, "a", &[]);
        let (b, mut b_rx) = join(&pool, "b", &[]);
        let push = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.push_plugin("spawn", "d1", "name = \"spawn\"", vec![1])
                    .await
            }
        });
        let (ra, rb) = (
            plugin_request(&mut a_rx).await,
            plugin_request(&mut b_rx).await,
        );
        pool.message(
            a,
            worker_msg::Kind::Applied(proto::Applied {
                request: ra,
                jobs: 2,
                plugins: vec!["spawn@d1".into()],
                ..Default::default()
            }),
        );
        assert!(!push.is_finished(), "answered before worker b did");
        pool.message(
            b,
            worker_msg::Kind::Applied(proto::Applied {
                request: rb,
                error: "plugin `spawn`: grants.dirs: no such directory".into(),
                jobs: 2,
                ..Default::default()
            }),
        );
        let refusals = push.await.unwrap();
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(
            refusals[0].starts_with("worker 2 (b): plugin `spawn`"),
            "{refusals:?}"
        );
    }
}
