//! The wire types: exactly what an SDK emits, before validation.
//!
//! These types read every document the upstream Sykli SDKs emit (versions "1" to "4") and
//! write canonical JSON: fields in the order declared here, every map sorted by key, so the
//! Rust, Go and TypeScript SDKs can emit the same bytes for the same pipeline. They carry no invariants beyond shape: [`super::validate`] turns a
//! [`Graph`] into something safe to plan.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::limits::Limits;
use super::sandbox::Sandbox;

/// A whole task-graph document: `{"version": "2", "tasks": [...], "resources": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Format version, "1" to "4".
    pub version: Version,
    /// Tasks in the SDK's definition order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tasks: Vec<Task>,
    /// Named directory and cache resources that mounts refer to.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub resources: BTreeMap<String, Resource>,
    /// Top-level fields this runtime does not know; kept and re-emitted.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Graph {
    /// An empty graph of the lowest version.
    pub fn new() -> Self {
        Graph {
            version: Version::V1,
            tasks: Vec::new(),
            resources: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Parses a JSON document within the default [`Limits`] (size, nesting depth, string
    /// length). Shape and limit errors carry the line and column.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        Graph::from_json_with(text, &Limits::DEFAULT)
    }

    /// [`Graph::from_json`] with explicit limits.
    pub fn from_json_with(text: &str, limits: &Limits) -> Result<Self, serde_json::Error> {
        limits
            .check_text(text)
            .map_err(<serde_json::Error as serde::de::Error>::custom)?;
        serde_json::from_str(text)
    }

    /// Canonical pretty JSON (two-space indent, a trailing newline).
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("graph serialises infallibly");
        s.push('\n');
        s
    }

    /// Looks a task up by name.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// The lowest format version that covers every field this document uses.
    pub fn required_version(&self) -> Version {
        let from_resources = if self.resources.is_empty() {
            Version::V1
        } else {
            Version::V2
        };
        self.tasks
            .iter()
            .map(Task::required_version)
            .fold(from_resources, Version::max)
    }

    /// Sets `version` to [`Graph::required_version`]: what emitters do before printing.
    pub fn normalize_version(&mut self) {
        self.version = self.required_version();
    }
}

impl Default for Graph {
    fn default() -> Self {
        Graph::new()
    }
}

/// The format version. Serialised as a string; a number or an unknown string is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// "1": commands, dependencies, inputs, outputs, env, conditions, secrets.
    V1,
    /// "2": containers, mounts, directory and cache resources.
    V2,
    /// "3": `task_type` and `success_criteria`.
    V3,
    /// "4": `evidence_required`.
    V4,
}

impl Version {
    /// The wire string: "1" to "4".
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "1",
            Version::V2 => "2",
            Version::V3 => "3",
            Version::V4 => "4",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match v.as_str() {
            Some("1") => Ok(Version::V1),
            Some("2") => Ok(Version::V2),
            Some("3") => Ok(Version::V3),
            Some("4") => Ok(Version::V4),
            Some(other) => Err(serde::de::Error::custom(format!(
                "unsupported graph version \"{other}\" (expected \"1\", \"2\", \"3\" or \"4\")"
            ))),
            None => Err(serde::de::Error::custom(format!(
                "graph version must be a string \"1\" to \"4\", got {v}"
            ))),
        }
    }
}

