//! The loaded plugins by name, their hot swap, the targets' settings, and a project's (or
//! server's) plugin directory that `sykli plugin load` fills and `sykli run` reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::UNIX_EPOCH;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use super::PluginError;
use super::executor::PluginExecutor;
use super::host::{LoadedPlugin, PluginHost};
use super::manifest::{Grants, Limits, Manifest, PluginSource};
use crate::exec::ExecutorEntry;

/// Where a project keeps its plugins: `.sykli/plugins/` (one directory per plugin, holding
/// `plugin.toml` and `component.wasm`); compiled code is cached in `.sykli/plugins/.cache/`.
pub fn project_plugins_dir(project_root: &Path) -> PathBuf {
    project_root.join(".sykli").join("plugins")
}

/// The file name a stored plugin's component gets.
const STORED_COMPONENT: &str = "component.wasm";
/// The directory of compiled components inside a plugins directory.
pub const CACHE_DIR: &str = ".cache";

/// Every target's settings (`[targets.NAME]`), swapped whole by `sykli config push`.
#[derive(Clone, Default)]
pub struct TargetSettings(Arc<ArcSwap<BTreeMap<String, BTreeMap<String, String>>>>);

impl TargetSettings {
    /// The settings of target `name`, as name/value pairs.
    pub fn of(&self, name: &str) -> Vec<(String, String)> {
        self.0
            .load()
            .get(name)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Replaces every target's settings at once.
    pub fn replace(&self, all: BTreeMap<String, BTreeMap<String, String>>) {
        self.0.store(Arc::new(all));
    }

    /// Every target's settings now.
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        (**self.0.load()).clone()
    }
}

/// Grants replacing plugins' manifest grants, by plugin name (`[grants.NAME]` of
/// `sykli config push`), swapped whole.
#[derive(Clone, Default)]
pub struct GrantOverrides(Arc<ArcSwap<BTreeMap<String, Grants>>>);

impl GrantOverrides {
    /// The grants replacing plugin `name`'s manifest grants, if any.
    pub fn of(&self, name: &str) -> Option<Grants> {
        self.0.load().get(name).cloned()
    }

    /// Replaces every override at once.
    pub fn replace(&self, all: BTreeMap<String, Grants>) {
        self.0.store(Arc::new(all));
    }
}

/// What `sykli plugin list` shows of one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSummary {
    /// The target name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line about it.
    pub description: String,
    /// BLAKE3 of its component.
    pub digest: String,
    /// When it was loaded, Unix seconds.
    pub loaded_at: u64,
    /// Tasks it has run since it was loaded.
    pub tasks_served: u64,
    /// Whether its compiled code came from the cache.
    pub from_cache: bool,
    /// Its grants.
    pub grants: Grants,
    /// Its limits.
    pub limits: Limits,
}

impl PluginSummary {
    fn of(p: &LoadedPlugin) -> PluginSummary {
        PluginSummary {
            name: p.name.clone(),
            version: p.info.version.clone(),
            description: p.info.description.clone(),
            digest: p.digest.clone(),
            loaded_at: p
                .loaded_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            tasks_served: p.tasks_served(),
            from_cache: p.from_cache,
            grants: p.manifest.grants.clone(),
            limits: p.manifest.limits.clone(),
        }
    }
}

/// The outcome of loading a plugin into [`Plugins`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swapped {
    /// The plugin now in the slot.
    pub plugin: PluginSummary,
    /// The version it replaced, if the name was loaded.
    pub replaced: Option<String>,
}

/// The loaded plugins of a process, by target name; cheap to clone (shared).
#[derive(Clone)]
pub struct Plugins {
    host: Arc<PluginHost>,
    slots: Arc<RwLock<BTreeMap<String, Arc<ArcSwap<LoadedPlugin>>>>>,
    settings: TargetSettings,
    grants: GrantOverrides,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("names", &self.names())
            .finish_non_exhaustive()
    }
}

impl Plugins {
    /// No plugins yet, on `host`.
    pub fn new(host: Arc<PluginHost>) -> Plugins {
        Plugins {
            host,
            slots: Arc::default(),
            settings: TargetSettings::default(),
            grants: GrantOverrides::default(),
        }
    }

    /// The host they run on.
    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// The targets' settings every plugin task gets (shared; `replace` swaps them).
    pub fn settings(&self) -> &TargetSettings {
        &self.settings
    }

