//! [`RemoteCache`]: a remote action cache stacked behind the local cache (local in front of
//! remote, as NativeLink's fast/slow store): a local miss is looked up remotely, a remote hit
//! is restored and also fills the local cache, and a task that passed is published (unless
//! read-only).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use prost::Message;

use super::{Blob, BlobData, RemoteClient, RemoteError, results};
use crate::cache::{Keyed, LocalCache};
use crate::scheduler::{CacheHit, CacheLookup, CacheQuery, TaskCache};

/// The local cache with a remote action cache behind it; a [`TaskCache`] like any other.
pub struct RemoteCache {
    local: Arc<LocalCache>,
    client: RemoteClient,
    read_only: bool,
}

impl RemoteCache {
    /// `local` in front of the cache at `client`; with `read_only` nothing is published.
    pub fn new(local: Arc<LocalCache>, client: RemoteClient, read_only: bool) -> RemoteCache {
        RemoteCache {
            local,
            client,
            read_only,
        }
    }

    /// The remote client.
    pub fn client(&self) -> &RemoteClient {
        &self.client
    }
}

/// Looks `keyed` up at `client`; on a hit restores its outputs under the query's workdir,
/// records it in `local` and returns the hit for the scheduler. Shared by the remote cache
/// and the remote executor's own action-cache check.
pub(super) async fn remote_hit(
    client: &RemoteClient,
    local: &LocalCache,
    query: CacheQuery<'_>,
    keyed: Keyed,
) -> Result<Option<CacheHit>, RemoteError> {
    let Keyed::Cacheable { action, .. } = &keyed else {
        return Ok(None);
    };
    let digest = action.action_digest.clone();
    let Some(result) = client.get_action_result(&digest).await? else {
        return Ok(None);
    };
    if result.exit_code != 0 {
        return Ok(None);
    }
    // Every declared output must be in the result, or it is not this task's result.
    let named: std::collections::BTreeSet<&str> = result
        .output_files
        .iter()
        .map(|f| f.path.as_str())
        .chain(result.output_directories.iter().map(|d| d.path.as_str()))
        .collect();
    if query.task.outputs.values().any(|p| {
        let p = p.trim_start_matches("./").trim_end_matches('/');
        !named.contains(p)
    }) {
        return Ok(None);
    }
    results::restore(client, &result, query.workdir).await?;
    let (stdout, stderr) = results::logs(client, &result).await?;
    let mut log = stdout;
    log.extend_from_slice(&stderr);
    let file = tempfile::NamedTempFile::new().map_err(|e| RemoteError::Io {
        action: "create a temporary file in",
        path: std::env::temp_dir(),
        source: e,
    })?;
    std::fs::write(file.path(), &log).map_err(|e| RemoteError::Io {
        action: "write",
        path: file.path().to_path_buf(),
        source: e,
    })?;
    if let Err(e) = local
        .store_found(query, keyed.clone(), file.path().to_path_buf())
        .await
    {
        // The hit stands; only the local copy is missing.
        log.extend_from_slice(
            format!("sykli: storing the remote hit locally failed: {e}\n").as_bytes(),
        );
    }
    let outputs: BTreeMap<String, PathBuf> = query
        .task
        .outputs
        .iter()
        .map(|(n, p)| (n.clone(), query.workdir.join(p)))
        .collect();
    Ok(Some(CacheHit {
        outputs,
        message: Some(format!(
            "remote cache hit {} ({})",
            &digest.hash[..16.min(digest.hash.len())],
            client.endpoint()
        )),
        log: Some(log),
    }))
}

/// Publishes the result of a task that passed here under `keyed`.
pub(super) async fn publish(
    client: &RemoteClient,
    query: CacheQuery<'_>,
    keyed: &Keyed,
    outputs: &BTreeMap<String, PathBuf>,
) -> Result<(), RemoteError> {
    let Keyed::Cacheable { action, .. } = keyed else {
        return Ok(());
    };
    let mut paths: Vec<String> = query
        .task
        .outputs
        .values()
        .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_owned())
        .collect();
    for abs in outputs.values() {
        if let Ok(rel) = abs.strip_prefix(query.workdir) {
            paths.push(rel.to_string_lossy().into_owned());
        }
    }
    paths.sort();
    paths.dedup();
    let log = std::fs::read(query.log_path).unwrap_or_default();
    let (result, blobs) = results::build(client, query.workdir, &paths, log)?;
    let extra = vec![
        Blob {
            digest: action.action_digest.clone(),
            data: BlobData::Bytes(action.action.encode_to_vec()),
        },
        Blob {
            digest: action.command_digest.clone(),
            data: BlobData::Bytes(action.command.encode_to_vec()),
        },
    ];
    results::publish(client, &action.action_digest, result, blobs, extra).await?;
    Ok(())
}

impl TaskCache for RemoteCache {
    fn lookup<'a>(&'a self, query: CacheQuery<'a>) -> BoxFuture<'a, Result<CacheLookup, String>> {
        Box::pin(async move {
            let local = self.local.lookup(query).await?;
            let reason = match local {
                CacheLookup::Hit(hit) => return Ok(CacheLookup::Hit(hit)),
                CacheLookup::Miss { reason } => reason,
            };
            let Some(keyed) = self.local.pending_key(&query.task.name) else {
                return Ok(CacheLookup::Miss { reason });
            };
            match remote_hit(&self.client, &self.local, query, keyed).await {
                Ok(Some(hit)) => Ok(CacheLookup::Hit(hit)),
                Ok(None) => Ok(CacheLookup::Miss { reason }),
                Err(e) => Err(format!("remote cache: {}", crate::error_chain(&e))),
            }
        })
    }

    fn store<'a>(
        &'a self,
        query: CacheQuery<'a>,
        outputs: &'a BTreeMap<String, PathBuf>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let keyed = self.local.pending_key(&query.task.name);
            self.local.store(query, outputs).await?;
            if self.read_only {
                return Ok(());
            }
            if let Some(keyed) = keyed {
                publish(&self.client, query, &keyed, outputs)
                    .await
                    .map_err(|e| format!("remote cache: {}", crate::error_chain(&e)))?;
            }
            Ok(())
        })
    }
}
