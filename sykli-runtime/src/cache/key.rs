//! Cache keys: the digest of the task's REAPI `Action` ([`super::action`]) over its input
//! tree ([`super::merkle`]), with the components itemised in a [`KeyManifest`] to explain
//! misses.
//!
//! The key covers the command (or native function identity), the environment the task sees
//! (secrets by name only, never values), the container image, `requires` labels and this
//! machine's OS and ISA (platform properties), the workdir relative to the project, every
//! input file (path relative to the project, content digest, executable bit), the files of
//! dependency outputs at their destination, the declared outputs, the timeout, other settings
//! and [`SCHEMA_VERSION`]. It never contains an absolute path, so two checkouts of one
//! repository share hits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use globset::{GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::action::{self, ActionMessages, ActionSpec, NATIVE_PROGRAM, Salt};
use super::digest::{Digest, DigestFunction};
use super::index::StatIndex;
use super::merkle::{self, InputNode, InputRoot};
use super::store::{OutputEntry, OutputTree};
use super::workspace::{FileMeta, Selection, Token, Workspace};
use super::{CacheError, Produced};
use crate::graph::model::Task;

/// Version of the key schema; bump it whenever what goes into a key changes.
pub const SCHEMA_VERSION: u32 = 2;

/// What the runtime knows about a task beyond its definition, needed for its key.
#[derive(Debug, Clone, Default)]
pub struct KeyContext {
    /// Environment the task sees besides `task.env`: matrix values, capabilities and declared
    /// pass-through variables, with their values. Must not hold secret values: any name that
    /// is one of the task's secrets is ignored.
    pub env: BTreeMap<String, String>,
    /// What the task's direct dependencies produced, by task name (as returned by
    /// [`TaskCache::store`](super::TaskCache::store) or [`Hit::produced`](super::Hit::produced)).
    /// Their files enter the input tree where they lie (or, for `task_inputs`, at their
    /// destination).
    pub dependency_outputs: BTreeMap<String, Produced>,
    /// Identity of a native task's code (e.g. the digest of the pipeline binary). A native
    /// task without one is not cached: its code could change under the same name.
    pub native_identity: Option<String>,
    /// Identity of the code of the executor the task runs on, when it has one (a plugin's
    /// component digest and settings; see `Executor::code_identity`).
    pub executor_identity: Option<String>,
}

/// The outcome of keying a task.
#[derive(Debug, Clone)]
// One per task, moved rarely: boxing the manifest would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Keyed {
    /// The task may be served from and stored in the cache.
    Cacheable {
        /// The cache key: the digest of `action.action`.
        key: Digest,
        /// What the key was computed from, itemised.
        manifest: KeyManifest,
        /// The task's REAPI `Action`, `Command` and input tree.
        action: std::sync::Arc<ActionMessages>,
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
    /// It runs through a plugin of the remote worker, whose version (swappable under the
    /// same action) no key can hold.
    RemotePlugin {
        /// The plugin's name (`target`).
        target: String,
    },
    /// The host workdir is absolute and outside the project.
    WorkdirOutsideProject {
        /// The workdir as written.
        workdir: String,
    },
    /// A `task_inputs` entry names a dependency output that is unknown.
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
            NotCacheable::RemotePlugin { target } => write!(
                f,
                "it runs through plugin `{target}` of the remote worker, whose version no key can hold"
            ),
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
    /// `<OSFamily>-<ISA>`.
    pub platform: String,
    /// Environment variable name -> BLAKE3 digest of its value.
    pub env: BTreeMap<String, Digest>,
    /// Names of secrets the task receives (never values).
    pub secrets: BTreeSet<String>,
    /// The `inputs` globs as declared.
    pub input_globs: Vec<String>,
    /// Input file path (relative to the project root, `/`-separated) -> content digest.
    pub inputs: InputDigests,
    /// Declared outputs: name -> path.
    pub outputs: BTreeMap<String, String>,
    /// Dependency outputs: `task/output` -> tree digest.
    pub dependencies: BTreeMap<String, Digest>,
    /// Other settings that change results: setting name -> canonical JSON
    /// (`mounts`, `services`, `success_criteria`, `task_inputs`, `requires`, `timeout`).
    pub settings: BTreeMap<String, String>,
}