/// One task as emitted. Optional fields are omitted from JSON when unset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Task {
    /// Unique, non-empty name.
    pub name: String,
    /// Shell command, run with `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Names of tasks that must succeed first, in the order the user wrote them.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub depends_on: Vec<String>,
    /// Environment variables for the command.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, String>,
    /// Working directory: relative to the project, or inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Globs whose files form the cache key.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inputs: Vec<String>,
    /// Named output paths. The array form `["a", "b"]` is read as `output_0`, `output_1`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "deserialize_outputs"
    )]
    pub outputs: BTreeMap<String, String>,
    /// Outputs of other tasks copied into this task's workdir (implies a dependency).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub task_inputs: Vec<TaskInput>,
    /// Container image to run the command in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Resources mounted into the container.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<Mount>,
    /// Sidecar containers reachable by hostname.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub services: Vec<Service>,
    /// Dimension -> values; expands to one task per combination.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub matrix: BTreeMap<String, Vec<String>>,
    /// Secret names read from the environment.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<String>,
    /// Typed secret references.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secret_refs: Vec<SecretRef>,
    /// Condition expression. See [`Task::condition_expr`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Upstream alias of `when`, read but never emitted by SDKs; `when` wins when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Extra attempts after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<u32>,
    /// Wall-clock limit in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Labels a worker must carry to run the task.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub requires: Vec<String>,
    /// Capabilities this task provides to others.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub provides: Vec<Provide>,
    /// Capabilities this task needs: a dependency on the provider.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub needs: Vec<String>,
    /// Makes this task an approval gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// Checks applied after the command.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub success_criteria: Vec<SuccessCriterion>,
    /// Upstream: task type label (version "3").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    /// Upstream: task kind, e.g. "review".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Upstream: Kubernetes options, carried as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s: Option<Value>,
    /// Upstream: semantic metadata, carried as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<Value>,
    /// Upstream: AI hooks, carried as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_hooks: Option<Value>,
    /// Upstream: evidence requirements (version "4"), carried as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_required: Option<Value>,
    /// Ours: must run on a remote executor.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub remote: bool,
    /// Ours: placement preference the scheduler may override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer: Option<Placement>,
    /// Ours: a Rust function registered in the pipeline binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<String>,
    /// Ours: `false` disables caching even with inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    /// Ours: the target (built-in or plugin) that runs this task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Ours: a run-scoped host service. The command keeps running in the background once
    /// its readiness check passes, and is stopped when the run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Background>,
    /// Ours: run hermetically in a sandbox (namespaces and cgroups); see [`Sandbox`].
    #[serde(
        default,
        with = "super::sandbox::field",
        skip_serializing_if = "Option::is_none"
    )]
    pub sandbox: Option<Sandbox>,
    /// Ours: the test output format the command prints (`cargo`, `go-json`, `tap`; see
    /// [`crate::testreport::TestFormat`]), so reports list its individual tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<String>,
    /// Fields this runtime does not know; kept and re-emitted.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Reads an optional field whose `null` means absent, as upstream Sykli and other emitters
/// write it: `"inputs": null` is `[]`, `"remote": null` is `false`. Applied to every optional
/// field that is not an `Option` (for which serde already reads `null` as `None`).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Task {
    /// A task with only a name.
    pub fn named(name: impl Into<String>) -> Self {
        Task {
            name: name.into(),
            ..Task::default()
        }
    }

    /// The effective condition: `when`, else the `condition` alias.
    pub fn condition_expr(&self) -> Option<&str> {
        self.when.as_deref().or(self.condition.as_deref())
    }

    /// The lowest format version that covers the fields this task uses.
    pub fn required_version(&self) -> Version {
        if self.evidence_required.is_some() {
            Version::V4
        } else if self.task_type.is_some() || !self.success_criteria.is_empty() {
            Version::V3
        } else if self.container.is_some() || !self.mounts.is_empty() {
            Version::V2
        } else {
            Version::V1
        }
    }

    /// Names of the fields that raise this task above version "1", for error messages.
    pub fn versioned_fields(&self) -> Vec<(&'static str, Version)> {
        let mut out = Vec::new();
        if self.container.is_some() {
            out.push(("container", Version::V2));
        }
        if !self.mounts.is_empty() {
            out.push(("mounts", Version::V2));
        }
        if self.task_type.is_some() {
            out.push(("task_type", Version::V3));
        }
        if !self.success_criteria.is_empty() {
            out.push(("success_criteria", Version::V3));
        }
        if self.evidence_required.is_some() {
            out.push(("evidence_required", Version::V4));
        }
        out
    }

    /// Every task this one depends on: `depends_on` plus `task_inputs` sources, deduplicated,
    /// in first-seen order. Capability `needs` are resolved by validation, not here.
    pub fn direct_dependencies(&self) -> Vec<&str> {
        let mut seen = Vec::with_capacity(self.depends_on.len() + self.task_inputs.len());
        for d in self
            .depends_on
            .iter()
            .map(String::as_str)
            .chain(self.task_inputs.iter().map(|i| i.from_task.as_str()))
        {
            if !seen.contains(&d) {
                seen.push(d);
            }
        }
        seen
    }
}

