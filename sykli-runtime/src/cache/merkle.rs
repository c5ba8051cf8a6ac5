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

/// Encodes the directory holding `entries` (paths relative to it, sorted as strings) and
/// every directory below, pushing each onto `out`; returns its digest. Paths sorted as
/// strings keep each subdirectory's entries contiguous (all of `name/...`), so the tree is
/// built in one pass with no map operations per file.
fn encode_dir(
    entries: &[(&str, &InputNode)],
    function: DigestFunction,
    out: &mut Vec<(reapi::Digest, Vec<u8>)>,
) -> reapi::Digest {
    let mut msg = reapi::Directory::default();
    let mut i = 0;
    while i < entries.len() {
        let (path, node) = entries[i];
        match path.split_once('/') {
            None => {
                match node {
                    InputNode::File {
                        digest,
                        size,
                        executable,
                    } => msg.files.push(reapi::FileNode {
                        name: path.to_owned(),
                        digest: Some(reapi_digest(digest, *size)),
                        is_executable: *executable,
                        node_properties: None,
                    }),
                    InputNode::Symlink { target } => msg.symlinks.push(reapi::SymlinkNode {
                        name: path.to_owned(),
                        target: target.clone(),
                        node_properties: None,
                    }),
                }
                i += 1;
            }
            Some((head, _)) => {
                let run = entries[i..]
                    .iter()
                    .take_while(|(p, _)| {
                        p.len() > head.len()
                            && p.starts_with(head)
                            && p.as_bytes()[head.len()] == b'/'
                    })
                    .count();
                let inner: Vec<(&str, &InputNode)> = entries[i..i + run]
                    .iter()
                    .map(|(p, n)| (&p[head.len() + 1..], *n))
                    .collect();
                let digest = encode_dir(&inner, function, out);
                msg.directories.push(reapi::DirectoryNode {
                    name: head.to_owned(),
                    digest: Some(digest),
                });
                i += run;
            }
        }
    }
    // Runs come in path order ("a-b/x" before "a/x"); REAPI wants names sorted.
    msg.directories.sort_by(|a, b| a.name.cmp(&b.name));
    // A name that is both a file and a directory (a dependency output over an input) is the
    // directory.
    if !msg.directories.is_empty() {
        let dirs: Vec<&str> = msg.directories.iter().map(|d| d.name.as_str()).collect();
        msg.files
            .retain(|f| dirs.binary_search(&f.name.as_str()).is_err());
        msg.symlinks
            .retain(|f| dirs.binary_search(&f.name.as_str()).is_err());
    }
    let bytes = msg.encode_to_vec();
    let digest = digest_of_message(function, &bytes);
    out.push((digest.clone(), bytes));
    digest
}

/// Builds the input root of `files` (path relative to the root -> node). Paths must be
/// normalised (no empty, `.` or `..` components).
pub fn input_root(files: &BTreeMap<String, InputNode>, function: DigestFunction) -> InputRoot {
    let entries: Vec<(&str, &InputNode)> = files.iter().map(|(p, n)| (p.as_str(), n)).collect();
    input_root_of_sorted(&entries, function)
}

/// [`input_root`] of files given as (path, node) pairs sorted by path as strings, each path
/// once (as a map's entries come).
pub fn input_root_of_sorted(entries: &[(&str, &InputNode)], function: DigestFunction) -> InputRoot {
    let mut directories = Vec::new();
    let digest = encode_dir(entries, function, &mut directories);
    InputRoot {
        digest,
        directories,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(byte: u8) -> InputNode {
        InputNode::File {
            digest: Digest::of_bytes(&[byte]),
            size: 1,
            executable: false,
        }
    }

    #[test]
    fn directories_are_sorted_by_name_not_by_path() {
        // As paths "a-b/y" sorts before "a/x"; as names "a" comes before "a-b".
        let files = BTreeMap::from([
            ("a/x".to_owned(), file(1)),
            ("a-b/y".to_owned(), file(2)),
            ("a.txt".to_owned(), file(3)),
            ("a/b/c/d".to_owned(), file(4)),
        ]);
        let root = input_root(&files, DigestFunction::Blake3);
        let (digest, bytes) = root.directories.last().expect("the root");
        assert_eq!(*digest, root.digest);
        let dir = reapi::Directory::decode(&bytes[..]).expect("a Directory");
        let names: Vec<&str> = dir.directories.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "a-b"]);
        let files: Vec<&str> = dir.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(files, ["a.txt"]);
        // root, a, a/b, a/b/c, a-b
        assert_eq!(root.directories.len(), 5);
    }
}
