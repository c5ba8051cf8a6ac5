//! Cache keys: what a task's result depends on, itemised in a [`KeyManifest`] and digested
//! with domain-separated BLAKE3.
//!
//! The key covers the command (or native function identity), the environment the task sees
//! (values digested; secrets by name only), the container image and settings, the workdir
//! relative to the project, every input file's relative path and content digest, the digests
//! of dependency outputs, the declared outputs, the platform and [`SCHEMA_VERSION`]. It never
//! contains an absolute path, so two checkouts of one repository share hits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::CacheError;
use super::digest::Digest;
use super::index::{Stat, StatIndex};
use super::walk::Walker;
use crate::graph::model::Task;

/// Version of the key schema; bump it whenever what goes into a key changes.
pub const SCHEMA_VERSION: u32 = 1;

/// BLAKE3 derive-key context of cache keys.
const KEY_CONTEXT: &str = "sykli cache key v1";

/// What the runtime knows about a task beyond its definition, needed for its key.
#[derive(Debug, Clone, Default)]
pub struct KeyContext {
    /// Environment the task sees besides `task.env`: matrix values, capabilities and declared
    /// pass-through variables, with their values. Must not hold secret values: any name that
    /// is one of the task's secrets is ignored.
    pub env: BTreeMap<String, String>,
    /// Output digests of the task's direct dependencies: task name -> output name -> digest
    /// (as returned by [`TaskCache::store`](super::TaskCache::store) or a [`Hit`](super::Hit)).
    pub dependency_outputs: BTreeMap<String, BTreeMap<String, Digest>>,
    /// Identity of a native task's code (e.g. the digest of the pipeline binary). A native
    /// task without one is not cached: its code could change under the same name.
    pub native_identity: Option<String>,
    /// Platform string; `<os>-<arch>` of this machine when `None`.
    pub platform: Option<String>,
}

/// The outcome of keying a task.
#[derive(Debug, Clone)]
// One per task, moved rarely: boxing the manifest would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Keyed {
    /// The task may be served from and stored in the cache.
    Cacheable {
        /// The cache key.
        key: Digest,
        /// What the key was computed from.
        manifest: KeyManifest,
    },
    /// The task always runs.
    NotCacheable {
        /// Why.
        reason: NotCacheable,
    },
}

impl Keyed {
    /// The key, when cacheable.
    pub fn key(&self) -> Option<&Digest> {
        match self {
            Keyed::Cacheable { key, .. } => Some(key),
            Keyed::NotCacheable { .. } => None,
        }
    }
}

/// Why a task is never cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NotCacheable {
    /// The task declares no `inputs`.
    NoInputs,
    /// The task sets `cache: false`.
    Disabled,
    /// The task is an approval gate.
    Gate,
    /// The task has neither a command nor a native function.
    NoAction,
    /// A native task, but the caller gave no [`KeyContext::native_identity`].
    NativeWithoutIdentity,
    /// The host workdir is absolute and outside the project.
    WorkdirOutsideProject {
        /// The workdir as written.
        workdir: String,
    },
    /// A `task_inputs` entry names a dependency output whose digest is unknown.
    MissingDependencyOutput {
        /// The producing task.
        task: String,
        /// Its output name.
        output: String,
    },
}

impl fmt::Display for NotCacheable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCacheable::NoInputs => f.write_str("it declares no inputs"),
            NotCacheable::Disabled => f.write_str("it sets cache: false"),
            NotCacheable::Gate => f.write_str("it is an approval gate"),
            NotCacheable::NoAction => f.write_str("it has no command"),
            NotCacheable::NativeWithoutIdentity => {
                f.write_str("it is a native task and the pipeline binary's identity is unknown")
            }
            NotCacheable::WorkdirOutsideProject { workdir } => {
                write!(f, "its workdir \"{workdir}\" is outside the project")
            }
            NotCacheable::MissingDependencyOutput { task, output } => {
                write!(
                    f,
                    "the digest of output \"{output}\" of task \"{task}\" is unknown"
                )
            }
        }
    }
}

/// What a task runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionIdentity {
    /// A shell command.
    Shell {
        /// The command text.
        command: String,
    },
    /// A native function of the pipeline binary.
    Native {
        /// Registered function name.
        name: String,
        /// Identity of the code ([`KeyContext::native_identity`]).
        identity: String,
    },
}

/// The itemised components of a cache key, stored with each entry so that a miss can be
/// explained. Holds no absolute path and no secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyManifest {
    /// [`SCHEMA_VERSION`] at the time of keying.
    pub schema: u32,
    /// Task name (informational: not part of the key).
    pub task: String,
    /// What runs.
    pub action: ActionIdentity,
    /// Container image, if any.
    pub image: Option<String>,
    /// Workdir relative to the project root ("" for the root), or the in-container path.
    pub workdir: String,
    /// `<os>-<arch>`.
    pub platform: String,
    /// Environment variable name -> BLAKE3 digest of its value.
    pub env: BTreeMap<String, Digest>,
    /// Names of secrets the task receives (never values).
    pub secrets: BTreeSet<String>,
    /// The `inputs` globs as declared.
    pub input_globs: Vec<String>,
    /// Input file path (relative to the project root, `/`-separated) -> content digest.
    pub inputs: BTreeMap<String, Digest>,
    /// Declared outputs: name -> path.
    pub outputs: BTreeMap<String, String>,
    /// Dependency outputs: `task/output` -> tree digest.
    pub dependencies: BTreeMap<String, Digest>,
    /// Other settings that change results: setting name -> canonical JSON
    /// (`mounts`, `services`, `success_criteria`).
    pub settings: BTreeMap<String, String>,
}

