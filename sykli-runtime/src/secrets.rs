//! Secrets: a value type that never prints itself, and resolution of a task's `secrets` and
//! `secret_refs` at task start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::graph::{SecretSource, Task};

/// A secret value. `Debug` and `Display` print `***`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Arc::from(value.into()))
    }

    /// The value itself. Never log it: output is masked, but your own side channels are not.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::MASK)
    }
}

/// A secret a task asked for could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or empty.
    #[error("missing secret {name}: environment variable {key} is not set")]
    MissingEnv {
        /// Name the task sees.
        name: String,
        /// Variable read.
        key: String,
    },
    /// The file could not be read.
    #[error("missing secret {name}: failed to read file {}", path.display())]
    File {
        /// Name the task sees.
        name: String,
        /// File read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Vault references need a configured Vault client.
    #[error("secret {name} comes from vault ({key}), which this runtime cannot read")]
    Vault {
        /// Name the task sees.
        name: String,
        /// Vault path.
        key: String,
    },
}

/// Resolves every secret a task declares, in declaration order: `secrets` (environment
/// variables of the same name), then `secret_refs`. File paths are relative to the project.
pub fn resolve(task: &Task, project_root: &Path) -> Result<Vec<(String, Secret)>, SecretError> {
    let mut out = Vec::with_capacity(task.secrets.len() + task.secret_refs.len());
    for name in &task.secrets {
        out.push((name.clone(), from_env(name, name)?));
    }
    for r in &task.secret_refs {
        let value = match r.source {
            SecretSource::Env => from_env(&r.name, &r.key)?,
            SecretSource::File => {
                let path = project_root.join(&r.key);
                let text = std::fs::read_to_string(&path).map_err(|source| SecretError::File {
                    name: r.name.clone(),
                    path: path.clone(),
                    source,
                })?;
                // A trailing newline is an artefact of how files are written, not the value.
                Secret::new(file_value(&text))
            }
            SecretSource::Vault => {
                return Err(SecretError::Vault {
                    name: r.name.clone(),
                    key: r.key.clone(),
                });
            }
        };
        out.push((r.name.clone(), value));
    }
    Ok(out)
}

/// Best-effort values of every secret a task may see, for run-wide masking: missing ones are
/// skipped here (the task errors when it starts).
pub fn known_values(task: &Task, project_root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for name in &task.secrets {
        if let Ok(s) = from_env(name, name) {
            out.push(s.expose().to_owned());
        }
    }
    for r in &task.secret_refs {
        let v = match r.source {
            SecretSource::Env => from_env(&r.name, &r.key).ok(),
            SecretSource::File => std::fs::read_to_string(project_root.join(&r.key))
                .ok()
                .map(|t| Secret::new(file_value(&t))),
            SecretSource::Vault => None,
        };
        out.extend(v.map(|s| s.expose().to_owned()));
    }
    out
}

/// A file's value without the line ending it was saved with.
fn file_value(text: &str) -> &str {
    let t = text.strip_suffix('\n').unwrap_or(text);
    t.strip_suffix('\r').unwrap_or(t)
}

fn from_env(name: &str, key: &str) -> Result<Secret, SecretError> {
    match std::env::var(key) {
        Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
        _ => Err(SecretError::MissingEnv {
            name: name.to_owned(),
            key: key.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