/// A manifest's input files: path (relative to the project root, `/`-separated) -> content
/// digest. Read it as the map it derefs to. Shared, not copied: every task selecting the same
/// files from one workspace snapshot holds the same map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputDigests(Arc<BTreeMap<String, Digest>>);

impl Serialize for InputDigests {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for InputDigests {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(deserializer).map(InputDigests::from)
    }
}

impl std::ops::Deref for InputDigests {
    type Target = BTreeMap<String, Digest>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<BTreeMap<String, Digest>> for InputDigests {
    fn from(map: BTreeMap<String, Digest>) -> Self {
        InputDigests(Arc::new(map))
    }
}

impl From<InputDigests> for BTreeMap<String, Digest> {
    fn from(inputs: InputDigests) -> Self {
        Arc::unwrap_or_clone(inputs.0)
    }
}

impl<'a> IntoIterator for &'a InputDigests {
    type Item = (&'a String, &'a Digest);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Digest>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The platform property naming the target plugin a worker runs an action through.
pub const SYKLI_TARGET: &str = "sykli-target";

/// The platform of this machine: `<OSFamily>-<ISA>`.
pub fn host_platform() -> String {
    format!("{}-{}", action::host_os_family(), action::host_isa())
}

fn env_digest(value: &str) -> Digest {
    let mut h = blake3::Hasher::new_derive_key("sykli env value v1");
    h.update(value.as_bytes());
    h.finalize().into()
}

/// Why `task` can never be cached, judged from its definition alone (no files read).
pub fn never_cached(task: &Task) -> Option<NotCacheable> {
    if task.gate.is_some() {
        Some(NotCacheable::Gate)
    } else if task.cache == Some(false) {
        Some(NotCacheable::Disabled)
    } else if task.inputs.is_empty() {
        Some(NotCacheable::NoInputs)
    } else {
        remote_plugin(task).map(|target| NotCacheable::RemotePlugin {
            target: target.to_owned(),
        })
    }
}

/// The plugin of the remote worker a task runs through: a remote task whose `target` is not
/// the remote executor itself (its action carries [`SYKLI_TARGET`]; docs/plugins.md).
fn remote_plugin(task: &Task) -> Option<&str> {
    task.target
        .as_deref()
        .filter(|t| task.remote && *t != crate::exec::REMOTE_LABEL)
}

/// Where a key is computed: the project and the cache's view of it.
pub(crate) struct KeyEnv<'a> {
    /// The absolute project root.
    pub(crate) root: &'a Path,
    pub(crate) index: &'a StatIndex,
    pub(crate) workspace: &'a Workspace,
    /// Workspace inputs already derived from the current snapshot, by input globs.
    pub(crate) memo: &'a InputMemo,
    pub(crate) function: DigestFunction,
    /// The digest under `function` of a stored blob named by its BLAKE3 digest.
    pub(crate) rehash: &'a dyn Fn(&Digest) -> Result<Digest, CacheError>,
    /// The digest under `function` and size of the running executable: a native task's
    /// input root holds it as [`NATIVE_PROGRAM`], so a remote worker runs the same binary
    /// under the same key.
    pub(crate) native_exe: &'a dyn Fn() -> Result<(Digest, u64), CacheError>,
}

/// What a task's input globs select from one workspace snapshot: the same for every task with
/// the same globs (globs are relative to the project, not the workdir), so derived once per
/// snapshot [`Token`] and shared.
#[derive(Debug)]
pub(crate) struct WorkspaceInputs {
    /// Path -> digest: the manifest's `inputs`.
    inputs: InputDigests,
    /// The files as input-tree nodes, in the order of `inputs` (before dependency outputs
    /// are placed).
    nodes: Vec<InputNode>,
    /// The input root of `tree` alone (a task with no dependency outputs), built once.
    root: OnceLock<InputRoot>,
}

/// [`WorkspaceInputs`] by input globs, valid for one snapshot [`Token`]: a key asked under
/// another token (the workspace was invalidated or refreshed) starts afresh. Thread-safe.
#[derive(Debug, Default)]
pub(crate) struct InputMemo {
    inner: Mutex<MemoState>,
}

type MemoState = (Option<Token>, HashMap<Vec<String>, Arc<WorkspaceInputs>>);

impl InputMemo {
    fn get(&self, token: Token, globs: &[String]) -> Option<Arc<WorkspaceInputs>> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &*m {
            (Some(t), map) if *t == token => map.get(globs).cloned(),
            _ => None,
        }
    }