impl KeyManifest {
    /// The cache key: a domain-separated BLAKE3 digest of every component but the task name,
    /// fed in a fixed, length-prefixed order.
    pub fn key(&self) -> Digest {
        let mut h = Feeder(blake3::Hasher::new_derive_key(KEY_CONTEXT));
        h.u64(u64::from(self.schema));
        match &self.action {
            ActionIdentity::Shell { command } => {
                h.str("shell");
                h.str(command);
            }
            ActionIdentity::Native { name, identity } => {
                h.str("native");
                h.str(name);
                h.str(identity);
            }
        }
        h.opt(self.image.as_deref());
        h.str(&self.workdir);
        h.str(&self.platform);
        h.map(self.env.iter().map(|(k, v)| (k.as_str(), v.to_hex())));
        h.u64(self.secrets.len() as u64);
        for s in &self.secrets {
            h.str(s);
        }
        h.u64(self.input_globs.len() as u64);
        for g in &self.input_globs {
            h.str(g);
        }
        h.u64(self.inputs.len() as u64);
        for (p, d) in &self.inputs {
            h.str(p);
            h.0.update(&d.0);
        }
        h.map(self.outputs.iter().map(|(k, v)| (k.as_str(), v.clone())));
        h.map(
            self.dependencies
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_hex())),
        );
        h.map(self.settings.iter().map(|(k, v)| (k.as_str(), v.clone())));
        h.0.finalize().into()
    }
}

struct Feeder(blake3::Hasher);

impl Feeder {
    fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.update(s.as_bytes());
    }
    fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u64(1);
                self.str(s);
            }
            None => self.u64(0),
        }
    }
    fn map<'a>(&mut self, items: impl ExactSizeIterator<Item = (&'a str, String)>) {
        self.u64(items.len() as u64);
        for (k, v) in items {
            self.str(k);
            self.str(&v);
        }
    }
}

/// The platform of this machine: `<os>-<arch>`.
pub fn host_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

fn env_digest(value: &str) -> Digest {
    let mut h = blake3::Hasher::new_derive_key("sykli env value v1");
    h.update(value.as_bytes());
    h.finalize().into()
}

/// Computes the key of `task`. `root` is the absolute project root; input globs and the
/// workdir are relative to it.
/// Why `task` can never be cached, judged from its definition alone (no files read).
pub fn never_cached(task: &Task) -> Option<NotCacheable> {
    if task.gate.is_some() {
        Some(NotCacheable::Gate)
    } else if task.cache == Some(false) {
        Some(NotCacheable::Disabled)
    } else if task.inputs.is_empty() {
        Some(NotCacheable::NoInputs)
    } else {
        None
    }
}

