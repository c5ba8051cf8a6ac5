//! [`RemoteExecutor`]: runs the tasks placed on a remote executor through REAPI Execute.
//!
//! It is both the executor and a layer of its own stack (see
//! [`ExecutorEntry::with_layer`](crate::exec::ExecutorEntry::with_layer)): before the first
//! attempt the layer keys the task as an `Action` with the run's one input model (a task
//! without `inputs` gets the project's files) and looks it up in the server's action cache;
//! each attempt uploads the blobs the server lacks, executes, restores the outputs into the
//! workspace and writes the task's output (masked by the run like local output).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use futures::future::BoxFuture;
use prost::Message;

use super::cache_layer::remote_hit;
use super::execute::{ExecuteOptions, Execution};
use super::{Blob, BlobData, RemoteClient, RemoteError, results};
use crate::cache::action::NATIVE_PROGRAM;
use crate::cache::merkle::digest_of_message;
use crate::cache::{Keyed, LocalCache, never_cached};
use crate::exec::{ExecIo, ExecOutcome, ExecRequest, Executor, OutputStream};
use crate::scheduler::{CacheLookup, CacheQuery, TaskCache};

/// Settings of a remote executor.
#[derive(Debug, Clone)]
pub struct RemoteExecutorOptions {
    /// The name tasks `target` and events report (default `remote`).
    pub name: String,
    /// How long an action may stay queued with no worker taking it.
    pub queue_timeout: Duration,
    /// Send secrets to a server that is not a `sykli worker`.
    pub allow_secrets: bool,
}

impl Default for RemoteExecutorOptions {
    fn default() -> Self {
        RemoteExecutorOptions {
            name: "remote".to_owned(),
            queue_timeout: Duration::from_secs(300),
            allow_secrets: false,
        }
    }
}

/// An action ready to execute.
#[derive(Clone)]
struct Prepared {
    keyed: Keyed,
    action: reapi::Action,
    action_digest: reapi::Digest,
    do_not_cache: bool,
    secrets: Vec<String>,
}

/// Runs tasks on a REAPI server. Register it with
/// `ExecutorEntry::remote(executor.clone(), kinds, labels).with_layer(executor)`.
pub struct RemoteExecutor {
    client: RemoteClient,
    keyer: Arc<LocalCache>,
    /// Whether the keyer is this executor's own (not the run's cache): it then records
    /// what remote tasks produced, for their dependents' keys.
    owns_keyer: bool,
    opts: RemoteExecutorOptions,
    root: PathBuf,
    prepared: Mutex<HashMap<String, Result<Prepared, String>>>,
    /// Digests the server is known to hold (uploaded or found by this run).
    present: Mutex<std::collections::HashSet<String>>,
    /// One upload at a time, so a blob several tasks need (the pipeline binary) travels once.
    uploading: tokio::sync::Mutex<()>,
}

impl RemoteExecutor {
    /// An executor on `client`'s server, keying tasks with `keyer` (the run's local cache,
    /// or one of its own when `owns_keyer`) for the project at `root`.
    pub fn new(
        client: RemoteClient,
        keyer: Arc<LocalCache>,
        owns_keyer: bool,
        root: impl Into<PathBuf>,
        opts: RemoteExecutorOptions,
    ) -> RemoteExecutor {
        RemoteExecutor {
            client,
            keyer,
            owns_keyer,
            opts,
            root: root.into(),
            prepared: Mutex::new(HashMap::new()),
            present: Mutex::new(std::collections::HashSet::new()),
            uploading: tokio::sync::Mutex::new(()),
        }
    }

    /// The client.
    pub fn client(&self) -> &RemoteClient {
        &self.client
    }

