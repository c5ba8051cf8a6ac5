//! Collecting an action's outputs into the CAS: files as `OutputFile` (with the executable
//! bit), directories as a `Tree` (every `Directory` also stored, so `GetTree` serves them),
//! symlinks as `OutputSymlink`. Declared outputs the action did not create are left out.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use prost::Message;

use super::digests::BlobDigest;
use super::store::{DiskStore, StoreError};
use crate::cache::digest::DigestFunction;

/// The outputs of one action, ready for an `ActionResult`.
#[derive(Debug, Default)]
pub struct Collected {
    /// `output_files`.
    pub files: Vec<reapi::OutputFile>,
    /// `output_directories`.
    pub directories: Vec<reapi::OutputDirectory>,
    /// `output_symlinks` (for `output_paths`).
    pub symlinks: Vec<reapi::OutputSymlink>,
    /// `output_file_symlinks` (legacy `output_files`).
    pub file_symlinks: Vec<reapi::OutputSymlink>,
    /// `output_directory_symlinks` (legacy `output_directories`).
    pub directory_symlinks: Vec<reapi::OutputSymlink>,
}

/// Which field declared an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    Path,
    File,
    Directory,
}

/// The declared outputs of `command`: `output_paths` (REAPI 2.1+), else the legacy
/// `output_files` and `output_directories`.
#[allow(deprecated)]
pub fn declared(command: &reapi::Command) -> Vec<&str> {
    if !command.output_paths.is_empty() {
        return command.output_paths.iter().map(String::as_str).collect();
    }
    command
        .output_files
        .iter()
        .chain(&command.output_directories)
        .map(String::as_str)
        .collect()
}

/// Collects the outputs of `command` found under `workdir`.
#[allow(deprecated)]
pub fn collect(
    store: &DiskStore,
    function: DigestFunction,
    workdir: &Path,
    command: &reapi::Command,
) -> Result<Collected, StoreError> {
    let mut wanted: Vec<(&str, Declared)> = Vec::new();
    if command.output_paths.is_empty() {
        wanted.extend(
            command
                .output_files
                .iter()
                .map(|p| (p.as_str(), Declared::File)),
        );
        wanted.extend(
            command
                .output_directories
                .iter()
                .map(|p| (p.as_str(), Declared::Directory)),
        );
    } else {
        wanted.extend(
            command
                .output_paths
                .iter()
                .map(|p| (p.as_str(), Declared::Path)),
        );
    }
    let mut out = Collected::default();
    for (path, declared) in wanted {
        let full = workdir.join(path);
        let Ok(meta) = fs::symlink_metadata(&full) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(|source| StoreError::Io {
                action: "read link",
                path: full.clone(),
                source,
            })?;
            let link = reapi::OutputSymlink {
                path: path.to_owned(),
                target: target.to_string_lossy().into_owned(),
                node_properties: None,
            };
            match declared {
                Declared::Path => out.symlinks.push(link),
                Declared::File => out.file_symlinks.push(link),
                Declared::Directory => out.directory_symlinks.push(link),
            }
        } else if meta.is_dir() {
            let mut children = BTreeMap::new();
            let root = encode_dir(store, function, &full, &mut children)?;
            let root_bytes = root.encode_to_vec();
            let root_digest = store.insert_bytes(function, &root_bytes)?;
            let tree = reapi::Tree {
                root: Some(root),
                children: children.into_values().collect(),
            };
            let tree_digest = store.insert_bytes(function, &tree.encode_to_vec())?;
            out.directories.push(reapi::OutputDirectory {
                path: path.to_owned(),
                tree_digest: Some(tree_digest.to_reapi()),
                is_topologically_sorted: false,
                root_directory_digest: Some(root_digest.to_reapi()),
            });
        } else if meta.is_file() {
            let d = store.insert_file(function, &full)?;
            out.files.push(reapi::OutputFile {
                path: path.to_owned(),
                digest: Some(d.to_reapi()),
                is_executable: meta.permissions().mode() & 0o111 != 0,
                contents: Vec::new(),
                node_properties: None,
            });
        }
    }
    Ok(out)
}

