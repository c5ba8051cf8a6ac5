//! `sykli worker --join URL`: a worker that joins a `sykli serve` pool over one outbound
//! stream. It says hello (labels, capacity, version), heartbeats, runs the leases it gets
//! through the same fetch-run-upload path as the Remote Workers bot
//! ([`crate::remote::bots`]), reports their results, and on shutdown drains: it tells serve,
//! finishes what it runs, then leaves. A broken stream (serve restarted) ends its leases
//! (serve queues them again) and it joins again, a bounded number of times.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::protobuf::Any;
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::member_admin::{MemberAdmin, spawn_applier};
use super::proto::{
    self, Draining, Heartbeat, Hello, LeaseResult, PoolClient, PoolStatus, StatusRequest,
    WorkerMsg, serve_msg, worker_msg,
};
use crate::cache::digest::DigestFunction;
use crate::exec::process::ProcessExecutor;
use crate::remote::bots::{Bot, DIGEST_URL};
use crate::remote::client::{ClientOptions, RemoteClient, RemoteError};
use crate::remote::server::digests::BlobDigest;
use crate::remote::server::live::{LiveLogs, LiveStreams};
use crate::remote::server::platform::Labels;
use crate::remote::server::runner::Runner;
use crate::remote::server::store::{DiskStore, StoreError, remove_tree};

/// Joins tried in a row without one succeeding before the worker gives up.
const MAX_REJOINS: u32 = 60;
/// How long a drained worker waits for serve to read its last messages.
const LEAVE_LIMIT: Duration = Duration::from_secs(5);
/// Input roots reported as held.
const HELD: usize = 64;

/// How a joining worker is set up.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// The serve endpoint.
    pub serve: ClientOptions,
    /// The worker's store.
    pub store: PathBuf,
    /// Platform properties offered besides this host's `OSFamily` and `ISA` (`K=V`).
    pub labels: Vec<(String, String)>,
    /// Actions at once.
    pub jobs: usize,
    /// SIGTERM-to-SIGKILL grace when stopping an action.
    pub kill_grace: Duration,
    /// The name serve shows (host and pid by default).
    pub name: String,
}

/// Why a joining worker stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Serve could not be reached, or refused the connection.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The store could not be opened.
    #[error("failed to open the worker store {}", path.display())]
    Store {
        /// The store directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The plugins stored in the worker's store could not be loaded.
    #[error("failed to load the worker's plugins: {0}")]
    Plugins(String),
    /// Joining kept failing.
    #[error("joining {endpoint} failed {attempts} times in a row; last: {last}")]
    Rejoin {
        /// Serve.
        endpoint: String,
        /// Attempts.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// What a joining worker reports as it goes (the CLI prints these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinEvent {
    /// In the pool.
    Joined {
        /// Its id there.
        worker: u64,
    },
    /// A lease finished and its result went to serve.
    Ran {
        /// The lease.
        lease: u64,
        /// Exit code, or why it could not run.
        outcome: Result<i32, String>,
    },
    /// A lease was withdrawn and stopped; no result was sent.
    Cancelled {
        /// The lease.
        lease: u64,
        /// Serve's reason.
        reason: String,
    },
    /// The stream to serve broke; the worker joins again.
    Lost {
        /// Why.
        error: String,
    },
    /// Drained: everything it ran is reported; it left.
    Drained,
}

enum End {
    Drained,
    Lost(String),
}

struct Worker {
    client: RemoteClient,
    bots: HashMap<i32, Arc<Bot>>,
    hello: Hello,
    admin: Arc<MemberAdmin>,
}

/// The CPU cores and memory (bytes; 0 when unknown) of this host.
pub fn host_capacity() -> (f64, u64) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    (cpus, memory)
}

