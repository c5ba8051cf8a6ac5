//! [`RunBuilder`]: the one way a run is configured. `sykli run`, pipeline binaries
//! (`sykli::run`, `sykli::main!`), `sykli::Runner` and build scripts all build their
//! [`RunConfig`] here, so what one entry point can do (cache, containers, more executors),
//! all can.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{RunConfig, Signals, TaskCache};
use crate::cache::LocalCache;
use crate::exec::ExecutorEntry;
use crate::exec::native::NativeRegistry;
use crate::graph::ConditionContext;

/// Which result cache a run uses.
#[derive(Clone, Default)]
pub enum CacheChoice {
    /// None: every task runs.
    Off,
    /// The local content-addressed cache in the user cache directory (`SYKLI_CACHE_DIR`).
    #[default]
    Local,
    /// A cache of the caller's.
    Custom(Arc<dyn TaskCache>),
}

/// A configured run: the [`RunConfig`], the local cache when there is one (for `sykli
/// explain`'s keys), and what the caller should print as warnings.
pub struct BuiltRun {
    /// The run's settings.
    pub config: RunConfig,
    /// The local cache, when [`CacheChoice::Local`] could be opened.
    pub local_cache: Option<Arc<LocalCache>>,
    /// Things that did not work out but do not stop the run (e.g. "running without the
    /// cache: ..."), one line each.
    pub warnings: Vec<String>,
}

/// Builds a run's [`RunConfig`]: jobs, cache, executors, state directory, signals.
///
/// ```no_run
/// use sykli_runtime::scheduler::{CacheChoice, RunBuilder};
/// let built = RunBuilder::new("/repo").jobs(4).cache(CacheChoice::Local).build();
/// for w in &built.warnings {
///     eprintln!("warning: {w}");
/// }
/// let config = built.config;
/// ```
pub struct RunBuilder {
    config: RunConfig,
    cache: CacheChoice,
    containers: bool,
    history: bool,
    #[cfg(feature = "remote")]
    remote: Option<crate::remote::client::RemoteSetup>,
}

impl RunBuilder {
    /// Defaults of `sykli run` for a project: jobs = CPUs, the local cache, the Docker
    /// executor (with the `docker` feature), Ctrl-C handling, durations of earlier runs.
    pub fn new(project_root: impl Into<PathBuf>) -> Self {
        let root: PathBuf = project_root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        let mut config = RunConfig::new(root);
        config.signals = Signals::Standard;
        RunBuilder {
            config,
            cache: CacheChoice::Local,
            containers: true,
            history: true,
            #[cfg(feature = "remote")]
            remote: None,
        }
    }

    /// Most tasks run at once (at least 1).
    pub fn jobs(mut self, n: usize) -> Self {
        self.config.jobs = n.max(1);
        self
    }

    /// Keep running everything not downstream of a failure.
    pub fn keep_going(mut self, yes: bool) -> Self {
        self.config.keep_going = yes;
        self
    }

    /// Run only these tasks and what they depend on.
    pub fn filter(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.config.filter = names.into_iter().map(Into::into).collect();
        self
    }

    /// Run only the tasks a change affects and what they depend on
    /// ([`crate::plan::affected`]).
    pub fn affected(mut self, affected: Option<crate::plan::Affected>) -> Self {
        self.config.affected = affected;
        self
    }

    /// Time limit of tasks that set none (`None`: unlimited).
    pub fn default_timeout(mut self, limit: Option<Duration>) -> Self {
        self.config.default_timeout = limit;
        self
    }

    /// How Ctrl-C and SIGTERM are handled.
    pub fn signals(mut self, signals: Signals) -> Self {
        self.config.signals = signals;
        self
    }