    /// Grants replacing manifests' grants (shared; `replace` swaps them).
    pub fn grant_overrides(&self) -> &GrantOverrides {
        &self.grants
    }

    /// Compiles (or takes from the cache) `source` and puts it in its slot: a new name is
    /// added; a loaded one is swapped, running tasks finishing on the old version.
    pub fn install(
        &self,
        source: &PluginSource,
        base_dir: Option<PathBuf>,
    ) -> Result<Swapped, PluginError> {
        let loaded = Arc::new(self.host.load(source, base_dir)?);
        Ok(self.put(loaded))
    }

    /// Puts an already loaded plugin in its slot (see [`Plugins::install`]).
    pub fn put(&self, loaded: Arc<LoadedPlugin>) -> Swapped {
        let plugin = PluginSummary::of(&loaded);
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let replaced = match slots.get(&loaded.name) {
            Some(slot) => {
                let old = slot.swap(loaded);
                Some(old.info.version.clone())
            }
            None => {
                slots.insert(loaded.name.clone(), Arc::new(ArcSwap::new(loaded)));
                None
            }
        };
        Swapped { plugin, replaced }
    }

    /// Unloads `name`; tasks running on it finish.
    pub fn remove(&self, name: &str) -> Result<PluginSummary, PluginError> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        match slots.remove(name) {
            Some(slot) => Ok(PluginSummary::of(&slot.load())),
            None => Err(PluginError::Unknown {
                name: name.to_owned(),
                loaded: slots.keys().cloned().collect(),
            }),
        }
    }

    /// The loaded names.
    pub fn names(&self) -> Vec<String> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.keys().cloned().collect()
    }

    /// Every loaded plugin, by name.
    pub fn list(&self) -> Vec<PluginSummary> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .values()
            .map(|s| PluginSummary::of(&s.load()))
            .collect()
    }

    /// The executor of slot `name`: it follows later swaps of that slot.
    pub fn executor(&self, name: &str) -> Option<PluginExecutor> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(name).map(|slot| {
            PluginExecutor::new(
                name.to_owned(),
                self.host.clone(),
                slot.clone(),
                self.settings.clone(),
                self.grants.clone(),
            )
        })
    }

    /// Every loaded plugin as a registry entry.
    pub fn entries(&self) -> Vec<ExecutorEntry> {
        self.names()
            .iter()
            .filter_map(|n| self.executor(n))
            .map(PluginExecutor::entry)
            .collect()
    }

    /// Loads every plugin stored in `dir` (see [`Plugins::store_in`]); relative grants
    /// resolve against `base_dir`. A directory that does not exist holds none.
    pub fn load_dir(&self, dir: &Path, base_dir: Option<PathBuf>) -> Result<(), PluginError> {
        let read = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(PluginError::Io {
                    what: format!("listing plugins in {}", dir.display()),
                    source: e,
                });
            }
        };
        let mut manifests: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .map(|e| e.path().join("plugin.toml"))
            .filter(|p| p.is_file())
            .collect();
        manifests.sort();
        for m in manifests {
            self.install(&PluginSource::read(&m)?, base_dir.clone())?;
        }
        Ok(())
    }

    /// Stores `source` under `dir/NAME/` (manifest and component) so that
    /// [`Plugins::load_dir`] finds it again; `name` is the loaded target name.
    pub fn store_in(dir: &Path, name: &str, source: &PluginSource) -> Result<(), PluginError> {
        let target = dir.join(name);
        let io = |what: String| move |e| PluginError::Io { what, source: e };
        std::fs::create_dir_all(&target).map_err(io(format!("creating {}", target.display())))?;
        let manifest = Manifest {
            name: Some(name.to_owned()),
            component: STORED_COMPONENT.into(),
            ..source.manifest.clone()
        };
        let text = toml::to_string(&manifest).map_err(|e| PluginError::Manifest {
            origin: target.join("plugin.toml").display().to_string(),
            message: format!("serialising: {e}"),
        })?;
        let wasm = target.join(STORED_COMPONENT);
        std::fs::write(&wasm, &source.wasm).map_err(io(format!("writing {}", wasm.display())))?;
        let path = target.join("plugin.toml");
        std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))?;
        Ok(())
    }

    /// Deletes `dir/NAME/`.
    pub fn unstore(dir: &Path, name: &str) -> Result<bool, PluginError> {
        let target = dir.join(name);
        match std::fs::remove_dir_all(&target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(PluginError::Io {
                what: format!("removing {}", target.display()),
                source: e,
            }),
        }
    }
}
