//! Action results: putting a remote `ActionResult`'s outputs into the workspace, fetching
//! its stdout/stderr, and building and publishing one for a task that ran here.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use prost::Message;

use super::{Blob, BlobData, RemoteClient, RemoteError, Transferred};
use crate::cache::merkle::{InputNode, input_root, reapi_digest};

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RemoteError + 'a {
    move |source| RemoteError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// `rel` joined to `base`, refusing absolute paths and `..`.
fn inside(client: &RemoteClient, base: &Path, rel: &str) -> Result<PathBuf, RemoteError> {
    crate::cache::check_relative(rel, rel)
        .map(|r| base.join(r))
        .map_err(|e| client.protocol(format!("the result names output path \"{rel}\": {e}")))
}

fn remove_existing(path: &Path) -> Result<(), RemoteError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(io("remove", path)),
        Ok(_) => std::fs::remove_file(path).map_err(io("remove", path)),
        Err(_) => Ok(()),
    }
}

fn symlink(target: &str, at: &Path) -> Result<(), RemoteError> {
    if let Some(dir) = at.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    remove_existing(at)?;
    std::os::unix::fs::symlink(target, at).map_err(io("create symlink", at))
}

/// Writes the outputs of `result` under `workdir` (output paths are relative to the
/// action's working directory), replacing what is there.
pub async fn restore(
    client: &RemoteClient,
    result: &reapi::ActionResult,
    workdir: &Path,
) -> Result<(), RemoteError> {
    for f in &result.output_files {
        let path = inside(client, workdir, &f.path)?;
        remove_existing(&path)?;
        let digest = f
            .digest
            .as_ref()
            .ok_or_else(|| client.protocol(format!("output file {} has no digest", f.path)))?;
        if !f.contents.is_empty() && client.function().of_bytes(&f.contents).to_hex() == digest.hash
        {
            write_file(&path, &f.contents, f.is_executable)?;
        } else {
            client.download(digest, &path, f.is_executable).await?;
        }
    }
    for d in &result.output_directories {
        let path = inside(client, workdir, &d.path)?;
        let digest = d
            .tree_digest
            .as_ref()
            .ok_or_else(|| client.protocol(format!("output directory {} has no tree", d.path)))?;
        let tree = reapi::Tree::decode(&client.read_blob(digest).await?[..])
            .map_err(|e| client.protocol(format!("output directory {}: bad Tree: {e}", d.path)))?;
        remove_existing(&path)?;
        std::fs::create_dir_all(&path).map_err(io("create", &path))?;
        let children: HashMap<String, &reapi::Directory> = tree
            .children
            .iter()
            .map(|c| {
                let bytes = c.encode_to_vec();
                (client.function().of_bytes(&bytes).to_hex(), c)
            })
            .collect();
        let root = tree.root.as_ref().ok_or_else(|| {
            client.protocol(format!("output directory {}: Tree has no root", d.path))
        })?;
        let mut stack = vec![(path.clone(), root)];
        // Bounded by the tree: each Directory is visited once per reference.
        while let Some((dir, msg)) = stack.pop() {
            for f in &msg.files {
                let p = inside(client, &dir, &f.name)?;
                let digest = f.digest.as_ref().ok_or_else(|| {
                    client.protocol(format!("file {} has no digest", p.display()))
                })?;
                client.download(digest, &p, f.is_executable).await?;
            }
            for s in &msg.symlinks {
                symlink(&s.target, &inside(client, &dir, &s.name)?)?;
            }
            for sub in &msg.directories {
                let p = inside(client, &dir, &sub.name)?;
                std::fs::create_dir_all(&p).map_err(io("create", &p))?;
                let hash = sub
                    .digest
                    .as_ref()
                    .map(|d| d.hash.clone())
                    .unwrap_or_default();
                let child = children.get(&hash).ok_or_else(|| {
                    client.protocol(format!("Tree of {} lacks directory {hash}", d.path))
                })?;
                stack.push((p, child));
            }
        }
    }
    #[allow(deprecated)]
    for s in result
        .output_symlinks
        .iter()
        .chain(&result.output_file_symlinks)
        .chain(&result.output_directory_symlinks)
    {
        symlink(&s.target, &inside(client, workdir, &s.path)?)?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], executable: bool) -> Result<(), RemoteError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    std::fs::write(path, bytes).map_err(io("write", path))?;
    if executable {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(io("set the mode of", path))?;
    }
    Ok(())
}

/// The result's stdout and stderr (inline, else fetched from the CAS).
pub async fn logs(
    client: &RemoteClient,
    result: &reapi::ActionResult,
) -> Result<(Vec<u8>, Vec<u8>), RemoteError> {
    async fn one(
        client: &RemoteClient,
        raw: &[u8],
        digest: Option<&reapi::Digest>,
    ) -> Result<Vec<u8>, RemoteError> {
        match digest {
            Some(d) if raw.is_empty() && d.size_bytes > 0 => client.read_blob(d).await,
            _ => Ok(raw.to_vec()),
        }
    }
    Ok((
        one(client, &result.stdout_raw, result.stdout_digest.as_ref()).await?,
        one(client, &result.stderr_raw, result.stderr_digest.as_ref()).await?,
    ))
}