    /// Where logs and run records go (default `<project>/.sykli`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.state_dir = dir.into();
        self
    }

    /// The functions of `native` tasks, run in this process.
    pub fn native(mut self, registry: NativeRegistry) -> Self {
        self.config.native = registry;
        self
    }

    /// Continue the journalled run `point` (its id becomes the run id).
    pub fn resume(mut self, point: crate::state::ResumePoint) -> Self {
        self.config.run_id = point.run_id.clone();
        self.config.resume = Some(Arc::new(point));
        self
    }

    /// Park the run when it only waits on gates (see [`RunConfig::park`]).
    pub fn park(mut self, yes: bool) -> Self {
        self.config.park = yes;
        self
    }

    /// The shortest retry backoff that parks a run (see [`RunConfig::park_backoff`]).
    pub fn park_backoff(mut self, at_least: Duration) -> Self {
        self.config.park_backoff = at_least;
        self
    }

    /// The result cache.
    pub fn cache(mut self, cache: CacheChoice) -> Self {
        self.cache = cache;
        self
    }

    /// Whether the container executor is registered (default: yes, with the `docker`
    /// feature).
    pub fn containers(mut self, yes: bool) -> Self {
        self.containers = yes;
        self
    }

    /// Registers one more executor (a remote one, a plugin), placed after the built-in ones;
    /// one with the name of an earlier executor replaces it.
    pub fn executor(mut self, entry: ExecutorEntry) -> Self {
        self.config.executors.replace(entry);
        self
    }

    /// What conditions are evaluated against (default: detected from CI variables and git).
    pub fn context(mut self, context: ConditionContext) -> Self {
        self.config.context = Some(context);
        self
    }

    /// Whether durations of earlier runs (from the state directory) prioritise the
    /// critical path (default: yes).
    pub fn history(mut self, yes: bool) -> Self {
        self.history = yes;
        self
    }

    /// A remote cache and/or remote executor (connected beforehand): the local cache is
    /// keyed under their digest function, the remote cache is stacked behind it, and the
    /// remote executor is registered (with its own layer) after the built-in ones.
    #[cfg(feature = "remote")]
    pub fn remote(mut self, setup: crate::remote::client::RemoteSetup) -> Self {
        self.remote = Some(setup);
        self
    }

    /// The configured run.
    pub fn build(self) -> BuiltRun {
        let RunBuilder {
            mut config,
            cache,
            containers,
            history,
            #[cfg(feature = "remote")]
            remote,
        } = self;
        #[cfg(feature = "remote")]
        let function = remote
            .as_ref()
            .map_or(crate::cache::DigestFunction::Blake3, |r| {
                r.digest_function()
            });
        #[cfg(not(feature = "remote"))]
        let function = crate::cache::DigestFunction::Blake3;
        let mut warnings = Vec::new();
        if history {
            config.history = crate::state::previous_durations(&config.state_dir);
        }
        if containers && let Some(entry) = container_executor() {
            // Registered before the caller's executors, so theirs can replace it.
            let mut all = crate::exec::ExecutorRegistry::new();
            all.replace(entry);
            for e in config.executors.entries() {
                all.replace(e.clone());
            }
            config.executors = all;
        }
        let mut local_cache = None;
        config.cache = match cache {
            CacheChoice::Off => None,
            CacheChoice::Custom(c) => Some(c),
            CacheChoice::Local => {
                let opened = open_local(
                    &config.project_root,
                    &config.state_dir,
                    &config.native,
                    function,
                    &mut warnings,
                );
                match opened {
                    Ok(c) => {
                        let c = Arc::new(c);
                        local_cache = Some(c.clone());
                        Some(c as Arc<dyn TaskCache>)
                    }
                    Err(e) => {
                        warnings.push(format!("running without the cache: {e}"));
                        None
                    }
                }
            }
        };
        #[cfg(feature = "remote")]
        if let Some(setup) = remote {
            let keyer = || {
                open_local(
                    &config.project_root,
                    &config.state_dir,
                    &config.native,
                    function,
                    &mut Vec::new(),
                )
                .map(Arc::new)
            };
            let (cache, entry) = setup.stack(local_cache.clone(), keyer, &config.project_root);
            if let Some(c) = cache {
                config.cache = Some(c);
            }
            match entry {
                Ok(Some(e)) => config.executors.replace(e),
                Ok(None) => {}
                Err(e) => warnings.push(e),
            }
        }
        BuiltRun {
            config,
            local_cache,
            warnings,
        }
    }
}

