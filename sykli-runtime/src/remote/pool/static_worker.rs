//! `sykli serve --worker grpc://HOST:PORT`: a plain `sykli worker` (one that listens rather
//! than joins) in the pool. Serve drives it through the worker's own REAPI: a task inside
//! serve joins the scheduler on its behalf like a joined worker, heartbeats while its
//! `GetCapabilities` answers, and for each lease copies the action's blobs to the worker's
//! CAS, executes it there, and copies the outputs and logs back to serve's CAS before
//! reporting the result. Its labels are those the worker lists in `GetCapabilities`. A
//! withdrawn lease is stopped on the worker with `CancelOperation`.

use std::sync::Arc;
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::proto::{self, ServeMsg, serve_msg, worker_msg};
use super::scheduler::PoolScheduler;
use crate::cache::digest::DigestFunction;
use crate::remote::client::execute::{ExecuteOptions, Execution};
use crate::remote::client::{Blob, BlobData, ClientOptions, RemoteClient};
use crate::remote::server::capabilities::LABELS_METADATA;
use crate::remote::server::digests::{BlobDigest, function_of};
use crate::remote::server::status;
use crate::remote::server::store::DiskStore;

/// Drives the plain worker at `opts` as a pool member with `jobs` slots until `stop`;
/// reconnects (bounded pauses) when it is unreachable, logging through `log`.
pub async fn run(
    scheduler: Arc<PoolScheduler>,
    store: Arc<DiskStore>,
    opts: ClientOptions,
    jobs: u32,
    heartbeat: Duration,
    stop: CancellationToken,
    log: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let url = opts.endpoint.to_string();
    // Bounded by `stop`: each turn is one membership of the worker in the pool.
    while !stop.is_cancelled() {
        match RemoteClient::connect(&opts).await {
            Ok(client) => {
                let labels = labels_of(&client).await.unwrap_or_default();
                member(
                    &scheduler, &store, client, &url, labels, jobs, heartbeat, &stop,
                )
                .await;
            }
            Err(e) => log(&format!(
                "static worker {url} unreachable: {}",
                crate::error_chain(&e)
            )),
        }
        tokio::select! {
            () = tokio::time::sleep(heartbeat.max(Duration::from_millis(200))) => {}
            () = stop.cancelled() => {}
        }
    }
}

