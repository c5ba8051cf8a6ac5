//! `sykli worker --bot-of URL`: the worker as a bot of a Remote Workers API scheduler
//! (`google.devtools.remoteworkers.v1test2.Bots`, as BuildGrid serves it), so a cluster that
//! schedules through that API runs its actions with sykli's executors.
//!
//! One session, one lease at a time. For each lease: the Action (inline, or its digest) and
//! everything it names are fetched from the scheduler's CAS into the worker's store, the
//! action runs through the same [`Runner`] as the worker's own Execution service (inputs
//! hardlinked, timeouts, no orphans), and the outputs and logs are uploaded back before the
//! `ActionResult` is reported on the lease. On shutdown a running action is stopped and the
//! session is reported `BOT_TERMINATING`, so the scheduler hands it no more work.

pub mod proto;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::protobuf::Any;
use bazel_remote_apis::google::rpc;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use self::proto::{
    BotSession, BotStatus, BotsClient, CreateBotSessionRequest, Device, KeyValue, Lease,
    LeaseState, UpdateBotSessionRequest, Worker,
};
use super::client::cas::{Blob, BlobData};
use super::client::{ClientOptions, RemoteClient, RemoteError};
use super::server::digests::BlobDigest;
use super::server::platform::Labels;
use super::server::runner::{Job, Runner};
use super::server::store::{DiskStore, StoreError};
use crate::cache::digest::DigestFunction;
use crate::exec::process::ProcessExecutor;

/// The deadline of `CreateBotSession`: under BuildGrid's long-poll threshold (3 s plus
/// margin), so the session is answered at once.
const CREATE_TIMEOUT: Duration = Duration::from_secs(3);
/// The deadline of one `UpdateBotSession`: the scheduler long-polls for work within it.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);
/// The deadline of the last `UpdateBotSession`, which says the bot is leaving.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Consecutive failed polls (scheduler unreachable) before the bot gives up.
const MAX_FAILED_POLLS: u32 = 30;
const ACTION_URL: &str = "type.googleapis.com/build.bazel.remote.execution.v2.Action";
pub(crate) const DIGEST_URL: &str = "type.googleapis.com/build.bazel.remote.execution.v2.Digest";
const ACTION_RESULT_URL: &str = "type.googleapis.com/build.bazel.remote.execution.v2.ActionResult";

/// How the bot is set up.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// The scheduler: its Bots service, and the CAS its actions name.
    pub scheduler: ClientOptions,
    /// The worker's store (its CAS holds what the actions need while they run).
    pub store: PathBuf,
    /// Platform properties offered besides this host's `OSFamily` and `ISA` (`K=V`).
    pub labels: Vec<(String, String)>,
    /// SIGTERM-to-SIGKILL grace when stopping an action.
    pub kill_grace: Duration,
    /// Run host actions in the sandbox (as `sykli worker` does by default on Linux).
    pub sandbox: bool,
}

/// Why the bot stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The scheduler could not be reached, or refused the connection.
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
    /// A Bots call failed.
    #[error("{call} on {endpoint} failed: {code:?}: {message}")]
    Rpc {
        /// The call.
        call: &'static str,
        /// The scheduler.
        endpoint: String,
        /// The gRPC code.
        code: Code,
        /// The server's message.
        message: String,
    },
}

/// What the bot reports as it goes (the CLI prints these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotEvent {
    /// The session exists: work can come.
    Joined {
        /// The session's name.
        session: String,
    },
    /// A lease finished.
    Ran {
        /// The lease.
        lease: String,
        /// The action's exit code, or the error that kept it from running.
        outcome: Result<i32, String>,
    },
    /// The session was reported `BOT_TERMINATING` (or that report failed: the message).
    Left {
        /// The session's name.
        session: String,
        /// Why the report failed, when it did.
        error: Option<String>,
    },
}

/// Runs actions named in a scheduler's CAS with the local runner: fetches what they need
/// into the worker's store, runs them, uploads their outputs back. Shared by the bot and
/// `sykli worker --join` (the pool).
pub(crate) struct Bot {
    pub(crate) client: RemoteClient,
    pub(crate) function: DigestFunction,
    pub(crate) store: Arc<DiskStore>,
    pub(crate) labels: Labels,
    pub(crate) runner: Runner,
}

