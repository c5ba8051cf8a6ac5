//! Materialising an input root from the CAS: one directory per `Directory` message, files
//! hardlinked from the store (read-only; executables from a 0555 copy), symlinks as given.

use std::path::{Component, Path};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;

use super::digests::BlobDigest;
use super::store::{DiskStore, StoreError};
use crate::cache::digest::DigestFunction;

/// Why an input root could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Blobs the tree needs are not in the CAS (what, digest).
    #[error("{} input blob(s) missing from the CAS", .0.len())]
    Missing(Vec<(String, BlobDigest)>),
    /// The tree is malformed (a bad name, digest or a cycle).
    #[error("invalid input root: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// How deep an input tree may nest (guards against a cyclic or absurd tree).
const MAX_DEPTH: usize = 256;

/// Lays out the tree rooted at `root` under the (existing, empty) directory `dest`. Every
/// missing blob is collected before failing, so a client can upload them all at once.
pub fn materialise(
    store: &DiskStore,
    function: DigestFunction,
    root: &BlobDigest,
    dest: &Path,
) -> Result<(), InputError> {
    let mut missing = Vec::new();
    lay_out(store, function, root, "", dest, 0, &mut missing)?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(InputError::Missing(missing))
    }
}

/// Checks a node name: one path component, not `.` or `..`.
pub fn check_name(name: &str, at: &str) -> Result<(), InputError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(InputError::Invalid(format!(
            "entry name \"{}\" in directory \"{at}\" is not a single path component",
            name.escape_default()
        )));
    }
    Ok(())
}

fn lay_out(
    store: &DiskStore,
    function: DigestFunction,
    digest: &BlobDigest,
    at: &str,
    dest: &Path,
    depth: usize,
    missing: &mut Vec<(String, BlobDigest)>,
) -> Result<(), InputError> {
    if depth > MAX_DEPTH {
        return Err(InputError::Invalid(format!(
            "the input tree nests deeper than {MAX_DEPTH} directories at \"{at}\""
        )));
    }
    let what = if at.is_empty() {
        "input root directory".to_owned()
    } else {
        format!("directory \"{at}\"")
    };
    let dir: reapi::Directory = match store.read_message(function, digest, "Directory") {
        Ok(d) => d,
        Err(StoreError::NotFound { .. }) => {
            missing.push((what, *digest));
            return Ok(());
        }
        Err(StoreError::Decode { .. }) => {
            return Err(InputError::Invalid(format!(
                "{what} ({digest}) is not a Directory message"
            )));
        }
        Err(e) => return Err(InputError::Store(e)),
    };
    let join = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}/{name}")
        }
    };
    for f in &dir.files {
        check_name(&f.name, at)?;
        let field = format!("digest of file \"{}\"", join(&f.name));
        let d = BlobDigest::required(f.digest.as_ref(), &field)
            .map_err(|s| InputError::Invalid(s.message().to_owned()))?;
        match store.link_into(function, &d, f.is_executable, &dest.join(&f.name)) {
            Ok(()) => {}
            Err(StoreError::NotFound { .. }) => {
                missing.push((format!("file \"{}\"", join(&f.name)), d))
            }
            Err(e) => return Err(InputError::Store(e)),
        }
    }
    for s in &dir.symlinks {
        check_name(&s.name, at)?;
        let path = dest.join(&s.name);
        std::os::unix::fs::symlink(&s.target, &path).map_err(|source| {
            InputError::Store(StoreError::Io {
                action: "create symlink",
                path,
                source,
            })
        })?;
    }
    for sub in &dir.directories {
        check_name(&sub.name, at)?;
        let field = format!("digest of directory \"{}\"", join(&sub.name));
        let d = BlobDigest::required(sub.digest.as_ref(), &field)
            .map_err(|s| InputError::Invalid(s.message().to_owned()))?;
        let path = dest.join(&sub.name);
        std::fs::create_dir(&path).map_err(|source| {
            InputError::Store(StoreError::Io {
                action: "create",
                path: path.clone(),
                source,
            })
        })?;
        lay_out(
            store,
            function,
            &d,
            &join(&sub.name),
            &path,
            depth + 1,
            missing,
        )?;
    }
    Ok(())
}

/// Checks a path a `Command` names (working directory, output path): relative, normal
/// components only. `field` names it in the error.
pub fn check_relative(path: &str, field: &str) -> Result<(), String> {
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(format!("{field} \"{path}\" must be relative"));
    }
    if !p
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!("{field} \"{path}\" must not contain \"..\""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use prost::Message;

    use super::*;

    #[test]
    fn a_tree_is_laid_out_and_missing_blobs_are_all_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DiskStore::open(dir.path().join("store")).expect("open");
        let f = DigestFunction::Sha256;
        let a = store.insert_bytes(f, b"a").expect("a");
        let x = store.insert_bytes(f, b"#!/bin/sh\n").expect("x");
        let gone1 = BlobDigest::of(f, b"gone1");
        let sub = reapi::Directory {
            files: vec![reapi::FileNode {
                name: "run".into(),
                digest: Some(x.to_reapi()),
                is_executable: true,
                node_properties: None,
            }],
            ..Default::default()
        };
        let sub_d = store.insert_bytes(f, &sub.encode_to_vec()).expect("sub");
        let root = reapi::Directory {
            files: vec![reapi::FileNode {
                name: "a.txt".into(),
                digest: Some(a.to_reapi()),
                is_executable: false,
                node_properties: None,
            }],
            directories: vec![reapi::DirectoryNode {
                name: "bin".into(),
                digest: Some(sub_d.to_reapi()),
            }],
            symlinks: vec![reapi::SymlinkNode {
                name: "link".into(),
                target: "a.txt".into(),
                node_properties: None,
            }],
            ..Default::default()
        };
        let root_d = store.insert_bytes(f, &root.encode_to_vec()).expect("root");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        materialise(&store, f, &root_d, &out).expect("materialise");
        assert_eq!(std::fs::read(out.join("link")).expect("read"), b"a");
        let mode = std::fs::metadata(out.join("bin/run"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);

        let mut broken = root.clone();
        broken.files.push(reapi::FileNode {
            name: "b.txt".into(),
            digest: Some(gone1.to_reapi()),
            is_executable: false,
            node_properties: None,
        });
        broken.directories.push(reapi::DirectoryNode {
            name: "nodir".into(),
            digest: Some(BlobDigest::of(f, b"no such dir").to_reapi()),
        });
        let broken_d = store
            .insert_bytes(f, &broken.encode_to_vec())
            .expect("broken");
        let out2 = dir.path().join("out2");
        std::fs::create_dir(&out2).expect("mkdir");
        match materialise(&store, f, &broken_d, &out2) {
            Err(InputError::Missing(m)) => assert_eq!(m.len(), 2, "{m:?}"),
            other => panic!("expected two missing blobs, got {other:?}"),
        }
    }

    #[test]
    fn names_that_escape_the_root_are_refused() {
        assert!(check_name("..", "").is_err());
        assert!(check_name("a/b", "x").is_err());
        assert!(check_name("", "x").is_err());
        assert!(check_name("ok", "").is_ok());
        assert!(check_relative("../x", "output path").is_err());
        assert!(check_relative("/etc", "working_directory").is_err());
        assert!(check_relative("a/b", "output path").is_ok());
    }
}