/// Encodes the directory at `path`, storing its files and every subdirectory's `Directory`
/// (each also recorded in `children` by digest, deduplicated).
fn encode_dir(
    store: &DiskStore,
    function: DigestFunction,
    path: &Path,
    children: &mut BTreeMap<BlobDigest, reapi::Directory>,
) -> Result<reapi::Directory, StoreError> {
    let io = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| StoreError::Io {
            action,
            path: p,
            source,
        }
    };
    let mut entries: Vec<(String, fs::DirEntry)> = fs::read_dir(path)
        .map_err(io("list", path))?
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut dir = reapi::Directory::default();
    for (name, entry) in entries {
        let p = entry.path();
        let meta = fs::symlink_metadata(&p).map_err(io("stat", &p))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&p).map_err(io("read link", &p))?;
            dir.symlinks.push(reapi::SymlinkNode {
                name,
                target: target.to_string_lossy().into_owned(),
                node_properties: None,
            });
        } else if meta.is_dir() {
            let sub = encode_dir(store, function, &p, children)?;
            let d = store.insert_bytes(function, &sub.encode_to_vec())?;
            children.insert(d, sub);
            dir.directories.push(reapi::DirectoryNode {
                name,
                digest: Some(d.to_reapi()),
            });
        } else if meta.is_file() {
            let d = store.insert_file(function, &p)?;
            dir.files.push(reapi::FileNode {
                name,
                digest: Some(d.to_reapi()),
                is_executable: meta.permissions().mode() & 0o111 != 0,
                node_properties: None,
            });
        }
        // Sockets, fifos and devices are not outputs.
    }
    Ok(dir)
}

/// Every blob an `ActionResult` refers to directly (files, trees, logs), with what it is.
pub fn referenced_blobs(result: &reapi::ActionResult) -> Vec<(String, Option<&reapi::Digest>)> {
    let mut out: Vec<(String, Option<&reapi::Digest>)> = Vec::new();
    for f in &result.output_files {
        out.push((format!("output file \"{}\"", f.path), f.digest.as_ref()));
    }
    for d in &result.output_directories {
        out.push((
            format!("output directory \"{}\" tree", d.path),
            d.tree_digest.as_ref(),
        ));
    }
    if let Some(d) = &result.stdout_digest {
        out.push(("stdout".into(), Some(d)));
    }
    if let Some(d) = &result.stderr_digest {
        out.push(("stderr".into(), Some(d)));
    }
    out
}

/// The first blob `result` refers to that the store lacks (or that is malformed), named.
pub fn first_missing(
    store: &DiskStore,
    function: DigestFunction,
    result: &reapi::ActionResult,
) -> Option<String> {
    for (what, d) in referenced_blobs(result) {
        let Some(d) = d else {
            if what.starts_with("output") {
                return Some(format!("{what} has no digest"));
            }
            continue;
        };
        match BlobDigest::parse(d, &what) {
            Ok(d) if store.has(function, &d) => {}
            Ok(d) => return Some(format!("{what} {function}/{d} is not in the CAS")),
            Err(e) => return Some(e.message().to_owned()),
        }
    }
    // The files of output directories count too: a Tree whose files are gone restores nothing.
    for dir in &result.output_directories {
        let Some(Ok(tree_digest)) = dir
            .tree_digest
            .as_ref()
            .map(|d| BlobDigest::parse(d, "tree_digest"))
        else {
            continue;
        };
        let tree: reapi::Tree = match store.read_message(function, &tree_digest, "Tree") {
            Ok(t) => t,
            Err(e) => return Some(format!("output directory \"{}\": {e}", dir.path)),
        };
        for file in tree
            .root
            .iter()
            .chain(&tree.children)
            .flat_map(|d| &d.files)
        {
            let what = format!(
                "file \"{}\" in output directory \"{}\"",
                file.name, dir.path
            );
            match BlobDigest::required(file.digest.as_ref(), &what) {
                Ok(d) if store.has(function, &d) => {}
                Ok(d) => return Some(format!("{what} {function}/{d} is not in the CAS")),
                Err(e) => return Some(e.message().to_owned()),
            }
        }
    }
    None
}
