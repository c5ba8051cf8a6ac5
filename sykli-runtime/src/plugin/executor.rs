//! A plugin slot as an [`Executor`]: each attempt takes the slot's current plugin (an `Arc`
//! clone) and runs in its own store on a blocking thread.

use std::sync::Arc;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;

use super::host::{LoadedPlugin, PluginHost, TaskCall};
use super::store::{GrantOverrides, TargetSettings};
use crate::exec::{Action, ExecIo, ExecOutcome, ExecRequest, Executor, ExecutorEntry, WorkKind};

/// The label every plugin executor carries (besides its name and `local`).
pub const PLUGIN_LABEL: &str = "plugin";

/// Runs tasks through the plugin currently in one slot.
pub struct PluginExecutor {
    name: String,
    host: Arc<PluginHost>,
    slot: Arc<ArcSwap<LoadedPlugin>>,
    settings: TargetSettings,
    grants: GrantOverrides,
}

impl PluginExecutor {
    pub(crate) fn new(
        name: String,
        host: Arc<PluginHost>,
        slot: Arc<ArcSwap<LoadedPlugin>>,
        settings: TargetSettings,
        grants: GrantOverrides,
    ) -> PluginExecutor {
        PluginExecutor {
            name,
            host,
            slot,
            settings,
            grants,
        }
    }

    /// The plugin new tasks get now.
    pub fn current(&self) -> Arc<LoadedPlugin> {
        self.slot.load_full()
    }

    /// This executor as a registry entry: runs command and container tasks (the plugin
    /// gets the image and may refuse it), labelled `plugin` and its name.
    pub fn entry(self) -> ExecutorEntry {
        ExecutorEntry::local(
            Arc::new(self),
            &[WorkKind::Command, WorkKind::Container],
            [PLUGIN_LABEL],
        )
    }
}

impl Executor for PluginExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    fn code_identity(&self) -> Option<String> {
        let plugin = self.slot.load();
        Some(format!(
            "plugin {} {} blake3:{} settings {:?}",
            plugin.name,
            plugin.info.version,
            plugin.digest,
            self.settings.of(&self.name)
        ))
    }

    fn execute<'a>(&'a self, req: &'a ExecRequest, io: ExecIo) -> BoxFuture<'a, ExecOutcome> {
        Box::pin(async move {
            let plugin = self.slot.load_full();
            let command = match &req.action {
                Action::Shell(c) => c.clone(),
                Action::Native(f) => {
                    return ExecOutcome::errored(
                        format!("running the task through {}", plugin.label()),
                        format!("a native function (`{f}`) cannot run on a plugin target"),
                    );
                }
            };
            let task = TaskCall {
                name: req.task.clone(),
                attempt: io.attempt,
                command,
                env: req
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                workdir: req.workdir.clone(),
                image: req.container.as_ref().map(|c| c.image.clone()),
                timeout: req.timeout,
                settings: self.settings.of(&self.name),
                grants: self.grants.of(&self.name),
                sink: io.output.clone(),
                cancel: io.cancel.clone(),
                rt: tokio::runtime::Handle::current(),
            };
            let host = self.host.clone();
            let label = plugin.label();
            match tokio::task::spawn_blocking(move || host.run(&plugin, task)).await {
                Ok(outcome) => outcome,
                Err(e) => ExecOutcome::errored(
                    format!("running the task through {label}"),
                    format!("{label}: the host thread failed: {e}"),
                ),
            }
        })
    }
}