fn deserialize_outputs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Outputs {
        Map(BTreeMap<String, String>),
        List(Vec<String>),
    }
    match Option::<Outputs>::deserialize(d) {
        Ok(None) => Ok(BTreeMap::new()),
        Ok(Some(Outputs::Map(m))) => Ok(m),
        Ok(Some(Outputs::List(l))) => Ok(l
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("output_{i}"), p))
            .collect()),
        Err(_) => Err(serde::de::Error::custom(
            "`outputs` must be an object of name -> path or an array of paths",
        )),
    }
}

/// A dependency's output copied into this task: `{from_task, output, dest}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInput {
    /// The producing task.
    pub from_task: String,
    /// The name of its output.
    pub output: String,
    /// Destination path, relative to this task's workdir.
    pub dest: String,
}

/// A resource mounted into a container: `{resource, path, type}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Resource id, a key of [`Graph::resources`].
    pub resource: String,
    /// Mount point inside the container.
    pub path: String,
    /// Kind of resource mounted.
    #[serde(rename = "type")]
    pub kind: MountKind,
}

/// What a mount refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A directory of the project (bind mount).
    Directory,
    /// A named cache volume that persists between runs.
    Cache,
}

/// A named resource: a project directory or a persistent cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Resource {
    /// A directory of the project.
    Directory {
        /// Path relative to the project root.
        path: String,
        /// Optional globs selecting files within it.
        #[serde(
            default,
            deserialize_with = "null_as_default",
            skip_serializing_if = "Vec::is_empty"
        )]
        globs: Vec<String>,
    },
    /// A named cache volume.
    Cache {
        /// Volume name.
        name: String,
    },
}

/// A sidecar container: `{image, name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Image to run.
    pub image: String,
    /// Hostname the task reaches it by.
    pub name: String,
    /// Fields this runtime does not know (e.g. health checks from newer SDKs); kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A typed secret reference: `{name, source, key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// Name the task sees the secret under (an env var).
    pub name: String,
    /// Where the value comes from.
    pub source: SecretSource,
    /// Env var name or file path, per `source`.
    pub key: String,
}

/// Where a secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// An environment variable of the runtime.
    Env,
    /// A regular file inside the project (relative path), read when the task starts.
    File,
    /// A Vault path (accepted; resolved only where a Vault client is configured).
    Vault,
}

/// A capability a task provides: `{name, value?}` on the wire, or a bare string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provide {
    /// Capability name.
    pub name: String,
    /// Optional value exported to consumers as `SYKLI_CAP_<NAME>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl<'de> Deserialize<'de> for Provide {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Name(String),
            Full {
                name: String,
                #[serde(default)]
                value: Option<String>,
            },
        }
        match Wire::deserialize(d) {
            Ok(Wire::Name(name)) => Ok(Provide { name, value: None }),
            Ok(Wire::Full { name, value }) => Ok(Provide { name, value }),
            Err(_) => Err(serde::de::Error::custom(
                "a `provides` entry must be a name or {\"name\": ..., \"value\": ...}",
            )),
        }
    }
}

/// A run-scoped host service: how a `background` task tells that its command is ready.
///
/// The task passes once `ready` exits 0; its dependents start then, while the command keeps
/// running. When the run ends (or is cancelled) the command's process group is stopped:
/// SIGTERM, the grace period, SIGKILL. If `ready` already passes before the command starts,
/// the service is taken as running (started outside this run) and the command is not started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Background {
    /// A shell command that exits 0 once the service is ready (`/bin/sh -c`).
    pub ready: String,
    /// Seconds to wait for `ready` to pass before the task fails (default 60).
    #[serde(
        default = "Background::default_ready_timeout",
        deserialize_with = "Background::null_as_default_ready_timeout"
    )]
    pub ready_timeout: u64,
}

