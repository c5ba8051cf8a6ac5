//! Secrets: a value type that never prints itself, and resolution of a task's `secrets` and
//! `secret_refs` at task start.

use std::fmt;
use std::path::{Component, Path, PathBuf};
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

/// Largest secret file read, in bytes (64 KiB): secrets are tokens and keys, not data.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A secret a task asked for could not be read. Every variant names the task and the
/// reference.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or empty.
    #[error("task `{task}`: missing secret {name}: environment variable {key} is not set")]
    MissingEnv {
        /// The task that declared it.
        task: String,
        /// Name the task sees.
        name: String,
        /// Variable read.
        key: String,
    },
    /// The file is not one a secret may come from, or could not be read.
    #[error("task `{task}`: secret {name} from file `{key}`: {problem}")]
    File {
        /// The task that declared it.
        task: String,
        /// Name the task sees.
        name: String,
        /// The path as written in the reference.
        key: String,
        /// What is wrong with it.
        #[source]
        problem: Box<FileProblem>,
    },
    /// Vault references need a configured Vault client.
    #[error(
        "task `{task}`: secret {name} comes from vault ({key}), which this runtime cannot read"
    )]
    Vault {
        /// The task that declared it.
        task: String,
        /// Name the task sees.
        name: String,
        /// Vault path.
        key: String,
    },
    /// The blocking worker that reads secret files failed.
    #[error("task `{task}`: failed to read its secret files: {message}")]
    Worker {
        /// The task.
        task: String,
        /// Why.
        message: String,
    },
}

