//! A plugin's manifest (`plugin.toml`): its name, its component and the grants and limits it
//! runs under. Grants are the only authority a plugin has.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PluginError;

/// Default linear memory cap of a plugin, in MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 64;
/// The largest memory cap a manifest may ask for, in MiB (the pooling allocator's slot size).
pub const MAX_MEMORY_MIB: u64 = 1024;
/// Deadline of a call when neither the manifest nor the task sets one.
pub const DEFAULT_DEADLINE_MS: u64 = 10 * 60 * 1000;

/// A parsed `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The target name tasks select (`target: NAME`); default: the plugin's `describe().name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The component file, relative to the manifest.
    pub component: PathBuf,
    /// What the plugin may do outside its own memory.
    #[serde(default)]
    pub grants: Grants,
    /// Its per-call limits.
    #[serde(default)]
    pub limits: Limits,
}

/// The authority a manifest grants; everything else is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Directories it may read (and write, when `write`), relative to the project directory
    /// (on a worker: the action's working directory) or absolute.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// `host:port` pairs it may send HTTP requests to.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Programs it may spawn: a name looked up on PATH, or an absolute path.
    #[serde(default)]
    pub spawn: Vec<String>,
}

/// One granted directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory.
    pub path: PathBuf,
    /// Whether files inside it may be written.
    #[serde(default)]
    pub write: bool,
}

/// Per-call limits of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap in MiB; growing past it traps and the task is errored.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// Wall-clock deadline of one call in milliseconds; default: the task's timeout, else
    /// 10 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

fn default_memory_mib() -> u64 {
    DEFAULT_MEMORY_MIB
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: DEFAULT_MEMORY_MIB,
            deadline_ms: None,
        }
    }
}

/// A manifest read from disk with its component's bytes.
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest's TOML text, as read (what `plugin push` sends).
    pub manifest_text: String,
    /// The component's bytes.
    pub wasm: Vec<u8>,
}

impl PluginSource {
    /// Reads the manifest at `path` and the component it names.
    pub fn read(path: &Path) -> Result<PluginSource, PluginError> {
        let manifest_text = std::fs::read_to_string(path).map_err(|e| PluginError::Io {
            what: format!("reading plugin manifest {}", path.display()),
            source: e,
        })?;
        let manifest = Manifest::parse(&manifest_text, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let component = dir.join(&manifest.component);
        let wasm = std::fs::read(&component).map_err(|e| PluginError::Io {
            what: format!(
                "reading component {} (`component` of {})",
                component.display(),
                path.display()
            ),
            source: e,
        })?;
        Ok(PluginSource {
            manifest,
            manifest_text,
            wasm,
        })
    }
}

impl Manifest {
    /// Parses and validates a manifest's TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, PluginError> {
        let m: Manifest = toml::from_str(text).map_err(|e| PluginError::Manifest {
            origin: origin.to_owned(),
            message: e.to_string().trim().to_owned(),
        })?;
        m.validate().map_err(|message| PluginError::Manifest {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(m)
    }

    /// Every rule a manifest must satisfy; the first broken one, naming its key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            check_name(name).map_err(|e| format!("name: {e}"))?;
        }
        if self.component.as_os_str().is_empty() {
            return Err("component: must name the component file".into());
        }
        self.grants.validate()?;
        self.limits.validate()
    }
}

impl Grants {
    /// Checks every grant's form, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (i, d) in self.dirs.iter().enumerate() {
            if d.path.as_os_str().is_empty() {
                return Err(format!("grants.dirs[{i}].path: must not be empty"));
            }
        }
        for h in &self.hosts {
            parse_host_port(h).map_err(|e| format!("grants.hosts: `{h}`: {e}"))?;
        }
        for p in &self.spawn {
            if p.is_empty() {
                return Err("grants.spawn: a program must not be empty".into());
            }
            if p.contains('/') && !Path::new(p).is_absolute() {
                return Err(format!(
                    "grants.spawn: `{p}`: a program is a bare name (looked up on PATH) or an absolute path"
                ));
            }
        }
        Ok(())
    }
}

impl Limits {
    /// Checks the limits' ranges, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_mib == 0 || self.memory_mib > MAX_MEMORY_MIB {
            return Err(format!(
                "limits.memory_mib: {} is out of range (1..={MAX_MEMORY_MIB})",
                self.memory_mib
            ));
        }
        if self.deadline_ms == Some(0) {
            return Err("limits.deadline_ms: must be at least 1".into());
        }
        Ok(())
    }
}

/// Checks a target name: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid target name (1-64 of a-z, 0-9, `-`, `_`, starting with a letter)"
        ))
    }
}

/// Splits `host:port` (port required) into its lowercased host and port.
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_owned())?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_manifest_parses_with_defaults_filled_in() {
        let m = Manifest::parse(
            r#"
name = "spawn"
component = "spawn.wasm"
[grants]
dirs = [{ path = ".", write = true }]
hosts = ["127.0.0.1:8080"]
spawn = ["sh"]
"#,
            "plugin.toml",
        )
        .unwrap();
        assert_eq!(m.name.as_deref(), Some("spawn"));
        assert!(m.grants.dirs[0].write);
        assert_eq!(m.limits.memory_mib, DEFAULT_MEMORY_MIB);
        assert_eq!(m.limits.deadline_ms, None);
    }

    #[test]
    fn bad_values_are_named_with_their_key() {
        let cases = [
            (
                "component = \"a.wasm\"\n[limits]\nmemory_mib = 0",
                "limits.memory_mib",
            ),
            (
                "component = \"a.wasm\"\n[limits]\ndeadline_ms = 0",
                "limits.deadline_ms",
            ),
            (
                "component = \"a.wasm\"\n[grants]\nhosts = [\"x\"]",
                "grants.hosts",
            ),
            (
                "component = \"a.wasm\"\n[grants]\nhosts = [\"x:http\"]",
                "not a port",
            ),
            (
                "component = \"a.wasm\"\n[grants]\nspawn = [\"bin/sh\"]",
                "grants.spawn",
            ),
            ("name = \"Bad Name\"\ncomponent = \"a.wasm\"", "name:"),
            ("component = \"a.wasm\"\nfoo = 1", "unknown field `foo`"),
            ("name = \"x\"", "missing field `component`"),
        ];
        for (text, want) in cases {
            let e = Manifest::parse(text, "p.toml").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("p.toml"), "{text}: {e}");
        }
    }
}