/// Builds the `ActionResult` of a task that passed here: its `outputs` (paths relative to
/// `workdir`), exit code 0 and `log` as stdout; returns it with the blobs it refers to.
pub fn build(
    client: &RemoteClient,
    workdir: &Path,
    outputs: &[String],
    log: Vec<u8>,
) -> Result<(reapi::ActionResult, Vec<Blob>), RemoteError> {
    let f = client.function();
    let mut result = reapi::ActionResult::default();
    let mut blobs = Vec::new();
    for rel in outputs {
        let path = inside(client, workdir, rel)?;
        let meta = std::fs::symlink_metadata(&path).map_err(io("read output", &path))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(io("read link", &path))?;
            result.output_symlinks.push(reapi::OutputSymlink {
                path: rel.clone(),
                target: target.to_string_lossy().into_owned(),
                node_properties: None,
            });
        } else if meta.is_file() {
            let digest = file_digest(client, &path, meta.len())?;
            result.output_files.push(reapi::OutputFile {
                path: rel.clone(),
                digest: Some(digest.clone()),
                is_executable: is_exec(&meta),
                contents: Vec::new(),
                node_properties: None,
            });
            blobs.push(Blob {
                digest,
                data: BlobData::File(path),
            });
        } else if meta.is_dir() {
            let mut files = BTreeMap::new();
            collect(client, &path, "", &mut files, &mut blobs)?;
            let tree = input_root(&files, f);
            let mut dirs: Vec<reapi::Directory> = Vec::new();
            let mut root = None;
            for (d, bytes) in &tree.directories {
                let msg = reapi::Directory::decode(&bytes[..])
                    .map_err(|e| client.protocol(format!("internal: {e}")))?;
                if d.hash == tree.digest.hash {
                    root = Some(msg);
                } else {
                    dirs.push(msg);
                }
            }
            dirs.dedup();
            let tree_msg = reapi::Tree {
                root,
                children: dirs,
            };
            let bytes = tree_msg.encode_to_vec();
            let digest = reapi_digest(&f.of_bytes(&bytes), bytes.len() as u64);
            blobs.push(Blob {
                digest: digest.clone(),
                data: BlobData::Bytes(bytes),
            });
            result.output_directories.push(reapi::OutputDirectory {
                path: rel.clone(),
                tree_digest: Some(digest),
                is_topologically_sorted: false,
                root_directory_digest: Some(tree.digest.clone()),
            });
        }
    }
    if !log.is_empty() {
        let digest = reapi_digest(&f.of_bytes(&log), log.len() as u64);
        result.stdout_digest = Some(digest.clone());
        blobs.push(Blob {
            digest,
            data: BlobData::Bytes(log),
        });
    }
    Ok((result, blobs))
}

fn is_exec(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

fn file_digest(
    client: &RemoteClient,
    path: &Path,
    size: u64,
) -> Result<reapi::Digest, RemoteError> {
    let d = client
        .function()
        .of_file(path, size)
        .map_err(io("hash", path))?;
    Ok(reapi_digest(&d, size))
}

/// Every file and symlink under `dir` (bounded by the directory tree), as input nodes.
fn collect(
    client: &RemoteClient,
    dir: &Path,
    prefix: &str,
    files: &mut BTreeMap<String, InputNode>,
    blobs: &mut Vec<Blob>,
) -> Result<(), RemoteError> {
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io("read", &path))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(io("read link", &path))?;
            files.insert(
                rel,
                InputNode::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
            );
        } else if meta.is_dir() {
            collect(client, &path, &rel, files, blobs)?;
        } else if meta.is_file() {
            let d = client
                .function()
                .of_file(&path, meta.len())
                .map_err(io("hash", &path))?;
            blobs.push(Blob {
                digest: reapi_digest(&d, meta.len()),
                data: BlobData::File(path.clone()),
            });
            files.insert(
                rel,
                InputNode::File {
                    digest: d,
                    size: meta.len(),
                    executable: is_exec(&meta),
                },
            );
        }
    }
    Ok(())
}

/// Publishes a result: uploads the blobs it refers to and `extra` blobs (the `Action` and
/// `Command`), then stores it under `action`.
pub async fn publish(
    client: &RemoteClient,
    action: &reapi::Digest,
    result: reapi::ActionResult,
    mut blobs: Vec<Blob>,
    extra: Vec<Blob>,
) -> Result<Transferred, RemoteError> {
    blobs.extend(extra);
    let sent = client.upload_missing(blobs).await?;
    client.update_action_result(action, result).await?;
    Ok(sent)
}