/// Runs the worker until `drain` is cancelled and it drained (then `Ok`), or until serve
/// stays unreachable. `escalate` kills running actions at once.
pub async fn run(
    config: JoinConfig,
    drain: CancellationToken,
    escalate: CancellationToken,
    mut events: impl FnMut(JoinEvent) + Send,
) -> Result<(), JoinError> {
    let client = RemoteClient::connect(&config.serve).await?;
    let store = DiskStore::open_shared(config.store.clone())
        .await
        .map_err(|source| JoinError::Store {
            path: config.store.clone(),
            source,
        })?;
    let labels = Labels::new(config.labels.clone(), false);
    let jobs = config.jobs.max(1) as u32;
    #[cfg(feature = "plugins")]
    let plugins = {
        let root = config.store.clone();
        tokio::task::spawn_blocking(move || crate::remote::server::stored_plugins(&root))
            .await
            .map_err(|e| JoinError::Plugins(e.to_string()))?
            .map_err(|e| JoinError::Plugins(crate::error_chain(&e)))?
    };
    #[cfg(feature = "plugins")]
    let admin = Arc::new(MemberAdmin::new(plugins.clone(), jobs, labels.clone()));
    #[cfg(not(feature = "plugins"))]
    let admin = Arc::new(MemberAdmin::new(jobs, labels.clone()));
    let mut bots = HashMap::new();
    for f in [DigestFunction::Blake3, DigestFunction::Sha256] {
        if !client.info().supports(f) {
            continue;
        }
        let bot = Bot {
            client: client.with_function(f)?,
            function: f,
            store: store.clone(),
            labels: labels.clone(),
            runner: Runner::new(
                store.clone(),
                ProcessExecutor::new().with_escalation(escalate.clone()),
                // Joined workers run host actions unsandboxed for now (docs/pool.md).
                None,
                #[cfg(feature = "docker")]
                None,
                config.name.clone(),
                config.kill_grace,
            ),
        };
        #[cfg(feature = "plugins")]
        let bot = Bot {
            runner: bot.runner.with_plugins(plugins.clone()),
            ..bot
        };
        bots.insert(f.reapi_value(), Arc::new(bot));
    }
    let (cpus, memory) = host_capacity();
    let worker = Worker {
        client,
        bots,
        hello: Hello {
            name: config.name.clone(),
            labels: labels.advertised(),
            jobs,
            cpus,
            memory,
            version: env!("CARGO_PKG_VERSION").into(),
            plugins: Vec::new(),
            admin: false,
        },
        admin,
    };
    let mut held: VecDeque<String> = VecDeque::new();
    let mut failures = 0u32;
    loop {
        match worker.session(&drain, &mut events, &mut held).await {
            Ok(End::Drained) => {
                events(JoinEvent::Drained);
                return Ok(());
            }
            Ok(End::Lost(error)) => {
                failures = 0;
                events(JoinEvent::Lost { error });
            }
            Err(error) => {
                failures += 1;
                if failures >= MAX_REJOINS {
                    return Err(JoinError::Rejoin {
                        endpoint: worker.client.endpoint().to_string(),
                        attempts: failures,
                        last: error,
                    });
                }
            }
        }
        if drain.is_cancelled() {
            events(JoinEvent::Drained);
            return Ok(());
        }
        let pause = Duration::from_millis(100 * u64::from(failures.min(10)).max(1));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = drain.cancelled() => {}
        }
    }
}