    fn put(&self, task: &str, p: Result<Prepared, String>) {
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task.to_owned(), p);
    }

    async fn prepare(
        &self,
        query: CacheQuery<'_>,
    ) -> Result<(Prepared, Option<crate::scheduler::CacheHit>), String> {
        let task = query.task;
        let keyed = self.keyer.action_for(query).await?;
        let Keyed::Cacheable { action, .. } = &keyed else {
            let reason = match &keyed {
                Keyed::NotCacheable { reason } => reason.to_string(),
                Keyed::Cacheable { .. } => String::new(),
            };
            return Err(format!("the task cannot be sent as an action: {reason}"));
        };
        let do_not_cache = never_cached(task).is_some();
        let (action_msg, action_digest) = if do_not_cache {
            let mut a = action.action.clone();
            a.do_not_cache = true;
            let d = digest_of_message(action.function, &a.encode_to_vec());
            (a, d)
        } else {
            (action.action.clone(), action.action_digest.clone())
        };
        let mut secrets: Vec<String> = task.secrets.clone();
        secrets.extend(task.secret_refs.iter().map(|r| r.name.clone()));
        secrets.sort();
        secrets.dedup();
        let hit = if do_not_cache {
            None
        } else {
            remote_hit(&self.client, &self.keyer, query, keyed.clone())
                .await
                .map_err(|e| crate::error_chain(&e))?
        };
        Ok((
            Prepared {
                keyed,
                action: action_msg,
                action_digest,
                do_not_cache,
                secrets,
            },
            hit,
        ))
    }

    /// Every blob the action needs: `Action`, `Command`, `Directory` messages, input files.
    fn blobs(&self, p: &Prepared) -> Result<Vec<Blob>, String> {
        let Keyed::Cacheable { action, .. } = &p.keyed else {
            return Err("internal: the action has no messages".into());
        };
        let mut blobs = vec![
            Blob {
                digest: p.action_digest.clone(),
                data: BlobData::Bytes(p.action.encode_to_vec()),
            },
            Blob {
                digest: action.command_digest.clone(),
                data: BlobData::Bytes(action.command.encode_to_vec()),
            },
        ];
        let dirs: HashMap<&str, &[u8]> = action
            .input_root
            .directories
            .iter()
            .map(|(d, b)| (d.hash.as_str(), b.as_slice()))
            .collect();
        for (d, b) in &action.input_root.directories {
            blobs.push(Blob {
                digest: d.clone(),
                data: BlobData::Bytes(b.clone()),
            });
        }
        let mut stack = vec![(String::new(), action.input_root.digest.hash.clone())];
        let mut seen = std::collections::HashSet::new();
        while let Some((prefix, hash)) = stack.pop() {
            let bytes = dirs
                .get(hash.as_str())
                .ok_or_else(|| format!("internal: directory {hash} missing from the input root"))?;
            let dir = reapi::Directory::decode(*bytes).map_err(|e| format!("internal: {e}"))?;
            for f in dir.files {
                let Some(d) = f.digest else { continue };
                if seen.insert(d.hash.clone()) {
                    // The pipeline binary of a native task is this program.
                    let path = if prefix.is_empty() && f.name == NATIVE_PROGRAM && f.is_executable {
                        std::env::current_exe()
                            .map_err(|e| format!("failed to find this program's executable: {e}"))?
                    } else {
                        self.root.join(join(&prefix, &f.name))
                    };
                    blobs.push(Blob {
                        digest: d,
                        data: BlobData::File(path),
                    });
                }
            }
            for sub in dir.directories {
                if let Some(d) = sub.digest {
                    stack.push((join(&prefix, &sub.name), d.hash));
                }
            }
        }
        Ok(blobs)
    }

    async fn run(
        &self,
        req: &ExecRequest,
        io: &ExecIo,
        p: &Prepared,
    ) -> Result<ExecOutcome, String> {
        let err = |e: RemoteError| crate::error_chain(&e);
        let info = self.client.info();
        let secrets = if p.secrets.is_empty() {
            None
        } else if !info.sykli_worker && !self.opts.allow_secrets {
            return Ok(ExecOutcome::errored(
                "checking secrets",
                format!(
                    "the task receives secrets ({}) and {} is not a sykli worker: sykli sends \
                     secrets only to sykli workers (never inside an Action); pass \
                     --remote-allow-secrets to send them to this server as request metadata",
                    p.secrets.join(", "),
                    self.client.endpoint()
                ),
            ));
        } else {
            let values: BTreeMap<&str, &str> = p
                .secrets
                .iter()
                .filter_map(|n| req.env.get(n).map(|v| (n.as_str(), v.as_str())))
                .collect();
            Some(serde_json::to_vec(&values).map_err(|e| e.to_string())?)
        };
        let mut blobs = self.blobs(p)?;
        {
            let _one = self.uploading.lock().await;
            {
                let present = self.present.lock().unwrap_or_else(|p| p.into_inner());
                blobs.retain(|b| !present.contains(&b.digest.hash));
            }
            let hashes: Vec<String> = blobs.iter().map(|b| b.digest.hash.clone()).collect();
            self.client.upload_missing(blobs).await.map_err(err)?;
            self.present
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(hashes);
        }
        let platform = p
            .action
            .platform
            .as_ref()
            .map(|pl| {
                pl.properties
                    .iter()
                    .map(|pr| format!("{}={}", pr.name, pr.value))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let opts = ExecuteOptions {
            skip_cache_lookup: p.do_not_cache,
            secrets,
            attempt: io.attempt,
            queue_timeout: self.opts.queue_timeout,
            cancel: io.cancel.clone(),
            live: Some(io.output.clone()),
            platform,
            operations: io.operations.clone(),
            metadata: Some(super::execute::request_metadata(
                &req.run_id,
                &req.task,
                &p.action_digest.hash,
            )),
        };
        let (response, live) = match self
            .client
            .execute(&p.action_digest, &opts)
            .await
            .map_err(err)?
        {
            Execution::Cancelled => return Ok(ExecOutcome::Cancelled),
            Execution::Done { response, live } => (response, live),
        };
        // The output first, whatever happened: it says why.
        if let Some(result) = &response.result {
            let (stdout, stderr) = results::logs(&self.client, result).await.map_err(err)?;
            let skip = |bytes: &[u8], n: u64| bytes.get(n as usize..).unwrap_or(&[]).to_vec();
            let (stdout, stderr) = (skip(&stdout, live.0), skip(&stderr, live.1));
            if !stdout.is_empty() {
                io.output.write(OutputStream::Stdout, &stdout);
            }
            if !stderr.is_empty() {
                io.output.write(OutputStream::Stderr, &stderr);
            }
        }
        if let Some(st) = &response.status
            && st.code != 0
        {
            let code = tonic::Code::from_i32(st.code);
            if code == tonic::Code::DeadlineExceeded {
                return Ok(ExecOutcome::TimedOut);
            }
            // Stopped on the server on request (`sykli cancel` there, CancelOperation): the
            // task failed there, it is not an outage to run again.
            if code == tonic::Code::Cancelled {
                return Ok(ExecOutcome::cancelled_remotely(format!(
                    "cancelled on the server {} ({})",
                    self.client.endpoint(),
                    st.message
                )));
            }
            let mut message = format!(
                "{}: {}",
                self.client.endpoint(),
                super::status_text(code, &st.message)
            );
            if !response.message.is_empty() {
                message.push_str(&format!(" ({})", response.message));
            }
            return Ok(ExecOutcome::errored("remote execution", message));
        }
        let result = response.result.ok_or_else(|| {
            format!(
                "{}: the execution returned no result",
                self.client.endpoint()
            )
        })?;
        results::restore(&self.client, &result, &req.workdir)
            .await
            .map_err(err)?;
        Ok(ExecOutcome::Exited {
            code: result.exit_code,
        })
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}/{b}")
    }
}

