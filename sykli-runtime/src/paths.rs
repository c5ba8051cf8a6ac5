//! Path containment: task-relative paths (workdirs, outputs, `task_inputs` destinations,
//! success-criteria files) must stay inside their base directory, lexically (no `..` out, no
//! absolute path) and physically (no symlink pointing out).

use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused or could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// Absolute, or climbs out with `..`.
    #[error("path `{}` leaves {}", path.display(), base.display())]
    Escapes {
        /// The path as given.
        path: PathBuf,
        /// The directory it must stay in.
        base: PathBuf,
    },
    /// A symlink on the way points outside the base.
    #[error("path `{}` resolves through a symlink to {}, outside {}", path.display(), target.display(), base.display())]
    SymlinkEscape {
        /// The path as given.
        path: PathBuf,
        /// Where it really leads.
        target: PathBuf,
        /// The directory it must stay in.
        base: PathBuf,
    },
    /// A FIFO, socket or device, which is never copied (reading it could block forever).
    #[error("`{}` is a {kind}, not a regular file or directory", path.display())]
    Special {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A filesystem operation failed.
    #[error("failed to {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What a special file is (`"FIFO"`, `"socket"`, `"character device"`, `"block device"`),
/// or `None` for regular files, directories and symlinks. Special files are never read as
/// content: opening a FIFO blocks until someone writes it, and a device may never end.
pub fn special_kind(ft: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() || ft.is_dir() || ft.is_symlink() {
        None
    } else if ft.is_fifo() {
        Some("FIFO")
    } else if ft.is_socket() {
        Some("socket")
    } else if ft.is_char_device() {
        Some("character device")
    } else if ft.is_block_device() {
        Some("block device")
    } else {
        Some("special file")
    }
}

/// `base.join(rel)` if `rel` is relative, has no `..` leaving `base`, and does not lead
/// outside `base` through a symlink (checked on the part that exists).
pub fn contained(base: &Path, rel: &Path) -> Result<PathBuf, PathError> {
    let escapes = || PathError::Escapes {
        path: rel.to_path_buf(),
        base: base.to_path_buf(),
    };
    let mut clean = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    return Err(escapes());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(escapes()),
        }
    }
    let joined = base.join(&clean);
    // Physical check: resolve the longest existing prefix.
    let Ok(real_base) = base.canonicalize() else {
        return Ok(joined);
    };
    let mut existing = joined.clone();
    while !existing.exists() {
        if !existing.pop() {
            return Ok(joined);
        }
    }
    let real = existing.canonicalize().map_err(|source| PathError::Io {
        action: "resolve",
        path: existing.clone(),
        source,
    })?;
    if !real.starts_with(&real_base) {
        return Err(PathError::SymlinkEscape {
            path: rel.to_path_buf(),
            target: real,
            base: base.to_path_buf(),
        });
    }
    Ok(joined)
}

/// Copies the file or directory `src` (inside `src_base`) to `dst` (inside `dst_base`),
/// replacing what is there. Symlinks inside a copied directory must stay inside `src_base`.
pub fn copy_contained(
    src_base: &Path,
    src: &Path,
    dst_base: &Path,
    dst: &Path,
) -> Result<(), PathError> {
    let src_abs = if src.is_absolute() {
        // Recorded outputs are absolute; they were checked when recorded.
        src.to_path_buf()
    } else {
        contained(src_base, src)?
    };
    let dst_abs = contained(dst_base, dst)?;
    let meta = std::fs::metadata(&src_abs).map_err(|source| PathError::Io {
        action: "read",
        path: src_abs.clone(),
        source,
    })?;
    if let Some(kind) = special_kind(meta.file_type()) {
        return Err(PathError::Special {
            path: src_abs,
            kind,
        });
    }
    if let Some(parent) = dst_abs.parent() {
        std::fs::create_dir_all(parent).map_err(|source| PathError::Io {
            action: "create directory",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    if meta.is_dir() {
        copy_dir(src_base, &src_abs, &dst_abs)
    } else {
        copy_file(&src_abs, &dst_abs)
    }
}

fn copy_file(src: &Path, dst: &Path) -> Result<(), PathError> {
    if dst.is_dir() {
        std::fs::remove_dir_all(dst).map_err(|source| PathError::Io {
            action: "replace",
            path: dst.to_path_buf(),
            source,
        })?;
    }
    std::fs::copy(src, dst)
        .map(drop)
        .map_err(|source| PathError::Io {
            action: "copy",
            path: src.to_path_buf(),
            source,
        })
}

fn copy_dir(src_base: &Path, src: &Path, dst: &Path) -> Result<(), PathError> {
    let real_base = src_base.canonicalize().map_err(|source| PathError::Io {
        action: "resolve",
        path: src_base.to_path_buf(),
        source,
    })?;
    std::fs::create_dir_all(dst).map_err(|source| PathError::Io {
        action: "create directory",
        path: dst.to_path_buf(),
        source,
    })?;
    let entries = std::fs::read_dir(src).map_err(|source| PathError::Io {
        action: "list",
        path: src.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| PathError::Io {
            action: "list",
            path: src.to_path_buf(),
            source,
        })?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let real = from.canonicalize().map_err(|source| PathError::Io {
            action: "resolve",
            path: from.clone(),
            source,
        })?;
        if !real.starts_with(&real_base) {
            return Err(PathError::SymlinkEscape {
                path: from,
                target: real,
                base: src_base.to_path_buf(),
            });
        }
        let meta = std::fs::metadata(&real).map_err(|source| PathError::Io {
            action: "read",
            path: real.clone(),
            source,
        })?;
        if let Some(kind) = special_kind(meta.file_type()) {
            return Err(PathError::Special { path: real, kind });
        }
        if meta.is_dir() {
            copy_dir(src_base, &real, &to)?;
        } else {
            copy_file(&real, &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_parent_and_absolute_paths() {
        let d = tempfile::tempdir().unwrap();
        assert!(contained(d.path(), Path::new("a/../b")).is_ok());
        assert!(matches!(
            contained(d.path(), Path::new("../x")),
            Err(PathError::Escapes { .. })
        ));
        assert!(matches!(
            contained(d.path(), Path::new("/etc/passwd")),
            Err(PathError::Escapes { .. })
        ));
    }

    #[test]
    fn refuses_symlinks_out() {
        let d = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(out.path(), d.path().join("link")).unwrap();
        let e = contained(d.path(), Path::new("link/file")).unwrap_err();
        assert!(matches!(e, PathError::SymlinkEscape { .. }), "{e}");
    }
}