async fn labels_of(client: &RemoteClient) -> Option<Vec<String>> {
    let mut caps = reapi::capabilities_client::CapabilitiesClient::new(client.channel());
    let response = caps
        .get_capabilities(client.request(reapi::GetCapabilitiesRequest {
            instance_name: client.instance().to_owned(),
        }))
        .await
        .ok()?;
    let v = response.metadata().get(LABELS_METADATA)?.to_str().ok()?;
    Some(
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// The target plugins the plain worker has loaded, `NAME@DIGEST` (none when its admin service
/// does not answer). Asked at each heartbeat (they change with `sykli plugin push --to` it):
/// plugin actions go to it only when it has the plugin.
async fn plugins_of(client: &RemoteClient) -> Vec<String> {
    #[cfg(feature = "plugins")]
    {
        let mut admin = crate::plugin::admin::AdminClient::over(client.clone());
        let mut all: Vec<String> = match admin.list_plugins().await {
            Ok(reply) => reply
                .plugins
                .iter()
                .map(|p| format!("{}@{}", p.name, p.digest))
                .collect(),
            Err(_) => Vec::new(),
        };
        all.sort();
        all
    }
    #[cfg(not(feature = "plugins"))]
    {
        let _ = client;
        Vec::new()
    }
}

#[allow(clippy::too_many_arguments)]
async fn member(
    scheduler: &Arc<PoolScheduler>,
    store: &Arc<DiskStore>,
    client: RemoteClient,
    url: &str,
    labels: Vec<String>,
    jobs: u32,
    heartbeat: Duration,
    stop: &CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<ServeMsg, Status>>();
    let (cpus, memory) = (0.0, 0);
    let mut plugins = plugins_of(&client).await;
    let id = scheduler.add_worker(
        proto::Hello {
            name: url.to_owned(),
            labels: labels.clone(),
            jobs,
            cpus,
            memory,
            version: "static".into(),
            // Its plugins and config are its own (`sykli plugin push --to` it directly).
            plugins: plugins.clone(),
            admin: false,
        },
        tx,
    );
    let mut beat = tokio::time::interval(heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running: std::collections::HashMap<u64, CancellationToken> = Default::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, reapi::ExecuteResponse)>();
    let why = loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(Ok(ServeMsg { kind: Some(serve_msg::Kind::Work(w)) })) => {
                    let token = CancellationToken::new();
                    running.insert(w.lease, token.clone());
                    let (client, store, done) = (client.clone(), store.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let lease = w.lease;
                        let response = work(&client, &store, w, token).await;
                        let _ = done.send((lease, response));
                    });
                }
                Some(Ok(ServeMsg { kind: Some(serve_msg::Kind::Cancel(c)) })) => {
                    if let Some(t) = running.remove(&c.lease) {
                        t.cancel();
                    }
                }
                Some(_) => {}
                None => break "serve dropped it".to_owned(),
            },
            Some((lease, response)) = done_rx.recv() => {
                if running.remove(&lease).is_some() {
                    scheduler.message(id, worker_msg::Kind::Result(proto::LeaseResult {
                        lease,
                        response: response.encode_to_vec(),
                        held: String::new(),
                    }));
                }
            }
            _ = beat.tick() => {
                // Alive while it answers; silent (and so lost after the misses) otherwise.
                if labels_of(&client).await.is_some() {
                    scheduler.message(id, worker_msg::Kind::Heartbeat(proto::Heartbeat {
                        running: running.keys().copied().collect(),
                        held: Vec::new(),
                    }));
                    let now = plugins_of(&client).await;
                    if now != plugins {
                        plugins = now;
                        scheduler.message(id, worker_msg::Kind::Applied(proto::Applied {
                            request: 0,
                            error: String::new(),
                            jobs,
                            labels: labels.clone(),
                            plugins: plugins.clone(),
                        }));
                    }
                } else if scheduler.is_lost(id) {
                    break "it stopped answering".to_owned();
                }
            }
            () = stop.cancelled() => break "serve stops".to_owned(),
        }
    };
    for t in running.values() {
        t.cancel();
    }
    scheduler.worker_gone(id, &why);
}

/// Runs one lease on the plain worker: blobs there, Execute, outputs back.
async fn work(
    client: &RemoteClient,
    store: &Arc<DiskStore>,
    w: proto::Work,
    cancel: CancellationToken,
) -> reapi::ExecuteResponse {
    let failed = |code: tonic::Code, m: String| reapi::ExecuteResponse {
        status: Some(status::status(code, m)),
        ..Default::default()
    };
    let function = match function_of(w.digest_function) {
        Ok(f) => f,
        Err(s) => return failed(tonic::Code::InvalidArgument, s.message().to_owned()),
    };
    let client = match client.with_function(function) {
        Ok(c) => c,
        Err(e) => return failed(tonic::Code::FailedPrecondition, crate::error_chain(&e)),
    };
    let Some(action_digest) = w.action_digest.clone() else {
        return failed(
            tonic::Code::InvalidArgument,
            "the lease names no Action".into(),
        );
    };
    let blobs = {
        let store = store.clone();
        let d = action_digest.clone();
        tokio::task::spawn_blocking(move || blobs_of(&store, function, &d)).await
    };
    let blobs = match blobs {
        Ok(Ok(b)) => b,
        Ok(Err(m)) => return failed(tonic::Code::FailedPrecondition, m),
        Err(e) => return failed(tonic::Code::Internal, e.to_string()),
    };
    if let Err(e) = client.upload_missing(blobs).await {
        return failed(tonic::Code::Unavailable, crate::error_chain(&e));
    }
    let secrets = (!w.secrets.is_empty())
        .then(|| serde_json::to_vec(&w.secrets).ok())
        .flatten();
    let operation = Arc::new(LastOperation::default());
    let opts = ExecuteOptions {
        skip_cache_lookup: true,
        secrets,
        attempt: w.attempt.max(1),
        queue_timeout: Duration::from_secs(24 * 3600),
        cancel,
        live: None,
        platform: String::new(),
        operations: Some(operation.clone()),
        metadata: None,
    };
    let response = match client.execute(&action_digest, &opts).await {
        Ok(Execution::Done { response, .. }) => *response,
        Ok(Execution::Cancelled) => {
            // The lease was withdrawn: the plain worker stops the action too (best effort:
            // a server without CancelOperation finishes it for nobody).
            let name = operation
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(name) = name {
                let _ = client.cancel_operation(&name).await;
            }
            return failed(tonic::Code::Unavailable, "the lease was cancelled".into());
        }
        Err(e) => return failed(tonic::Code::Unavailable, crate::error_chain(&e)),
    };
    if let Some(result) = &response.result
        && let Err(m) = fetch_outputs(&client, store, function, result).await
    {
        return failed(tonic::Code::Unavailable, m);
    }
    response
}