impl Executor for RemoteExecutor {
    fn name(&self) -> &str {
        &self.opts.name
    }

    fn execute<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, ExecOutcome> {
        Box::pin(async move {
            let prepared = self
                .prepared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&req.task)
                .cloned();
            let p = match prepared {
                Some(Ok(p)) => p,
                Some(Err(e)) => return ExecOutcome::errored("preparing the remote action", e),
                None => {
                    return ExecOutcome::errored(
                        "preparing the remote action",
                        "the task was not prepared (background tasks cannot run remotely)",
                    );
                }
            };
            let run = self.run(req, &io, &p);
            let outcome = match req.timeout {
                Some(limit) => match tokio::time::timeout(limit, run).await {
                    Ok(r) => r,
                    Err(_) => return ExecOutcome::TimedOut,
                },
                None => run.await,
            };
            outcome.unwrap_or_else(|e| ExecOutcome::errored("remote execution", e))
        })
    }
}

impl TaskCache for RemoteExecutor {
    fn lookup<'a>(&'a self, query: CacheQuery<'a>) -> BoxFuture<'a, Result<CacheLookup, String>> {
        Box::pin(async move {
            match self.prepare(query).await {
                Ok((p, hit)) => {
                    self.put(&query.task.name, Ok(p));
                    Ok(match hit {
                        Some(hit) => CacheLookup::Hit(hit),
                        None => CacheLookup::Miss { reason: None },
                    })
                }
                Err(e) => {
                    self.put(&query.task.name, Err(e.clone()));
                    Err(e)
                }
            }
        })
    }

    fn store<'a>(
        &'a self,
        query: CacheQuery<'a>,
        outputs: &'a BTreeMap<String, PathBuf>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.prepared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&query.task.name);
            if self.owns_keyer {
                self.keyer.store(query, outputs).await?;
            }
            Ok(())
        })
    }
}