    fn put(&self, token: Token, globs: &[String], inputs: Arc<WorkspaceInputs>) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if m.0 != Some(token) {
            *m = (Some(token), HashMap::new());
        }
        m.1.insert(globs.to_vec(), inputs);
    }

    /// Forgets everything (the workspace may change).
    pub(crate) fn clear(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = (None, HashMap::new());
    }
}

/// The task's workspace inputs: from the memo when the current snapshot already answered for
/// the same globs, otherwise selected, digested and (when the snapshot answered) memoized.
fn workspace_inputs(task: &Task, env: &KeyEnv<'_>) -> Result<Arc<WorkspaceInputs>, CacheError> {
    if let Some(token) = env.workspace.token()
        && let Some(found) = env.memo.get(token, &task.inputs)
    {
        return Ok(found);
    }
    let sel = selection(&task.name, &task.inputs, env.root)?;
    let (files, token) = env.workspace.select(&task.name, &sel)?;
    let digests = hash_all(env.root, &files, env.index)?;
    let mut nodes = Vec::with_capacity(files.len());
    let mut inputs = Vec::with_capacity(files.len());
    for ((path, meta), digest) in files.into_iter().zip(digests) {
        nodes.push(if meta.is_symlink() {
            let p = env.root.join(&path);
            let target = std::fs::read_link(&p)
                .map_err(|e| CacheError::io("read link", &p, e))?
                .to_string_lossy()
                .into_owned();
            InputNode::Symlink { target }
        } else {
            InputNode::File {
                digest,
                size: meta.stat.size,
                executable: meta.is_executable(),
            }
        });
        inputs.push((path, digest));
    }
    // Collected from a sorted sequence: bulk-built, no per-entry search.
    let inputs = InputDigests::from(inputs.into_iter().collect::<BTreeMap<_, _>>());
    let found = Arc::new(WorkspaceInputs {
        inputs,
        nodes,
        root: OnceLock::new(),
    });
    if let Some(token) = token {
        env.memo.put(token, &task.inputs, found.clone());
    }
    Ok(found)
}

