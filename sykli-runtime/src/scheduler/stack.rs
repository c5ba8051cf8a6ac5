//! The executor stack: each registered executor with the run's layers around it (as buck2
//! stacks caching around its one executor trait). Today the one layer is the result cache;
//! the scheduler calls the stack the plan chose and never asks whether a cache exists.

use std::sync::Arc;

use super::cache_hook::{CacheLookup, CacheQuery, TaskCache};
use crate::exec::{ExecIo, ExecRequest, Executed, Executor, ExecutorRegistry};

/// One executor and the layers stacked around it.
pub(super) struct Stacked {
    executor: Arc<dyn Executor>,
    cache: Option<Arc<dyn TaskCache>>,
}

impl Stacked {
    /// Stacks `cache` (if any) around every executor of `registry`, by registry index.
    pub fn all(registry: &ExecutorRegistry, cache: Option<Arc<dyn TaskCache>>) -> Vec<Stacked> {
        registry
            .entries()
            .iter()
            .map(|e| Stacked {
                executor: e.executor().clone(),
                cache: cache.clone(),
            })
            .collect()
    }

    /// The executor's name, for events.
    pub fn name(&self) -> &str {
        self.executor.name()
    }

    /// Before the first attempt: the stored result, if a layer has one. Errors are reported
    /// by the caller and count as a miss.
    pub async fn lookup(&self, query: CacheQuery<'_>) -> Result<CacheLookup, String> {
        match &self.cache {
            Some(c) => c.lookup(query).await,
            None => Ok(CacheLookup::Miss { reason: None }),
        }
    }

    /// One attempt, on the executor.
    pub async fn execute(&self, req: &ExecRequest, io: ExecIo) -> Executed {
        self.executor.execute_recorded(req, io).await
    }

    /// After the task passed: the layers record its result.
    pub async fn passed(
        &self,
        query: CacheQuery<'_>,
        outputs: &std::collections::BTreeMap<String, std::path::PathBuf>,
    ) -> Result<(), String> {
        match &self.cache {
            Some(c) => c.store(query, outputs).await,
            None => Ok(()),
        }
    }

    /// The run is over: the executor releases what it keeps for the run (background tasks).
    pub async fn shutdown(&self) {
        self.executor.shutdown().await;
    }

    /// Whether `passed` does anything (so the log is flushed for it only when needed).
    pub fn records(&self) -> bool {
        self.cache.is_some()
    }
}