impl Worker {
    /// One stream to serve: `Err` when it could not be opened, else how it ended.
    async fn session(
        &self,
        drain: &CancellationToken,
        events: &mut (impl FnMut(JoinEvent) + Send),
        held: &mut VecDeque<String>,
    ) -> Result<End, String> {
        let (out, out_rx) = mpsc::channel::<WorkerMsg>(256);
        let say = |kind: worker_msg::Kind| WorkerMsg { kind: Some(kind) };
        // What it offers now: serve's pushes may have changed it since the last session.
        out.send(say(worker_msg::Kind::Hello(self.admin.hello(&self.hello))))
            .await
            .map_err(|e| e.to_string())?;
        let request = self
            .client
            .request(tokio_stream::wrappers::ReceiverStream::new(out_rx));
        let mut pool = PoolClient::new(self.client.channel());
        let mut incoming = pool
            .join(request)
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        let welcome = match incoming.message().await {
            Ok(Some(proto::ServeMsg {
                kind: Some(serve_msg::Kind::Welcome(w)),
            })) => w,
            Ok(_) => return Err("serve did not welcome the worker".into()),
            Err(s) => return Err(format!("{:?}: {}", s.code(), s.message())),
        };
        events(JoinEvent::Joined {
            worker: welcome.worker,
        });
        let period = Duration::from_millis(welcome.heartbeat_ms.max(10));
        let mut beat = tokio::time::interval(period);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tasks: tokio::task::JoinSet<(u64, String, reapi::ExecuteResponse)> =
            tokio::task::JoinSet::new();
        let mut running: HashMap<u64, CancellationToken> = HashMap::new();
        let mut withdrawn: HashMap<u64, String> = HashMap::new();
        let mut draining = false;
        let applier = spawn_applier(self.admin.clone(), out.clone());
        // Bounded by the stream: each turn handles one message, tick or finished lease.
        loop {
            if draining && running.is_empty() {
                // Close our half and let serve read everything sent (the last results)
                // before it closes its half; bounded, serve may be gone.
                drop(out);
                let _ = tokio::time::timeout(LEAVE_LIMIT, async {
                    while let Ok(Some(_)) = incoming.message().await {}
                })
                .await;
                return Ok(End::Drained);
            }
            tokio::select! {
                m = incoming.message() => match m {
                    Ok(Some(proto::ServeMsg { kind: Some(serve_msg::Kind::Work(w)) })) => {
                        let token = CancellationToken::new();
                        running.insert(w.lease, token.clone());
                        let bot = self.bots.get(&w.digest_function).cloned();
                        tasks.spawn(work(bot, w, token, out.clone()));
                    }
                    Ok(Some(proto::ServeMsg { kind: Some(serve_msg::Kind::Cancel(c)) })) => {
                        if let Some(t) = running.get(&c.lease) {
                            t.cancel();
                            withdrawn.insert(c.lease, c.reason);
                        }
                    }
                    Ok(Some(proto::ServeMsg {
                        kind: Some(k @ (serve_msg::Kind::Plugin(_) | serve_msg::Kind::Config(_))),
                    })) => {
                        let _ = applier.send(k);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        let error = match m {
                            Err(s) => format!("{:?}: {}", s.code(), s.message()),
                            _ => "serve closed the stream".into(),
                        };
                        // Serve queues these leases again; their results would be discarded.
                        for t in running.values() {
                            t.cancel();
                        }
                        while tasks.join_next().await.is_some() {}
                        return Ok(if drain.is_cancelled() { End::Drained } else { End::Lost(error) });
                    }
                },
                _ = beat.tick() => {
                    let hb = Heartbeat {
                        running: running.keys().copied().collect(),
                        held: held.iter().cloned().collect(),
                    };
                    let _ = out.send(say(worker_msg::Kind::Heartbeat(hb))).await;
                }
                Some(done) = tasks.join_next() => {
                    let Ok((lease, root, response)) = done else { continue };
                    running.remove(&lease);
                    if !root.is_empty() && !held.contains(&root) {
                        if held.len() == HELD {
                            held.pop_front();
                        }
                        held.push_back(root.clone());
                    }
                    // A withdrawn lease that was stopped reports nothing; one that ended on
                    // its own reports its result, which serve discards.
                    if let Some(reason) = withdrawn.remove(&lease)
                        && response
                            .status
                            .as_ref()
                            .is_some_and(|s| s.code == tonic::Code::Unavailable as i32)
                    {
                        events(JoinEvent::Cancelled { lease, reason });
                        continue;
                    }
                    let outcome = match (&response.status, &response.result) {
                        (Some(st), _) if st.code != 0 => Err(st.message.clone()),
                        (_, Some(r)) => Ok(r.exit_code),
                        _ => Err("no result".into()),
                    };
                    let result = LeaseResult {
                        lease,
                        response: response.encode_to_vec(),
                        held: root,
                    };
                    let _ = out.send(say(worker_msg::Kind::Result(result))).await;
                    events(JoinEvent::Ran { lease, outcome });
                }
                () = drain.cancelled(), if !draining => {
                    draining = true;
                    let _ = out.send(say(worker_msg::Kind::Draining(Draining {}))).await;
                }
            }
        }
    }
}

