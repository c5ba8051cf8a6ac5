//! [`Template`]: task settings shared by several tasks.

use std::collections::BTreeMap;
use std::time::Duration;

use sykli_runtime::graph::{Mount, MountKind, Placement};

use super::pipeline::{CacheVolume, Directory};
use super::task::whole_seconds;

/// Reusable task settings: container, workdir, env, inputs, mounts, secrets, retry, timeout,
/// requires, target, prefer. [`TaskBuilder::from`](super::TaskBuilder::from) copies them into a
/// task at that point; later calls on the task override or append as usual.
#[derive(Debug, Clone, Default)]
pub struct Template {
    pub(crate) container: Option<String>,
    pub(crate) workdir: Option<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) inputs: Vec<String>,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) mounts_cwd: bool,
    pub(crate) secrets: Vec<String>,
    pub(crate) retry: Option<u32>,
    pub(crate) timeout: Option<u64>,
    pub(crate) requires: Vec<String>,
    pub(crate) target: Option<String>,
    pub(crate) prefer: Option<Placement>,
}

impl Template {
    /// Container image.
    pub fn container(mut self, image: &str) -> Self {
        self.container = Some(image.to_string());
        self
    }

    /// Working directory.
    pub fn workdir(mut self, dir: &str) -> Self {
        self.workdir = Some(dir.to_string());
        self
    }

    /// An environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Input globs (appended).
    pub fn inputs(mut self, globs: &[&str]) -> Self {
        self.inputs.extend(globs.iter().map(|s| s.to_string()));
        self
    }

    /// Mounts a project directory at `path`.
    pub fn mount(mut self, dir: &Directory, path: &str) -> Self {
        self.mounts.push(Mount {
            resource: dir.id().to_string(),
            path: path.to_string(),
            kind: MountKind::Directory,
        });
        self
    }

    /// Mounts a cache volume at `path`.
    pub fn mount_cache(mut self, cache: &CacheVolume, path: &str) -> Self {
        self.mounts.push(Mount {
            resource: cache.name().to_string(),
            path: path.to_string(),
            kind: MountKind::Cache,
        });
        self
    }

    /// Mounts the project at `/work` and works there.
    pub fn mount_cwd(mut self) -> Self {
        self.mounts_cwd = true;
        self.mounts.push(Mount {
            resource: "src:.".into(),
            path: "/work".into(),
            kind: MountKind::Directory,
        });
        self.workdir = Some("/work".into());
        self
    }

    /// A secret name (appended).
    pub fn secret(mut self, name: &str) -> Self {
        self.secrets.push(name.to_string());
        self
    }

    /// Secret names (appended).
    pub fn secrets(mut self, names: &[&str]) -> Self {
        self.secrets.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Extra attempts after a failure.
    pub fn retry(mut self, attempts: u32) -> Self {
        self.retry = Some(attempts);
        self
    }

    /// Wall-clock limit (whole seconds, rounded up, at least 1).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(whole_seconds(limit));
        self
    }

    /// Worker labels (appended).
    pub fn requires(mut self, labels: &[&str]) -> Self {
        self.requires.extend(labels.iter().map(|s| s.to_string()));
        self
    }

    /// The target that runs the task.
    pub fn target(mut self, name: &str) -> Self {
        self.target = Some(name.to_string());
        self
    }

    /// Placement preference.
    pub fn prefer(mut self, placement: Placement) -> Self {
        self.prefer = Some(placement);
        self
    }
}