pub(crate) fn compute(
    task: &Task,
    ctx: &KeyContext,
    root: &Path,
    index: &StatIndex,
    walker: &Walker,
) -> Result<Keyed, CacheError> {
    let not = |reason| Ok(Keyed::NotCacheable { reason });
    if let Some(reason) = never_cached(task) {
        return not(reason);
    }
    let action = match (&task.native, &task.command) {
        (Some(name), _) => match &ctx.native_identity {
            Some(identity) => ActionIdentity::Native {
                name: name.clone(),
                identity: identity.clone(),
            },
            None => return not(NotCacheable::NativeWithoutIdentity),
        },
        (None, Some(command)) => ActionIdentity::Shell {
            command: command.clone(),
        },
        (None, None) => return not(NotCacheable::NoAction),
    };
    let workdir = match task.workdir.as_deref() {
        None => String::new(),
        Some(w) if task.container.is_some() => w.to_owned(),
        Some(w) => {
            let p = Path::new(w);
            if p.is_absolute() {
                match p.strip_prefix(root) {
                    Ok(rel) => rel.to_string_lossy().into_owned(),
                    Err(_) => {
                        return not(NotCacheable::WorkdirOutsideProject {
                            workdir: w.to_owned(),
                        });
                    }
                }
            } else {
                w.trim_start_matches("./").trim_end_matches('/').to_owned()
            }
        }
    };

    let mut secrets: BTreeSet<String> = task.secrets.iter().cloned().collect();
    secrets.extend(task.secret_refs.iter().map(|r| r.name.clone()));
    let env = task
        .env
        .iter()
        .chain(ctx.env.iter())
        .filter(|(k, _)| !secrets.contains(*k))
        .map(|(k, v)| (k.clone(), env_digest(v)))
        .collect();

    let mut dependencies = BTreeMap::new();
    for (dep, outs) in &ctx.dependency_outputs {
        for (name, d) in outs {
            dependencies.insert(format!("{dep}/{name}"), *d);
        }
    }
    for ti in &task.task_inputs {
        if !dependencies.contains_key(&format!("{}/{}", ti.from_task, ti.output)) {
            return not(NotCacheable::MissingDependencyOutput {
                task: ti.from_task.clone(),
                output: ti.output.clone(),
            });
        }
    }

    let mut settings = BTreeMap::new();
    let mut setting = |name: &str, value: Result<String, serde_json::Error>, empty: bool| {
        if !empty && let Ok(v) = value {
            settings.insert(name.to_owned(), v);
        }
    };
    setting(
        "mounts",
        serde_json::to_string(&task.mounts),
        task.mounts.is_empty(),
    );
    setting(
        "services",
        serde_json::to_string(&task.services),
        task.services.is_empty(),
    );
    setting(
        "success_criteria",
        serde_json::to_string(&task.success_criteria),
        task.success_criteria.is_empty(),
    );
    setting(
        "task_inputs",
        serde_json::to_string(&task.task_inputs),
        task.task_inputs.is_empty(),
    );

    let inputs = collect_inputs(&task.name, &task.inputs, root, index, walker)?;
    let manifest = KeyManifest {
        schema: SCHEMA_VERSION,
        task: task.name.clone(),
        action,
        image: task.container.clone(),
        workdir,
        platform: ctx.platform.clone().unwrap_or_else(host_platform),
        env,
        secrets,
        input_globs: task.inputs.clone(),
        inputs,
        outputs: task.outputs.clone(),
        dependencies,
        settings,
    };
    Ok(Keyed::Cacheable {
        key: manifest.key(),
        manifest,
    })
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// Resolves `globs` (relative to `root`, gitignore-aware) to file path -> digest.
fn collect_inputs(
    task: &str,
    globs: &[String],
    root: &Path,
    index: &StatIndex,
    walker: &Walker,
) -> Result<BTreeMap<String, Digest>, CacheError> {
    let bad = |glob: &str, reason: String| CacheError::InvalidInput {
        task: task.to_owned(),
        glob: glob.to_owned(),
        reason,
    };
    let mut set = GlobSetBuilder::new();
    let mut bases: Vec<PathBuf> = Vec::new();
    for glob in globs {
        let g = glob.trim_start_matches("./");
        let p = Path::new(g);
        if g.is_empty() {
            return Err(bad(glob, "it is empty".into()));
        }
        if p.is_absolute() {
            return Err(bad(
                glob,
                "it is absolute; inputs are relative to the project".into(),
            ));
        }
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(bad(glob, "it leaves the project with \"..\"".into()));
        }
        // A plain directory name means everything under it.
        let pattern = if !has_meta(g) && root.join(g).is_dir() {
            format!("{}/**", g.trim_end_matches('/'))
        } else {
            g.to_owned()
        };
        let compiled = globset::GlobBuilder::new(&pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| bad(glob, e.kind().to_string()))?;
        set.add(compiled);
        // The walk starts at the longest directory prefix without glob characters.
        let mut base = PathBuf::new();
        let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            if has_meta(c) {
                break;
            }
            base.push(c);
        }
        bases.push(base);
    }
    let set: GlobSet = set
        .build()
        .map_err(|e| bad(&globs.join(", "), e.to_string()))?;
    bases.sort();
    bases.dedup();
    let mut roots: Vec<PathBuf> = Vec::new();
    for b in bases {
        if !roots.iter().any(|r| b.starts_with(r)) {
            roots.push(b);
        }
    }

    let found = walker.files(task, &roots, &set)?;
    hash_all(root, &found, index)
}

/// Threads used to hash a task's changed inputs (asked once: the query reads cgroup files).
fn hash_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Digests every file, in parallel when there is real hashing to do.
fn hash_all(
    root: &Path,
    files: &[(String, Stat)],
    index: &StatIndex,
) -> Result<BTreeMap<String, Digest>, CacheError> {
    let one = |&(rel, meta): &&(String, Stat)| {
        index
            .digest(root, rel, meta)
            .map(|d| (rel.clone(), d))
            .map_err(|e| CacheError::io("hash input file", &root.join(rel), e))
    };
    let mut map = BTreeMap::new();
    let mut todo = Vec::new();
    for (f, known) in files.iter().zip(index.trusted(files)) {
        match known {
            Some(d) => {
                map.insert(f.0.clone(), d);
            }
            None => todo.push(f),
        }
    }
    let files = &todo[..];
    if files.is_empty() {
        return Ok(map);
    }
    let threads = hash_threads();
    if files.len() < 8 || threads == 1 {
        for f in files {
            let (rel, d) = one(f)?;
            map.insert(rel, d);
        }
        return Ok(map);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Vec<(String, Digest)>, CacheError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(16, std::sync::atomic::Ordering::Relaxed);
                        if i >= files.len() {
                            return Ok(out);
                        }
                        for f in files[i..(i + 16).min(files.len())].iter() {
                            out.push(one(f)?);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CacheError::Walk {
                        task: String::new(),
                        message: "a hashing thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    for r in results {
        map.extend(r?);
    }
    Ok(map)
}
