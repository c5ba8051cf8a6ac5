//! [`RemoteSetup`]: what a run uses remotely, connected, ready for
//! [`RunBuilder::remote`](crate::scheduler::RunBuilder::remote) to stack.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{RemoteCache, RemoteClient, RemoteExecutor, RemoteExecutorOptions};
use crate::cache::{DigestFunction, LocalCache};
use crate::exec::{ExecIo, ExecOutcome, ExecRequest, Executor, ExecutorEntry, WorkKind};
use crate::scheduler::TaskCache;

/// The kinds of work a remote executor runs (container work only when the server does).
pub const REMOTE_KINDS: &[WorkKind] = &[WorkKind::Command, WorkKind::Container, WorkKind::Native];

fn kinds(client: &RemoteClient) -> Vec<WorkKind> {
    REMOTE_KINDS
        .iter()
        .copied()
        .filter(|k| *k != WorkKind::Container || client.info().runs_containers())
        .collect()
}

/// A remote executor as configured: connected, or unreachable with the reason.
pub enum RemoteExecution {
    /// Connected.
    Ready {
        /// The server.
        client: RemoteClient,
        /// Settings.
        options: RemoteExecutorOptions,
    },
    /// Could not be reached: tasks that must run remotely are errored with the reason;
    /// `prefer: remote` tasks run locally.
    Unreachable {
        /// The executor's name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The remote cache and executor of a run.
#[derive(Default)]
pub struct RemoteSetup {
    /// A remote action cache behind the local one.
    pub cache: Option<RemoteClient>,
    /// Publish nothing to the remote cache.
    pub cache_read_only: bool,
    /// A remote executor.
    pub execution: Option<RemoteExecution>,
    /// Labels the remote executor carries besides `remote` and those its server advertises
    /// ([`super::ServerInfo::placement_labels`]).
    pub labels: Vec<String>,
}

impl RemoteSetup {
    /// The digest function keys are made with: the one negotiated with the servers (the
    /// caller connects both with one function; see [`RemoteClient::with_function`]).
    pub fn digest_function(&self) -> DigestFunction {
        if let Some(RemoteExecution::Ready { client, .. }) = &self.execution {
            return client.function();
        }
        self.cache
            .as_ref()
            .map_or(DigestFunction::Blake3, RemoteClient::function)
    }

    /// Stacks the remote cache behind `local` (when the run has a local cache) and makes
    /// the remote executor's registry entry; `keyer` opens a local cache for keying when
    /// the run has none. Returns (the run's cache, the executor entry or why there is none).
    pub(crate) fn stack(
        self,
        local: Option<Arc<LocalCache>>,
        keyer: impl FnOnce() -> Result<Arc<LocalCache>, String>,
        root: &Path,
    ) -> (Option<Arc<dyn TaskCache>>, EntryOrWhyNot) {
        let cache = match (&self.cache, &local) {
            (Some(client), Some(local)) => Some(Arc::new(RemoteCache::new(
                local.clone(),
                client.clone(),
                self.cache_read_only,
            )) as Arc<dyn TaskCache>),
            _ => None,
        };
        let entry = match self.execution {
            None => Ok(None),
            Some(RemoteExecution::Unreachable { name, reason }) => {
                let e: Arc<dyn Executor> = Arc::new(Unreachable {
                    name,
                    reason: reason.clone(),
                });
                Ok(Some(
                    ExecutorEntry::remote(e, REMOTE_KINDS, self.labels.clone()).unreachable(reason),
                ))
            }
            Some(RemoteExecution::Ready { client, options }) => {
                let (keyer, owns) = match local {
                    Some(l) => (Ok(l), false),
                    None => (keyer(), true),
                };
                match keyer {
                    Ok(keyer) => {
                        let mut labels = client.info().placement_labels();
                        labels.extend(self.labels.iter().cloned());
                        let runs = kinds(&client);
                        let exec =
                            Arc::new(RemoteExecutor::new(client, keyer, owns, root, options));
                        Ok(Some(
                            ExecutorEntry::remote(exec.clone() as Arc<dyn Executor>, &runs, labels)
                                .with_layer(exec),
                        ))
                    }
                    Err(e) => Err(format!(
                        "the remote executor is not registered: it keys tasks with the local \
                         cache, which could not be opened: {e}"
                    )),
                }
            }
        };
        (cache, entry)
    }
}

/// The remote executor's registry entry, none, or why it could not be made.
type EntryOrWhyNot = Result<Option<ExecutorEntry>, String>;

/// A remote executor that could not be reached: every attempt is errored with the reason.
struct Unreachable {
    name: String,
    reason: String,
}

impl Executor for Unreachable {
    fn name(&self) -> &str {
        &self.name
    }

    fn execute<'a>(&'a self, _req: &'a ExecRequest, _io: ExecIo) -> BoxFuture<'a, ExecOutcome> {
        let outcome = ExecOutcome::errored("connecting to the remote executor", &self.reason);
        Box::pin(async move { outcome })
    }
}