/// The operation a lease runs as on the plain worker, once it is known.
#[derive(Default)]
struct LastOperation(std::sync::Mutex<Option<String>>);

impl crate::exec::OperationJournal for LastOperation {
    fn reattach(&self) -> Option<String> {
        None
    }
    fn attached(&self, operation: &str, _reattached: bool) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(operation.to_owned());
    }
    fn reattach_failed(&self, _operation: &str, _reason: &str) {}
}

/// The Action, its Command and its whole input tree, as blobs of serve's store.
fn blobs_of(
    store: &DiskStore,
    function: DigestFunction,
    action: &reapi::Digest,
) -> Result<Vec<Blob>, String> {
    let parse = |d: &reapi::Digest, what: &str| {
        BlobDigest::parse(d, what).map_err(|s| s.message().to_owned())
    };
    let file = |d: &reapi::Digest, what: &str| -> Result<Blob, String> {
        let bd = parse(d, what)?;
        if !store.has(function, &bd) {
            return Err(format!("{what} {bd} is not in serve's CAS"));
        }
        Ok(Blob {
            digest: d.clone(),
            data: if bd.size == 0 {
                BlobData::Bytes(Vec::new())
            } else {
                BlobData::File(store.blob_path(function, &bd))
            },
        })
    };
    let a: reapi::Action = store
        .read_message(function, &parse(action, "Action")?, "Action")
        .map_err(|e| e.to_string())?;
    let mut out = vec![file(action, "Action")?];
    let cd = a
        .command_digest
        .clone()
        .ok_or("the Action has no command_digest")?;
    out.push(file(&cd, "Command")?);
    let mut pending: Vec<reapi::Digest> = a.input_root_digest.into_iter().collect();
    // Bounded by the tree: each Directory is read once per reference.
    while let Some(d) = pending.pop() {
        out.push(file(&d, "input Directory")?);
        let dir: reapi::Directory = store
            .read_message(function, &parse(&d, "input Directory")?, "Directory")
            .map_err(|e| e.to_string())?;
        for f in &dir.files {
            if let Some(fd) = &f.digest {
                out.push(file(fd, "input file")?);
            }
        }
        pending.extend(dir.directories.iter().filter_map(|s| s.digest.clone()));
    }
    out.sort_by(|x, y| x.digest.hash.cmp(&y.digest.hash));
    out.dedup_by(|x, y| x.digest.hash == y.digest.hash);
    Ok(out)
}

/// Copies what `result` names from the worker's CAS into serve's.
async fn fetch_outputs(
    client: &RemoteClient,
    store: &Arc<DiskStore>,
    function: DigestFunction,
    result: &reapi::ActionResult,
) -> Result<(), String> {
    let mut digests: Vec<reapi::Digest> = Vec::new();
    digests.extend(result.output_files.iter().filter_map(|f| f.digest.clone()));
    digests.extend(result.stdout_digest.clone());
    digests.extend(result.stderr_digest.clone());
    for d in &result.output_directories {
        let Some(tree) = &d.tree_digest else { continue };
        let bytes = client
            .read_blob(tree)
            .await
            .map_err(|e| crate::error_chain(&e))?;
        let t = reapi::Tree::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
        for dir in t.root.iter().chain(t.children.iter()) {
            digests.extend(dir.files.iter().filter_map(|f| f.digest.clone()));
        }
        digests.push(tree.clone());
    }
    for d in digests {
        let bd = BlobDigest::parse(&d, "an output").map_err(|s| s.message().to_owned())?;
        if store.has(function, &bd) {
            continue;
        }
        let bytes = client
            .read_blob(&d)
            .await
            .map_err(|e| crate::error_chain(&e))?;
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.put_bytes(function, &bd, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