/// Why a `source: file` secret was refused: only regular files inside the project, of at
/// most [`MAX_SECRET_FILE_BYTES`], holding UTF-8 text.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// The path is empty.
    #[error("the path is empty")]
    Empty,
    /// The path is absolute.
    #[error("absolute paths are not allowed: secret files are relative to the project")]
    Absolute,
    /// The path has a `..` component.
    #[error("`..` is not allowed in secret file paths")]
    ParentDir,
    /// A symlink on the way leads outside the project.
    #[error("it resolves through a symlink to {}, outside the project {}", target.display(), root.display())]
    SymlinkEscape {
        /// Where the path really leads.
        target: PathBuf,
        /// The project directory.
        root: PathBuf,
    },
    /// Nothing at that path (or a symlink on the way leads nowhere).
    #[error("no such file in the project")]
    Missing,
    /// Not a regular file (a directory, FIFO, socket or device).
    #[error("it is a {kind}, not a regular file")]
    NotRegular {
        /// What it is.
        kind: &'static str,
    },
    /// Larger than [`MAX_SECRET_FILE_BYTES`].
    #[error("it is larger than the {max}-byte limit for secret files")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// Not UTF-8 text.
    #[error("it is not UTF-8 text")]
    NotUtf8,
    /// A filesystem operation failed (e.g. the file does not exist).
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Resolves every secret a task declares, in declaration order: `secrets` (environment
/// variables of the same name), then `secret_refs`. Call it when the task starts, so only
/// tasks that run read anything. Files are read on tokio's blocking pool (see
/// [`read_secret_file`] for what is accepted); nothing here can block on a FIFO or device.
pub async fn resolve(
    task: &Task,
    project_root: &Path,
) -> Result<Vec<(String, Secret)>, SecretError> {
    // Every file first, in one trip to the blocking pool, in declaration order.
    let keys: Vec<String> = task
        .secret_refs
        .iter()
        .filter(|r| r.source == SecretSource::File)
        .map(|r| r.key.clone())
        .collect();
    let mut file_values = if keys.is_empty() {
        Vec::new()
    } else {
        let root = project_root.to_path_buf();
        tokio::task::spawn_blocking(move || {
            keys.iter()
                .map(|key| read_secret_file(&root, key))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| SecretError::Worker {
            task: task.name.clone(),
            message: e.to_string(),
        })?
    }
    .into_iter();

    let mut out = Vec::with_capacity(task.secrets.len() + task.secret_refs.len());
    for name in &task.secrets {
        out.push((name.clone(), from_env(&task.name, name, name)?));
    }
    for r in &task.secret_refs {
        let value = match r.source {
            SecretSource::Env => from_env(&task.name, &r.name, &r.key)?,
            SecretSource::File => match file_values.next() {
                Some(Ok(v)) => v,
                Some(Err(problem)) => {
                    return Err(SecretError::File {
                        task: task.name.clone(),
                        name: r.name.clone(),
                        key: r.key.clone(),
                        problem: Box::new(problem),
                    });
                }
                None => {
                    return Err(SecretError::Worker {
                        task: task.name.clone(),
                        message: format!("no value came back for secret {}", r.name),
                    });
                }
            },
            SecretSource::Vault => {
                return Err(SecretError::Vault {
                    task: task.name.clone(),
                    name: r.name.clone(),
                    key: r.key.clone(),
                });
            }
        };
        out.push((r.name.clone(), value));
    }
    Ok(out)
}

/// Reads the secret file `key` of the project at `root`, blocking (call it off the async
/// threads). Accepted: a relative path without `..` that resolves, symlinks followed, to a
/// regular file inside the project, of at most [`MAX_SECRET_FILE_BYTES`], holding UTF-8
/// text; one trailing line ending is dropped. The file type is checked before the file is
/// opened and again on the open descriptor (opened non-blocking, final symlink not
/// followed), so a FIFO or device is refused without waiting on it.
pub fn read_secret_file(root: &Path, key: &str) -> Result<Secret, FileProblem> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let rel = Path::new(key);
    if key.is_empty() {
        return Err(FileProblem::Empty);
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(FileProblem::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(FileProblem::Absolute),
        }
    }
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| FileProblem::Io {
            action,
            path,
            source,
        }
    };
    let real_root = root
        .canonicalize()
        .map_err(io("resolve the project directory", root))?;
    let joined = root.join(rel);
    let real = match joined.canonicalize() {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileProblem::Missing),
        Err(e) => return Err(io("resolve", &joined)(e)),
    };
    if !real.starts_with(&real_root) {
        return Err(FileProblem::SymlinkEscape {
            target: real,
            root: real_root,
        });
    }
    let kind_of = |ft: std::fs::FileType| -> Option<&'static str> {
        if ft.is_dir() {
            Some("directory")
        } else if ft.is_symlink() {
            Some("symlink")
        } else {
            crate::paths::special_kind(ft)
        }
    };
    let meta = std::fs::symlink_metadata(&real).map_err(io("inspect", &real))?;
    if let Some(kind) = kind_of(meta.file_type()) {
        return Err(FileProblem::NotRegular { kind });
    }
    // Non-blocking and not following a final symlink, in case the file was swapped since.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&real)
        .map_err(io("open", &real))?;
    let meta = file.metadata().map_err(io("inspect", &real))?;
    if let Some(kind) = kind_of(meta.file_type()) {
        return Err(FileProblem::NotRegular { kind });
    }
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(FileProblem::TooLarge {
            max: MAX_SECRET_FILE_BYTES,
        });
    }
    // The file may grow after the stat: never read past the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read", &real))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(FileProblem::TooLarge {
            max: MAX_SECRET_FILE_BYTES,
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| FileProblem::NotUtf8)?;
    // A trailing newline is an artefact of how files are written, not the value.
    Ok(Secret::new(file_value(&text)))
}

/// Values of a task's environment secrets, for run-wide masking; missing ones are skipped
/// here (the task errors when it starts). File secrets are not read here: they are read when
/// their task starts, and from then on masked in its output and in that of every task
/// started later.
pub fn known_values(task: &Task) -> Vec<String> {
    let env_keys = task.secrets.iter().map(|n| (n, n)).chain(
        task.secret_refs
            .iter()
            .filter(|r| r.source == SecretSource::Env)
            .map(|r| (&r.name, &r.key)),
    );
    env_keys
        .filter_map(|(name, key)| from_env(&task.name, name, key).ok())
        .map(|s| s.expose().to_owned())
        .collect()
}

/// A file's value without the line ending it was saved with.
fn file_value(text: &str) -> &str {
    let t = text.strip_suffix('\n').unwrap_or(text);
    t.strip_suffix('\r').unwrap_or(t)
}

fn from_env(task: &str, name: &str, key: &str) -> Result<Secret, SecretError> {
    match std::env::var(key) {
        Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
        _ => Err(SecretError::MissingEnv {
            task: task.to_owned(),
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
