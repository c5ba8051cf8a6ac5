//! A task's input root: the Merkle tree of REAPI `Directory` messages over its input files.
//!
//! One `Directory` per folder, its files, subdirectories and symlinks each sorted by name;
//! a `FileNode` carries the content digest, size and `is_executable`; a `DirectoryNode` the
//! digest of the child's encoded `Directory`. The root's digest is the `Action`'s
//! `input_root_digest`, exactly as a REAPI client would compute it, so a remote cache or
//! executor can be handed the same tree.

use std::collections::BTreeMap;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use prost::Message;

use super::digest::{Digest, DigestFunction};

/// One leaf of the input tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputNode {
    /// A regular file.
    File {
        /// Content digest under the tree's digest function.
        digest: Digest,
        /// Size in bytes.
        size: u64,
        /// Whether any execute bit is set.
        executable: bool,
    },
    /// A symbolic link (not followed).
    Symlink {
        /// The link's target text.
        target: String,
    },
}

/// The encoded input tree of one task.
#[derive(Debug, Clone)]
pub struct InputRoot {
    /// Digest of the root `Directory`: the `Action`'s `input_root_digest`.
    pub digest: reapi::Digest,
    /// Every `Directory` of the tree, encoded, with its digest (the root last): the blobs a
    /// remote executor needs besides the files.
    pub directories: Vec<(reapi::Digest, Vec<u8>)>,
}

/// A REAPI digest of a blob: lowercase hex and size.
pub fn reapi_digest(digest: &Digest, size: u64) -> reapi::Digest {
    reapi::Digest {
        hash: digest.to_hex(),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
    }
}

/// The REAPI digest of an encoded message under `function`.
pub fn digest_of_message(function: DigestFunction, bytes: &[u8]) -> reapi::Digest {
    reapi_digest(&function.of_bytes(bytes), bytes.len() as u64)
}

#[derive(Default)]
struct Dir<'a> {
    files: BTreeMap<&'a str, &'a InputNode>,
    dirs: BTreeMap<&'a str, Dir<'a>>,
}

impl<'a> Dir<'a> {
    /// Inserts `node` at `path` (`/`-separated, relative, normalised). A later entry replaces
    /// an earlier one at the same path, file or directory alike.
    fn insert(&mut self, path: &'a str, node: &'a InputNode) {
        match path.split_once('/') {
            None => {
                self.dirs.remove(path);
                self.files.insert(path, node);
            }
            Some((head, rest)) => {
                self.files.remove(head);
                self.dirs.entry(head).or_default().insert(rest, node);
            }
        }
    }

    fn encode(
        &self,
        function: DigestFunction,
        out: &mut Vec<(reapi::Digest, Vec<u8>)>,
    ) -> reapi::Digest {
        let mut msg = reapi::Directory::default();
        for (name, node) in &self.files {
            match node {
                InputNode::File {
                    digest,
                    size,
                    executable,
                } => msg.files.push(reapi::FileNode {
                    name: (*name).to_owned(),
                    digest: Some(reapi_digest(digest, *size)),
                    is_executable: *executable,
                    node_properties: None,
                }),
                InputNode::Symlink { target } => msg.symlinks.push(reapi::SymlinkNode {
                    name: (*name).to_owned(),
                    target: target.clone(),
                    node_properties: None,
                }),
            }
        }
        for (name, dir) in &self.dirs {
            let digest = dir.encode(function, out);
            msg.directories.push(reapi::DirectoryNode {
                name: (*name).to_owned(),
                digest: Some(digest),
            });
        }
        let bytes = msg.encode_to_vec();
        let digest = digest_of_message(function, &bytes);
        out.push((digest.clone(), bytes));
        digest
    }
}

/// Builds the input root of `files` (path relative to the root -> node). Paths must be
/// normalised (no empty, `.` or `..` components).
pub fn input_root(files: &BTreeMap<String, InputNode>, function: DigestFunction) -> InputRoot {
    let mut root = Dir::default();
    for (path, node) in files {
        root.insert(path, node);
    }
    let mut directories = Vec::new();
    let digest = root.encode(function, &mut directories);
    InputRoot {
        digest,
        directories,
    }
}