impl Background {
    /// The readiness wait when a document gives none.
    pub const DEFAULT_READY_TIMEOUT: u64 = 60;

    fn default_ready_timeout() -> u64 {
        Self::DEFAULT_READY_TIMEOUT
    }

    /// `null` means absent here too: the default, not 0.
    fn null_as_default_ready_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.unwrap_or(Self::DEFAULT_READY_TIMEOUT))
    }
}

/// An approval gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// How approval is obtained.
    pub strategy: GateStrategy,
    /// Seconds to wait before the gate errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Message shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For `env`: the variable whose presence (non-empty) approves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
    /// For `file`: the file whose existence approves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// Fields this runtime does not know (e.g. webhook settings); kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// How a gate is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateStrategy {
    /// An environment variable is set.
    Env,
    /// A file exists.
    File,
    /// A person answers on the terminal.
    Prompt,
    /// An HTTP callback (accepted; needs a server).
    Webhook,
}

/// A check applied after the command exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SuccessCriterion {
    /// The exit code equals a value.
    ExitCode {
        /// Expected exit code.
        equals: i32,
    },
    /// A file exists (path contained in the workdir).
    FileExists {
        /// Path relative to the workdir.
        path: String,
    },
    /// A file exists and is not empty.
    FileNonEmpty {
        /// Path relative to the workdir.
        path: String,
    },
}

/// Where a task prefers or must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// On a remote executor.
    Remote,
    /// On this machine.
    Local,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `null` in every optional field the schema lists reads as the field being absent: the
    /// list comes from `schema/sykli-graph.schema.json`, so a field added there is covered.
    #[test]
    fn null_in_any_optional_field_means_absent() {
        let schema: Value =
            serde_json::from_str(include_str!("../../../schema/sykli-graph.schema.json")).unwrap();
        let task = &schema["$defs"]["task"];
        let gate = &task["properties"]["gate"];
        let provide = &task["properties"]["provides"]["items"]["oneOf"][1];
        let directory = &schema["$defs"]["resource"]["oneOf"][0];
        let background = &task["properties"]["background"];
        let base: Value = serde_json::json!({"version": "2", "tasks": [
            {"name": "a", "command": "x", "gate": {"strategy": "env", "env_var": "OK"},
             "provides": [{"name": "cap"}], "background": {"ready": "true"}}],
            "resources": {"src:.": {"type": "directory", "path": "."}}});
        // (where in `base` the object is, the schema of that object)
        let places: [(&[&str], &Value); 6] = [
            (&[], &schema),
            (&["tasks", "0"], task),
            (&["tasks", "0", "gate"], gate),
            (&["tasks", "0", "provides", "0"], provide),
            (&["resources", "src:."], directory),
            (&["tasks", "0", "background"], background),
        ];
        let mut checked = 0;
        for (path, object_schema) in places {
            let required: Vec<&str> = object_schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let properties = object_schema["properties"].as_object().unwrap();
            for field in properties
                .keys()
                .filter(|k| !required.contains(&k.as_str()))
            {
                let mut without = base.clone();
                let mut with_null = base.clone();
                for doc in [&mut without, &mut with_null] {
                    let mut obj = &mut *doc;
                    for p in path {
                        obj = match obj {
                            Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
                            o => &mut o[*p],
                        };
                    }
                    obj.as_object_mut().unwrap().remove(field);
                }
                let mut obj = &mut with_null;
                for p in path {
                    obj = match obj {
                        Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
                        o => &mut o[*p],
                    };
                }
                obj[field.as_str()] = Value::Null;
                let read = Graph::from_json(&with_null.to_string())
                    .unwrap_or_else(|e| panic!("`{field}: null` in {path:?}: {e}"));
                let expected = Graph::from_json(&without.to_string()).unwrap();
                assert_eq!(read, expected, "`{field}: null` in {path:?}");
                checked += 1;
            }
        }
        assert!(checked >= 40, "only {checked} fields checked");
    }
}