/// Computes the key of `task`. Input globs and a host workdir are relative to `env.root`.
pub(crate) fn compute(
    task: &Task,
    ctx: &KeyContext,
    env: &KeyEnv<'_>,
) -> Result<Keyed, CacheError> {
    let not = |reason| Ok(Keyed::NotCacheable { reason });
    // A remote plugin task is keyed all the same: its key is its action's digest, which the
    // remote executor sends with `do_not_cache` (and nothing stores under it).
    if let Some(reason) =
        never_cached(task).filter(|r| !matches!(r, NotCacheable::RemotePlugin { .. }))
    {
        return not(reason);
    }
    let (identity, mut arguments) = match (&task.native, &task.command) {
        (Some(name), _) => match &ctx.native_identity {
            Some(identity) => (
                ActionIdentity::Native {
                    name: name.clone(),
                    identity: identity.clone(),
                },
                vec![
                    NATIVE_PROGRAM.to_owned(),
                    "--sykli-exec".into(),
                    name.clone(),
                ],
            ),
            None => return not(NotCacheable::NativeWithoutIdentity),
        },
        (None, Some(command)) => (
            ActionIdentity::Shell {
                command: command.clone(),
            },
            vec!["/bin/sh".into(), "-c".into(), command.clone()],
        ),
        (None, None) => return not(NotCacheable::NoAction),
    };
    // Where the task runs on the host, relative to the project: dependency outputs and
    // `task_inputs` lie under it. A container task runs at the root.
    let host_workdir = match task.workdir.as_deref() {
        Some(w) if task.container.is_none() => match normal_relative(w, env.root) {
            Some(rel) => rel,
            None => {
                return not(NotCacheable::WorkdirOutsideProject {
                    workdir: w.to_owned(),
                });
            }
        },
        _ => String::new(),
    };
    let workdir = match (&task.container, task.workdir.as_deref()) {
        (Some(_), Some(w)) => container_workdir(task, w),
        _ => host_workdir.clone(),
    };
    // REAPI resolves a relative `arguments[0]` against the working directory: name the
    // pipeline binary at the input root from there.
    if let (ActionIdentity::Native { .. }, Some(program)) = (&identity, arguments.first_mut()) {
        let depth = workdir.split('/').filter(|c| !c.is_empty()).count();
        *program = if depth == 0 {
            format!("./{NATIVE_PROGRAM}")
        } else {
            format!("{}{NATIVE_PROGRAM}", "../".repeat(depth))
        };
    }

    let mut secrets: BTreeSet<String> = task.secrets.iter().cloned().collect();
    secrets.extend(task.secret_refs.iter().map(|r| r.name.clone()));
    let plain_env: BTreeMap<String, String> = task
        .env
        .iter()
        .chain(ctx.env.iter())
        .filter(|(k, _)| !secrets.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let env_digests = plain_env
        .iter()
        .map(|(k, v)| (k.clone(), env_digest(v)))
        .collect();

    let mut dependencies = BTreeMap::new();
    for (dep, produced) in &ctx.dependency_outputs {
        for (name, tree) in &produced.outputs {
            dependencies.insert(format!("{dep}/{name}"), tree.digest);
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
    // Encoded only when set (most tasks set none of them).
    let mut setting = |name: &str, value: &dyn Fn() -> serde_json::Result<String>, empty: bool| {
        if !empty && let Ok(v) = value() {
            settings.insert(name.to_owned(), v);
        }
    };
    setting(
        "mounts",
        &|| serde_json::to_string(&task.mounts),
        task.mounts.is_empty(),
    );
    setting(
        "services",
        &|| serde_json::to_string(&task.services),
        task.services.is_empty(),
    );
    setting(
        "success_criteria",
        &|| serde_json::to_string(&task.success_criteria),
        task.success_criteria.is_empty(),
    );
    setting(
        "task_inputs",
        &|| serde_json::to_string(&task.task_inputs),
        task.task_inputs.is_empty(),
    );
    setting(
        "requires",
        &|| serde_json::to_string(&task.requires),
        task.requires.is_empty(),
    );
    setting(
        "timeout",
        &|| serde_json::to_string(&task.timeout),
        task.timeout.is_none(),
    );

    // The input tree: the task's files, then dependency outputs where they land.
    let ws = workspace_inputs(task, env)?;
    let inputs = ws.inputs.clone();
    // A native task runs the pipeline binary: it is a file of the input root, named by
    // `Command.arguments[0]`, as REAPI asks.
    let native_node = match &identity {
        ActionIdentity::Native { .. } => {
            let (digest, size) = (env.native_exe)()?;
            Some(InputNode::File {
                digest,
                size,
                executable: true,
            })
        }
        ActionIdentity::Shell { .. } => None,
    };
    let input_root = if native_node.is_none()
        && ctx
            .dependency_outputs
            .values()
            .all(|p| p.outputs.is_empty())
    {
        // Nothing to place (a `task_inputs` entry names an output that exists): the tree is
        // the workspace inputs alone.
        ws.root
            .get_or_init(|| {
                let entries: Vec<(&str, &InputNode)> = ws
                    .inputs
                    .keys()
                    .map(String::as_str)
                    .zip(&ws.nodes)
                    .collect();
                merkle::input_root_of_sorted(&entries, env.function)
            })
            .clone()
    } else {
        let mut tree: BTreeMap<String, InputNode> = ws
            .inputs
            .keys()
            .cloned()
            .zip(ws.nodes.iter().cloned())
            .collect();
        if let Some(node) = native_node {
            tree.insert(NATIVE_PROGRAM.to_owned(), node);
        }
        for (dep, produced) in &ctx.dependency_outputs {
            let base = match &produced.workdir {
                Some(w) => w.clone(),
                None => format!(".sykli/outside/{dep}"),
            };
            for out in produced.outputs.values() {
                place_output(&mut tree, &task.name, &base, out, None, env)?;
            }
        }
        for ti in &task.task_inputs {
            let out = ctx
                .dependency_outputs
                .get(&ti.from_task)
                .and_then(|p| p.outputs.get(&ti.output));
            if let Some(out) = out {
                place_output(
                    &mut tree,
                    &task.name,
                    &host_workdir,
                    out,
                    Some(&ti.dest),
                    env,
                )?;
            }
        }
        merkle::input_root(&tree, env.function)
    };

    let mut platform = vec![
        ("OSFamily".to_owned(), action::host_os_family().to_owned()),
        ("ISA".to_owned(), action::host_isa().to_owned()),
    ];
    if let Some(image) = &task.container {
        let image = if image.starts_with("docker://") {
            image.clone()
        } else {
            format!("docker://{image}")
        };
        platform.push(("container-image".into(), image));
    }
    platform.extend(task.requires.iter().map(|l| (l.clone(), "true".to_owned())));
    // A remote task whose target is not the remote executor itself names a plugin of the
    // worker (docs/plugins.md).
    if let Some(target) = remote_plugin(task) {
        platform.push((SYKLI_TARGET.to_owned(), target.to_owned()));
    }
    let salt_settings: BTreeMap<String, String> = settings
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "requires" | "timeout"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let spec = ActionSpec {
        arguments,
        env: plain_env,
        working_directory: workdir.trim_start_matches('/').to_owned(),
        output_paths: task
            .outputs
            .values()
            .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_owned())
            .collect(),
        platform,
        timeout_secs: task.timeout,
        do_not_cache: false,
        salt: Salt {
            schema: SCHEMA_VERSION,
            native_identity: match &identity {
                ActionIdentity::Native { identity, .. } => Some(identity.clone()),
                ActionIdentity::Shell { .. } => None,
            },
            executor_identity: ctx.executor_identity.clone(),
            outputs: task.outputs.clone(),
            secrets: secrets.iter().cloned().collect(),
            settings: salt_settings,
        },
    };
    let messages = action::build(&spec, input_root, env.function);

    let manifest = KeyManifest {
        schema: SCHEMA_VERSION,
        task: task.name.clone(),
        action: identity,
        image: task.container.clone(),
        workdir,
        platform: host_platform(),
        env: env_digests,
        secrets,
        input_globs: task.inputs.clone(),
        inputs,
        outputs: task.outputs.clone(),
        dependencies,
        settings,
    };
    Ok(Keyed::Cacheable {
        key: messages.key(),
        manifest,
        action: std::sync::Arc::new(messages),
    })
}

/// A container task's working directory as the action names it: under a mount of a project
/// directory (`src:DIR` at `PATH`), the matching place in the project (the input root is the
/// project, so a remote worker finds the files where the local mount shows them); else the
/// in-container path.
fn container_workdir(task: &Task, workdir: &str) -> String {
    use crate::graph::model::MountKind;
    for m in &task.mounts {
        let Some(dir) = m.resource.strip_prefix("src:") else {
            continue;
        };
        if m.kind != MountKind::Directory {
            continue;
        }
        let at = m.path.trim_end_matches('/');
        let rest = if workdir.trim_end_matches('/') == at {
            ""
        } else if let Some(r) = workdir.strip_prefix(at).and_then(|r| r.strip_prefix('/')) {
            r
        } else {
            continue;
        };
        if let Some(base) = normal_relative(dir, Path::new("/"))
            && let Some(rest) = normal_relative(rest, Path::new("/"))
        {
            return join(&base, &rest);
        }
    }
    workdir.to_owned()
}

/// `path` as a normalised relative path (`/`-separated, no `.`, `..` or empty components),
/// an absolute path being taken relative to `root`; `None` when it leaves `root`.
fn normal_relative(path: &str, root: &Path) -> Option<String> {
    let p = Path::new(path);
    let p = if p.is_absolute() {
        p.strip_prefix(root).ok()?
    } else {
        p
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

/// Puts the files of a dependency output into `tree`: where they lie (under the producer's
/// workdir `base`), or under `base/dest` for a `task_inputs` copy.
fn place_output(
    tree: &mut BTreeMap<String, InputNode>,
    task: &str,
    base: &str,
    out: &OutputTree,
    dest: Option<&str>,
    env: &KeyEnv<'_>,
) -> Result<(), CacheError> {
    let bad = |path: &str, reason: &str| CacheError::InvalidInput {
        task: task.to_owned(),
        glob: path.to_owned(),
        reason: reason.to_owned(),
    };
    // Relative paths only: an absolute one is refused by `normal_relative` against "/"
    // only when it is not under "/", so check it first.
    let rel = |p: &str, what: &str| {
        if Path::new(p).is_absolute() {
            return Err(bad(p, &format!("{what} is absolute")));
        }
        normal_relative(p, Path::new("/"))
            .ok_or_else(|| bad(p, &format!("{what} leaves the workdir")))
    };
    let top = rel(&out.path, "the dependency output path")?;
    let dest = dest
        .map(|d| rel(d, "the task input destination"))
        .transpose()?;
    for (path, entry) in &out.entries {
        let path = rel(path, "the dependency output file")?;
        let at = match &dest {
            None => join(base, &path),
            Some(d) => {
                let inner = path
                    .strip_prefix(top.as_str())
                    .map(|r| r.trim_start_matches('/'))
                    .unwrap_or(path.as_str());
                join(base, &join(d, inner))
            }
        };
        let node = match entry {
            OutputEntry::File { digest, size, mode } => {
                let digest = if env.function == DigestFunction::Blake3 {
                    *digest
                } else {
                    (env.rehash)(digest)?
                };
                InputNode::File {
                    digest,
                    size: *size,
                    executable: mode & 0o111 != 0,
                }
            }
            OutputEntry::Symlink { target } => InputNode::Symlink {
                target: target.clone(),
            },
        };
        tree.insert(at, node);
    }
    Ok(())
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// Compiles `globs` (relative to the project, gitignore-aware) into a [`Selection`].
pub(crate) fn selection(
    task: &str,
    globs: &[String],
    root: &Path,
) -> Result<Selection, CacheError> {
    let bad = |glob: &str, reason: String| CacheError::InvalidInput {
        task: task.to_owned(),
        glob: glob.to_owned(),
        reason,
    };
    let mut set = GlobSetBuilder::new();
    let mut bases: Vec<PathBuf> = Vec::new();
    // Whether every glob is "everything under a directory" (`dir/**`).
    let mut whole_dirs = true;
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
        whole_dirs &= pattern
            .strip_suffix("/**")
            .is_some_and(|dir| !dir.is_empty() && !has_meta(dir));
        let compiled = globset::GlobBuilder::new(&pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| bad(glob, e.kind().to_string()))?;
        set.add(compiled);
        // The files lie under the longest directory prefix without glob characters.
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
    let set: Option<GlobSet> = if whole_dirs {
        None
    } else {
        Some(
            set.build()
                .map_err(|e| bad(&globs.join(", "), e.to_string()))?,
        )
    };
    bases.sort();
    bases.dedup();
    let mut roots: Vec<PathBuf> = Vec::new();
    for b in bases {
        if !roots.iter().any(|r| b.starts_with(r)) {
            roots.push(b);
        }
    }
    Ok(Selection { bases: roots, set })
}

/// Threads used to hash a task's changed inputs (asked once: the query reads cgroup files).
fn hash_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Digests every file (in order), in parallel when there is real hashing to do.
fn hash_all(
    root: &Path,
    files: &[(String, FileMeta)],
    index: &StatIndex,
) -> Result<Vec<Digest>, CacheError> {
    let one = |(rel, meta): &(String, FileMeta)| {
        index
            .digest(root, rel, &meta.stat)
            .map_err(|e| CacheError::io("hash input file", &root.join(rel), e))
    };
    let mut out: Vec<Option<Digest>> =
        index.trusted(files.iter().map(|(p, m)| (p.as_str(), &m.stat)));
    let todo: Vec<usize> = (0..files.len()).filter(|&i| out[i].is_none()).collect();
    let threads = hash_threads();
    if todo.len() < 8 || threads == 1 {
        for &i in &todo {
            out[i] = Some(one(&files[i])?);
        }
    } else {
        // Chunks of 16 files on the shared pool (no thread started per task).
        type Chunk = Result<Vec<(usize, Digest)>, CacheError>;
        let results: std::sync::Mutex<Vec<Chunk>> = std::sync::Mutex::new(Vec::new());
        rayon_core::scope(|s| {
            for chunk in todo.chunks(16) {
                let (results, one) = (&results, &one);
                s.spawn(move |_| {
                    let done = chunk
                        .iter()
                        .map(|&i| one(&files[i]).map(|d| (i, d)))
                        .collect();
                    results.lock().unwrap_or_else(|p| p.into_inner()).push(done);
                });
            }
        });
        for r in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            for (i, d) in r? {
                out[i] = Some(d);
            }
        }
    }
    // Every slot is filled above; a hole would be a bug, reported rather than panicking.
    out.into_iter()
        .zip(files)
        .map(|(d, (p, _))| {
            d.ok_or_else(|| CacheError::Walk {
                task: String::new(),
                message: format!("no digest computed for {p}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_task(mounts: &str, workdir: &str) -> Task {
        serde_json::from_str(&format!(
            r#"{{"name": "t", "command": "x", "container": "img", "workdir": "{workdir}", "mounts": {mounts}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_container_workdir_under_a_project_mount_is_the_project_path() {
        let m = r#"[{"resource": "src:.", "path": "/work", "type": "directory"}]"#;
        assert_eq!(container_workdir(&container_task(m, "/work"), "/work"), "");
        assert_eq!(
            container_workdir(&container_task(m, "/work/a/b"), "/work/a/b"),
            "a/b"
        );
        assert_eq!(
            container_workdir(&container_task(m, "/workx"), "/workx"),
            "/workx"
        );
        let m = r#"[{"resource": "src:web", "path": "/app/", "type": "directory"}]"#;
        assert_eq!(
            container_workdir(&container_task(m, "/app/src"), "/app/src"),
            "web/src"
        );
        // Anything else keeps the in-container path.
        assert_eq!(
            container_workdir(&container_task("[]", "/src"), "/src"),
            "/src"
        );
    }
}