/// The local cache for a project, its stat index kept in the run's state directory (so a
/// build script's stays in `OUT_DIR`); with native functions in this process, keyed on the
/// identity of this binary so native tasks are cacheable. Keys are digested with
/// `function` (the remote's, when there is one).
fn open_local(
    root: &Path,
    state_dir: &Path,
    native: &NativeRegistry,
    function: crate::cache::DigestFunction,
    warnings: &mut Vec<String>,
) -> Result<LocalCache, String> {
    use crate::cache::{DigestFunction, StatIndex, Store, TaskCache};
    let store = Store::open_default().map_err(|e| crate::error_chain(&e))?;
    let index = match function {
        DigestFunction::Blake3 => StatIndex::open(state_dir.join("cache-index")),
        DigestFunction::Sha256 => {
            StatIndex::open_with(state_dir.join("cache-index-sha256"), function)
        }
    };
    let cache = TaskCache::with_index(store, root, index);
    let mut local = LocalCache::new(cache);
    if !native.is_empty() {
        match native_identity() {
            Ok(id) => local = local.with_native_identity(id),
            Err(e) => warnings.push(format!("native tasks run uncached: {e}")),
        }
    }
    Ok(local)
}

/// The identity of this program's code: `blake3:<hex>` of its executable. Native task
/// functions are compiled into it, so a rebuilt binary changes their keys.
pub fn native_identity() -> Result<String, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("failed to find this program's executable: {e}"))?;
    let mut h = blake3::Hasher::new();
    h.update_mmap(&exe)
        .map_err(|e| format!("failed to read {}: {e}", exe.display()))?;
    Ok(format!("blake3:{}", h.finalize().to_hex()))
}

/// The container executor: the Docker engine at `DOCKER_HOST` (or the default socket).
/// Connecting is lazy, so a machine without an engine still runs every task that has no
/// container; when `DOCKER_HOST` itself is unusable, container tasks are `errored` with
/// that reason.
#[cfg(feature = "docker")]
fn container_executor() -> Option<ExecutorEntry> {
    use crate::exec::WorkKind;
    use crate::exec::container::DockerExecutor;
    let executor: Arc<dyn crate::exec::Executor> = match DockerExecutor::connect() {
        Ok(docker) => Arc::new(docker),
        Err(e) => Arc::new(UnavailableEngine(e.to_string())),
    };
    Some(ExecutorEntry::local(
        executor,
        &[WorkKind::Container],
        ["container"],
    ))
}

/// Without the `docker` feature no container executor exists; container tasks are
/// `errored` by the plan, saying so.
#[cfg(not(feature = "docker"))]
fn container_executor() -> Option<ExecutorEntry> {
    None
}

/// Stands in for a container engine that cannot be addressed: every attempt is `errored`
/// with the reason, so the user sees why instead of a generic message.
#[cfg(feature = "docker")]
struct UnavailableEngine(String);

#[cfg(feature = "docker")]
impl crate::exec::Executor for UnavailableEngine {
    fn name(&self) -> &str {
        "docker"
    }

    fn execute<'a>(
        &'a self,
        _req: &'a crate::exec::ExecRequest,
        _io: crate::exec::ExecIo,
    ) -> futures::future::BoxFuture<'a, crate::exec::ExecOutcome> {
        let outcome =
            crate::exec::ExecOutcome::errored("connecting to the container engine", &self.0);
        Box::pin(async move { outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_gets_the_built_in_executors_and_the_container_engine() {
        let built = RunBuilder::new("/tmp/project")
            .cache(CacheChoice::Off)
            .history(false)
            .build();
        let names = built.config.registry().names().join(",");
        let builtin = if cfg!(target_os = "linux") {
            "process,native,sandbox"
        } else {
            "process,native"
        };
        if cfg!(feature = "docker") {
            assert_eq!(names, format!("{builtin},docker"));
        } else {
            assert_eq!(names, builtin);
        }
        assert!(built.config.cache.is_none() && built.local_cache.is_none());
        let none = RunBuilder::new("/tmp/project")
            .containers(false)
            .cache(CacheChoice::Off)
            .history(false)
            .build();
        assert_eq!(none.config.registry().names().join(","), builtin);
    }

    #[test]
    fn the_native_identity_is_a_digest_of_this_executable() {
        let a = native_identity().unwrap();
        assert!(a.starts_with("blake3:") && a.len() == 7 + 64, "{a}");
        assert_eq!(a, native_identity().unwrap());
    }
}