/// Runs one lease: its lease id, the input root it held, and its response.
async fn work(
    bot: Option<Arc<Bot>>,
    w: proto::Work,
    cancel: CancellationToken,
    out: mpsc::Sender<WorkerMsg>,
) -> (u64, String, reapi::ExecuteResponse) {
    let failed = |code: tonic::Code, message: String| reapi::ExecuteResponse {
        status: Some(crate::remote::server::status::status(code, message)),
        ..Default::default()
    };
    let Some(bot) = bot else {
        return (
            w.lease,
            String::new(),
            failed(
                tonic::Code::InvalidArgument,
                format!(
                    "digest function {} is not one this worker negotiated with serve",
                    w.digest_function
                ),
            ),
        );
    };
    let Some(digest) = w.action_digest.clone() else {
        return (
            w.lease,
            String::new(),
            failed(
                tonic::Code::InvalidArgument,
                "the lease names no Action".into(),
            ),
        );
    };
    let payload = Any {
        type_url: DIGEST_URL.into(),
        value: digest.encode_to_vec(),
    };
    let secrets: BTreeMap<String, String> = w.secrets;
    // Live output: the runner reports each log's growth; a follower per log sends the new
    // bytes to serve as they come.
    let dir_name = format!("pool-{:032x}", rand::random::<u128>());
    let logs = LiveLogs::default();
    let dir = bot.store.root().join("exec").join(&dir_name);
    let streams = LiveStreams::new(
        logs.register("logs/l/stdout".into(), dir.join("stdout")),
        logs.register("logs/l/stderr".into(), dir.join("stderr")),
    );
    let mut followers = Vec::new();
    for (name, stderr) in [("logs/l/stdout", false), ("logs/l/stderr", true)] {
        let Some(Ok(mut chunks)) = logs.read(name, 0) else {
            continue;
        };
        let (out, lease) = (out.clone(), w.lease);
        followers.push(tokio::spawn(async move {
            use futures::StreamExt;
            // Bounded by the log: the stream ends when the action does.
            while let Some(Ok(chunk)) = chunks.next().await {
                let msg = WorkerMsg {
                    kind: Some(worker_msg::Kind::Output(proto::Output {
                        lease,
                        stderr,
                        data: chunk.data,
                    })),
                };
                if out.send(msg).await.is_err() {
                    break;
                }
            }
        }));
    }
    let sampler = tokio::spawn(send_samples(
        w.lease,
        streams.pgid.subscribe(),
        cancel.clone(),
        out.clone(),
    ));
    let outcome = bot
        .execute(
            Some(&payload),
            secrets,
            w.attempt.max(1),
            Some((dir_name, streams.clone())),
            cancel,
        )
        .await;
    // No sample after the lease ended: the result follows.
    sampler.abort();
    let _ = sampler.await;
    // The output goes out before the result (an action that never started wrote none).
    for p in [&streams.stdout, &streams.stderr] {
        p.send_modify(|p| p.done = true);
    }
    for f in followers {
        let _ = f.await;
    }
    // Its outputs and logs are in the stores now; its directory goes.
    let _ = tokio::task::spawn_blocking(move || remove_tree(&dir)).await;
    let response = match outcome {
        Ok((result, st)) => reapi::ExecuteResponse {
            result: Some(result),
            status: Some(st),
            ..Default::default()
        },
        Err(st) => reapi::ExecuteResponse {
            status: Some(st),
            ..Default::default()
        },
    };
    // The input root, for placement: read back from the store the Action was fetched into.
    let root = BlobDigest::parse(&digest, "Action")
        .ok()
        .and_then(|d| {
            bot.store
                .read_message::<reapi::Action>(bot.function, &d, "Action")
                .ok()
        })
        .and_then(|a| a.input_root_digest.map(|r| r.hash))
        .unwrap_or_default();
    (w.lease, root, response)
}

/// Sends serve a [`proto::Resources`] sample of lease `lease`'s processes about once a
/// second, once its process group is known (`pgid`), until the group is gone, the lease is
/// cancelled, or the task is aborted (the lease ended).
async fn send_samples(
    lease: u64,
    mut pgid: tokio::sync::watch::Receiver<Option<u32>>,
    cancel: CancellationToken,
    out: mpsc::Sender<WorkerMsg>,
) {
    use futures::StreamExt;
    let sampling = async {
        // Bounded: the sender goes with the lease.
        let Ok(group) = pgid.wait_for(Option::is_some).await.map(|p| *p) else {
            return;
        };
        let Some(group) = group else { return };
        let mut samples = std::pin::pin!(crate::observe::resources::samples(group));
        while let Some(s) = samples.next().await {
            let msg = WorkerMsg {
                kind: Some(worker_msg::Kind::Resources(proto::Resources {
                    lease,
                    cpu_percent: s.cpu_percent,
                    rss_bytes: s.rss_bytes,
                })),
            };
            if out.send(msg).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = sampling => {}
        () = cancel.cancelled() => {}
    }
}

/// The pool's snapshot from the serve at `opts`.
pub async fn pool_status(opts: &ClientOptions) -> Result<PoolStatus, RemoteError> {
    let client = RemoteClient::connect(opts).await?;
    let mut pool = PoolClient::new(client.channel());
    pool.status(client.request(StatusRequest {}))
        .await
        .map_err(|s| RemoteError::Rpc {
            endpoint: client.endpoint().to_string(),
            call: "Pool/Status",
            code: s.code(),
            message: s.message().to_owned(),
        })
}
