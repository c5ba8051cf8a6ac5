//! The `sandbox` field of a task: run it hermetically (namespaces and cgroups).
//!
//! On the wire `"sandbox": true` asks for the defaults (no network, no limits); an object
//! sets them: `{"network": true, "memory_mb": 512, "cpus": 1.5, "pids": 256, "paths":
//! ["/opt/tools"]}`. `false` and `null` mean no sandbox.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a sandboxed task runs. See `docs/sandbox.md`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    /// Keep the host's network (default: a private network namespace with only loopback).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
    /// Memory limit in MiB (the task is killed above it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// CPU limit as a number of CPUs (e.g. 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Limit on processes and threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Extra host paths visible read-only (absolute), beyond the executor's defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Sandbox {
    /// Whether every setting is the default (emitted as `true`).
    pub fn is_default(&self) -> bool {
        *self == Sandbox::default()
    }

    /// A one-line description for `sykli explain`: `network off, memory 512 MiB, ...`.
    pub fn describe(&self) -> String {
        let mut parts = vec![if self.network {
            "network on".to_owned()
        } else {
            "network off".to_owned()
        }];
        if let Some(m) = self.memory_mb {
            parts.push(format!("memory {m} MiB"));
        }
        if let Some(c) = self.cpus {
            parts.push(format!("cpus {c}"));
        }
        if let Some(p) = self.pids {
            parts.push(format!("pids {p}"));
        }
        if !self.paths.is_empty() {
            parts.push(format!("paths {}", self.paths.join(" ")));
        }
        parts.join(", ")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Wire {
    Flag(bool),
    Settings(Sandbox),
}

/// Serde for `Task::sandbox`: `true` / `false` / `null` / an object.
pub(crate) mod field {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Sandbox>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(sb) if sb.is_default() => s.serialize_bool(true),
            Some(sb) => sb.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Sandbox>, D::Error> {
        Ok(match Option::<Wire>::deserialize(d)? {
            None | Some(Wire::Flag(false)) => None,
            Some(Wire::Flag(true)) => Some(Sandbox::default()),
            Some(Wire::Settings(s)) => Some(s),
        })
    }
}

/// Sandboxes every task of `graph` that the sandbox can run and that sets no `sandbox` of
/// its own (`sykli run --sandbox`): shell commands on the host, not background services,
/// containers, gates or native functions. Returns how many it changed.
pub fn sandbox_all(graph: &mut super::Graph) -> usize {
    let mut n = 0;
    for t in &mut graph.tasks {
        let eligible = t.command.is_some()
            && t.container.is_none()
            && t.background.is_none()
            && t.gate.is_none()
            && t.native.is_none();
        if eligible && t.sandbox.is_none() {
            t.sandbox = Some(Sandbox::default());
            n += 1;
        }
    }
    n
}