/// Runs the bot until `shutdown` is cancelled (then leaves its session and returns `Ok`), or
/// until the scheduler fails it.
pub async fn run(
    config: BotConfig,
    shutdown: CancellationToken,
    mut events: impl FnMut(BotEvent) + Send,
) -> Result<(), BotError> {
    let client = RemoteClient::connect(&config.scheduler).await?;
    let function = client.function();
    let store = DiskStore::open_shared(config.store.clone())
        .await
        .map_err(|source| BotError::Store {
            path: config.store.clone(),
            source,
        })?;
    let bot_id = format!("sykli-worker-{}", std::process::id());
    let labels = Labels::new(config.labels.clone(), false);
    #[cfg(target_os = "linux")]
    let sandbox = config
        .sandbox
        .then(crate::exec::sandbox::SandboxExecutor::default);
    #[cfg(not(target_os = "linux"))]
    let sandbox = None;
    let runner = Runner::new(
        store.clone(),
        ProcessExecutor::new(),
        sandbox,
        #[cfg(feature = "docker")]
        None,
        bot_id.clone(),
        config.kill_grace,
    );
    let properties = labels
        .advertised()
        .into_iter()
        .filter_map(|kv| {
            let (key, value) = kv.split_once('=')?;
            Some(KeyValue {
                key: key.to_owned(),
                value: value.to_owned(),
            })
        })
        .collect();
    let bot = Bot {
        client,
        function,
        store,
        labels,
        runner,
    };
    let endpoint = bot.client.endpoint().to_string();
    let rpc = |call: &'static str| {
        let endpoint = endpoint.clone();
        move |s: tonic::Status| BotError::Rpc {
            call,
            endpoint,
            code: s.code(),
            message: s.message().to_owned(),
        }
    };
    let mut bots = BotsClient::new(bot.client.channel());
    let new_session = BotSession {
        bot_id,
        status: BotStatus::Ok as i32,
        worker: Some(Worker {
            devices: vec![Device {
                handle: "sykli-worker".into(),
                properties,
            }],
            configs: vec![KeyValue {
                key: "capacity".into(),
                value: "1".into(),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let request = bot.client.request(CreateBotSessionRequest {
        parent: bot.client.instance().to_owned(),
        bot_session: Some(new_session),
    });
    let mut session = tokio::select! {
        r = bots.create_bot_session(request, CREATE_TIMEOUT) => r.map_err(rpc("CreateBotSession"))?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    events(BotEvent::Joined {
        session: session.name.clone(),
    });

    let mut failed_polls = 0;
    while !shutdown.is_cancelled() {
        for lease in &mut session.leases {
            if lease.state == LeaseState::Active as i32 && !shutdown.is_cancelled() {
                let outcome = bot.work(lease, shutdown.child_token()).await;
                events(BotEvent::Ran {
                    lease: lease.id.clone(),
                    outcome,
                });
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        let request = bot.client.request(UpdateBotSessionRequest {
            name: session.name.clone(),
            bot_session: Some(session.clone()),
        });
        tokio::select! {
            r = bots.update_bot_session(request, POLL_TIMEOUT) => match r {
                Ok(s) => {
                    session = s;
                    failed_polls = 0;
                }
                // The long poll ran out without work: ask again.
                Err(s) if s.code() == Code::DeadlineExceeded => failed_polls = 0,
                Err(s) if s.code() == Code::Unavailable && failed_polls < MAX_FAILED_POLLS => {
                    failed_polls += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(s) => return Err(rpc("UpdateBotSession")(s)),
            },
            _ = shutdown.cancelled() => break,
        }
    }

    session.status = BotStatus::BotTerminating as i32;
    let name = session.name.clone();
    let request = bot.client.request(UpdateBotSessionRequest {
        name: name.clone(),
        bot_session: Some(session),
    });
    let error = bots
        .update_bot_session(request, LEAVE_TIMEOUT)
        .await
        .err()
        .map(|s| format!("{:?}: {}", s.code(), s.message()));
    events(BotEvent::Left {
        session: name,
        error,
    });
    Ok(())
}

fn status(code: Code, message: impl Into<String>) -> rpc::Status {
    rpc::Status {
        code: code as i32,
        message: message.into(),
        details: Vec::new(),
    }
}

impl Bot {
    /// Runs `lease` and records its outcome on it (`COMPLETED`, with a result or a status).
    async fn work(&self, lease: &mut Lease, cancel: CancellationToken) -> Result<i32, String> {
        let outcome = self
            .execute(lease.payload.as_ref(), Default::default(), 1, None, cancel)
            .await;
        let reported = match outcome {
            Ok((result, st)) => {
                let exit = result.exit_code;
                lease.result = Some(Any {
                    type_url: ACTION_RESULT_URL.into(),
                    value: result.encode_to_vec(),
                });
                let ok = st.code == Code::Ok as i32;
                let message = st.message.clone();
                lease.status = Some(st);
                if ok { Ok(exit) } else { Err(message) }
            }
            Err(st) => {
                let message = st.message.clone();
                lease.status = Some(st);
                Err(message)
            }
        };
        lease.state = LeaseState::Completed as i32;
        reported
    }

    /// Runs the Action in `payload` (inline, or its `Digest`) with `secrets` in its
    /// environment: its result (outputs uploaded) and status, or why it could not run. With
    /// `live` (a directory name under the store's `exec/` and its progress), its logs can be
    /// followed while it runs.
    pub(crate) async fn execute(
        &self,
        payload: Option<&Any>,
        secrets: std::collections::BTreeMap<String, String>,
        attempt: u32,
        live: Option<(String, super::server::live::LiveStreams)>,
        cancel: CancellationToken,
    ) -> Result<(reapi::ActionResult, rpc::Status), rpc::Status> {
        let payload =
            payload.ok_or_else(|| status(Code::InvalidArgument, "the lease has no payload"))?;
        let invalid = |what: &str, e: prost::DecodeError| {
            status(
                Code::InvalidArgument,
                format!("the lease's {what} does not decode: {e}"),
            )
        };
        let (action, action_digest) = if payload.type_url == ACTION_URL {
            let action = reapi::Action::decode(payload.value.as_slice())
                .map_err(|e| invalid("Action", e))?;
            (action, BlobDigest::of(self.function, &payload.value))
        } else if payload.type_url == DIGEST_URL {
            let digest = reapi::Digest::decode(payload.value.as_slice())
                .map_err(|e| invalid("Digest", e))?;
            let bytes = self.fetch(&digest, "Action").await?;
            let action =
                reapi::Action::decode(bytes.as_slice()).map_err(|e| invalid("Action", e))?;
            (action, parse(&digest, "the lease's Action digest")?)
        } else {
            return Err(status(
                Code::InvalidArgument,
                format!("unknown lease payload {}", payload.type_url),
            ));
        };
        let command_digest = action
            .command_digest
            .as_ref()
            .ok_or_else(|| status(Code::InvalidArgument, "the Action has no command_digest"))?;
        let bytes = self.fetch(command_digest, "Command").await?;
        let command =
            reapi::Command::decode(bytes.as_slice()).map_err(|e| invalid("Command", e))?;
        let root = action
            .input_root_digest
            .clone()
            .ok_or_else(|| status(Code::InvalidArgument, "the Action has no input_root_digest"))?;
        self.fetch_tree(root).await?;
        #[allow(deprecated)]
        let platform = action.platform.as_ref().or(command.platform.as_ref());
        let placement = self
            .labels
            .place(platform)
            .map_err(|m| status(Code::FailedPrecondition, m))?;
        let job = Job {
            function: self.function,
            action_digest,
            action,
            command,
            placement,
            secrets,
            attempt,
            // The scheduler streams no logs from its bots; the result carries them.
            dir_name: live.as_ref().map_or_else(
                || format!("bot-{:032x}", rand::random::<u128>()),
                |l| l.0.clone(),
            ),
            live: live.map(|l| l.1),
            queued: SystemTime::now(),
        };
        let response = self.runner.run(&job, cancel).await;
        let st = response.status.unwrap_or_else(|| status(Code::Ok, ""));
        let Some(result) = response.result else {
            return Err(st);
        };
        self.upload_outputs(&result).await?;
        Ok((result, st))
    }

    /// A blob from the scheduler's CAS, kept in the worker's store too (unless it is there).
    async fn fetch(&self, digest: &reapi::Digest, what: &str) -> Result<Vec<u8>, rpc::Status> {
        let d = parse(digest, what)?;
        let (store, function) = (self.store.clone(), self.function);
        let local = tokio::task::spawn_blocking(move || {
            store
                .has(function, &d)
                .then(|| store.read(function, &d).ok())
                .flatten()
        })
        .await
        .ok()
        .flatten();
        if let Some(bytes) = local {
            return Ok(bytes);
        }
        let bytes = self.client.read_blob(digest).await.map_err(|e| {
            status(
                Code::FailedPrecondition,
                format!(
                    "{what} {}/{}: {}",
                    digest.hash,
                    digest.size_bytes,
                    crate::error_chain(&e)
                ),
            )
        })?;
        let (store, function, kept) = (self.store.clone(), self.function, bytes.clone());
        tokio::task::spawn_blocking(move || store.put_bytes(function, &d, &kept))
            .await
            .map_err(|e| status(Code::Internal, format!("store task failed: {e}")))?
            .map_err(|e| {
                status(
                    Code::Internal,
                    format!("{what}: {}", crate::error_chain(&e)),
                )
            })?;
        Ok(bytes)
    }

    /// Every Directory and file of the input root, fetched into the store.
    async fn fetch_tree(&self, root: reapi::Digest) -> Result<(), rpc::Status> {
        let mut pending = vec![root];
        // Bounded by the tree itself: each Directory is visited once per reference.
        while let Some(dir_digest) = pending.pop() {
            let bytes = self.fetch(&dir_digest, "input Directory").await?;
            let dir = reapi::Directory::decode(bytes.as_slice()).map_err(|e| {
                status(
                    Code::InvalidArgument,
                    format!("an input Directory does not decode: {e}"),
                )
            })?;
            for file in &dir.files {
                let digest = file.digest.as_ref().ok_or_else(|| {
                    status(
                        Code::InvalidArgument,
                        format!("input file {} has no digest", file.name),
                    )
                })?;
                let d = parse(digest, "an input file")?;
                let (store, function) = (self.store.clone(), self.function);
                let present = tokio::task::spawn_blocking(move || store.has(function, &d))
                    .await
                    .unwrap_or(false);
                if !present {
                    self.fetch(digest, "input file").await?;
                }
            }
            for sub in &dir.directories {
                let digest = sub.digest.clone().ok_or_else(|| {
                    status(
                        Code::InvalidArgument,
                        format!("input folder {} has no digest", sub.name),
                    )
                })?;
                pending.push(digest);
            }
        }
        Ok(())
    }

    /// Uploads what `result` names (files, trees and the files in them, logs) to the
    /// scheduler's CAS, skipping what it has.
    async fn upload_outputs(&self, result: &reapi::ActionResult) -> Result<(), rpc::Status> {
        let mut digests: Vec<reapi::Digest> = Vec::new();
        for f in &result.output_files {
            digests.extend(f.digest.clone());
        }
        digests.extend(result.stdout_digest.clone());
        digests.extend(result.stderr_digest.clone());
        for d in &result.output_directories {
            let Some(tree_digest) = &d.tree_digest else {
                continue;
            };
            digests.push(tree_digest.clone());
            let bytes = self.fetch(tree_digest, "output Tree").await?;
            let tree = reapi::Tree::decode(bytes.as_slice()).map_err(|e| {
                status(
                    Code::Internal,
                    format!("output Tree {} does not decode: {e}", d.path),
                )
            })?;
            for dir in tree.root.iter().chain(tree.children.iter()) {
                for f in &dir.files {
                    digests.extend(f.digest.clone());
                }
            }
        }
        let mut blobs = Vec::with_capacity(digests.len());
        for digest in digests {
            let d = parse(&digest, "an output")?;
            let data = if d.size == 0 {
                BlobData::Bytes(Vec::new())
            } else {
                BlobData::File(self.store.blob_path(self.function, &d))
            };
            blobs.push(Blob { digest, data });
        }
        self.client.upload_missing(blobs).await.map_err(|e| {
            status(
                Code::Unavailable,
                format!("uploading the outputs failed: {}", crate::error_chain(&e)),
            )
        })?;
        Ok(())
    }
}

fn parse(digest: &reapi::Digest, what: &str) -> Result<BlobDigest, rpc::Status> {
    BlobDigest::parse(digest, what).map_err(|s| status(Code::InvalidArgument, s.message()))
}
