//! The ByteStream service over the CAS.
//!
//! Resource names as REAPI writes them: reads `{instance}/blobs/[{function}/]{hash}/{size}`,
//! uploads `{instance}/uploads/{uuid}/blobs/[{function}/]{hash}/{size}[/{metadata}]`; the
//! function segment is `blake3` for BLAKE3 and absent (or `sha256`) for SHA-256. Uploads are
//! resumable: an interrupted upload keeps its bytes, `QueryWriteStatus` reports how many,
//! and a new `Write` continues at that offset. Content is hashed as it arrives and an upload
//! whose bytes do not match its digest is refused. Whole-blob reads are verified. Reads of
//! `logs/{id}/stdout|stderr` follow a running action's output ([`super::live`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bazel_remote_apis::google::bytestream::{
    QueryWriteStatusRequest, QueryWriteStatusResponse, ReadRequest, ReadResponse, WriteRequest,
    WriteResponse, byte_stream_server::ByteStream,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::digests::{BlobDigest, Hasher};
use super::live::LiveLogs;
use super::store::DiskStore;
use crate::cache::digest::DigestFunction;

/// Bytes per `ReadResponse` (well under gRPC's 4 MiB message limit).
const READ_CHUNK: usize = 1024 * 1024;

/// What a resource name names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The digest function (from the function segment).
    pub function: DigestFunction,
    /// The blob.
    pub digest: BlobDigest,
}

fn function_segment(s: &str) -> Option<Result<DigestFunction, Status>> {
    match s {
        "blake3" => Some(Ok(DigestFunction::Blake3)),
        "sha256" => Some(Ok(DigestFunction::Sha256)),
        "sha1" | "md5" | "sha384" | "sha512" | "murmur3" | "vso" | "sha256tree" => {
            Some(Err(Status::invalid_argument(format!(
                "digest function \"{s}\" is not supported by this worker (supported: sha256, \
                 blake3)"
            ))))
        }
        _ => None,
    }
}

/// Parses `[function/]hash/size` at the start of `tail`; returns the resource and how many
/// segments it used.
fn parse_blob(tail: &[&str], name: &str) -> Result<(Resource, usize), Status> {
    let (function, rest, used) = match tail.first().and_then(|s| function_segment(s)) {
        Some(f) => (f?, &tail[1..], 1),
        None => (DigestFunction::Sha256, tail, 0),
    };
    let (Some(hash), Some(size)) = (rest.first(), rest.get(1)) else {
        return Err(Status::invalid_argument(format!(
            "resource name \"{}\" lacks {{hash}}/{{size}} after \"blobs/\"",
            name.escape_default()
        )));
    };
    let size: i64 = size.parse().map_err(|_| {
        Status::invalid_argument(format!(
            "resource name \"{}\": size \"{size}\" is not a number",
            name.escape_default()
        ))
    })?;
    let digest = BlobDigest::from_parts(
        hash,
        size,
        &format!("resource name \"{}\"", name.escape_default()),
    )?;
    Ok((Resource { function, digest }, used + 2))
}

/// Parses a read resource name.
pub fn parse_read(name: &str) -> Result<Resource, Status> {
    let segs: Vec<&str> = name.split('/').collect();
    if segs.contains(&"compressed-blobs") {
        return Err(Status::unimplemented(
            "compressed blobs are not supported by this worker",
        ));
    }
    let Some(i) = segs.iter().position(|s| *s == "blobs") else {
        return Err(Status::invalid_argument(format!(
            "resource name \"{}\" is not of the form {{instance}}/blobs/[{{function}}/]{{hash}}/{{size}}",
            name.escape_default()
        )));
    };
    let (res, used) = parse_blob(&segs[i + 1..], name)?;
    if i + 1 + used != segs.len() {
        return Err(Status::invalid_argument(format!(
            "resource name \"{}\" has extra segments after the size",
            name.escape_default()
        )));
    }
    Ok(res)
}

/// Parses an upload resource name; also returns the upload's key (everything up to the
/// size: instance, uuid and blob).
pub fn parse_write(name: &str) -> Result<(String, Resource), Status> {
    let segs: Vec<&str> = name.split('/').collect();
    if segs.contains(&"compressed-blobs") {
        return Err(Status::unimplemented(
            "compressed uploads are not supported by this worker",
        ));
    }
    let found = segs
        .windows(3)
        .position(|w| w[0] == "uploads" && !w[1].is_empty() && w[2] == "blobs");
    let Some(i) = found else {
        return Err(Status::invalid_argument(format!(
            "resource name \"{}\" is not of the form \
             {{instance}}/uploads/{{uuid}}/blobs/[{{function}}/]{{hash}}/{{size}}",
            name.escape_default()
        )));
    };
    let (res, used) = parse_blob(&segs[i + 3..], name)?;
    let key = segs[..i + 3 + used].join("/");
    Ok((key, res))
}

/// How long an interrupted upload is kept for a resume before its bytes are dropped.
const UPLOAD_TTL: Duration = Duration::from_secs(3600);

struct Upload {
    committed: AtomicU64,
    /// When bytes last arrived.
    touched: Mutex<Instant>,
    state: tokio::sync::Mutex<UploadState>,
}

impl Upload {
    fn touch(&self) {
        *self.touched.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

struct UploadState {
    tmp: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Hasher,
}

/// The ByteStream service.
pub struct ByteStreamService {
    store: Arc<DiskStore>,
    live: Arc<LiveLogs>,
    uploads: Arc<Mutex<HashMap<String, Arc<Upload>>>>,
}

impl std::fmt::Debug for ByteStreamService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteStreamService").finish_non_exhaustive()
    }
}

impl ByteStreamService {
    /// The service over `store`, and the live logs of running actions.
    pub fn new(store: Arc<DiskStore>, live: Arc<LiveLogs>) -> Self {
        Self {
            store,
            live,
            uploads: Arc::default(),
        }
    }

    fn uploads(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Upload>>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops interrupted uploads nobody resumed within [`UPLOAD_TTL`] (their temp files
    /// too), so abandoned uploads cannot pile up.
    fn drop_stale_uploads(&self) {
        let mut uploads = self.uploads();
        let stale: Vec<String> = uploads
            .iter()
            .filter(|(_, u)| u.idle_for() > UPLOAD_TTL)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            let Some(u) = uploads.get(&key) else { continue };
            // One being written right now is not stale.
            let Ok(state) = u.state.try_lock() else {
                continue;
            };
            let _ = std::fs::remove_file(&state.tmp);
            drop(state);
            uploads.remove(&key);
        }
    }

    fn forget(&self, key: &str, tmp: &std::path::Path) {
        self.uploads().remove(key);
        let _ = std::fs::remove_file(tmp);
    }
}

fn io_status(what: &str, e: std::io::Error) -> Status {
    Status::internal(format!("failed to {what}: {e}"))
}

#[tonic::async_trait]
impl ByteStream for ByteStreamService {
    type ReadStream = BoxStream<ReadResponse>;

    async fn read(
        &self,
        request: Request<ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let req = request.into_inner();
        let (Ok(offset), Ok(limit)) = (
            u64::try_from(req.read_offset),
            u64::try_from(req.read_limit),
        ) else {
            return Err(Status::invalid_argument(format!(
                "read_offset {} and read_limit {} must not be negative",
                req.read_offset, req.read_limit
            )));
        };
        if let Some(live) = self.live.read(&req.resource_name, offset) {
            return live.map(Response::new);
        }
        let Resource { function, digest } = parse_read(&req.resource_name)?;
        if offset > digest.size {
            return Err(Status::out_of_range(format!(
                "read_offset {offset} is past the end of blob {function}/{digest}"
            )));
        }
        let remaining = match limit {
            0 => digest.size - offset,
            l => l.min(digest.size - offset),
        };
        if digest.is_empty_blob(function) || remaining == 0 {
            let empty: Vec<Result<ReadResponse, Status>> = Vec::new();
            return Ok(Response::new(Box::pin(futures::stream::iter(empty))));
        }
        let path = self.store.blob_path(function, &digest);
        let not_found = || Status::not_found(format!("blob {function}/{digest} not found"));
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| not_found())?;
        let len = file
            .metadata()
            .await
            .map_err(|e| io_status("stat a blob", e))?
            .len();
        if len != digest.size {
            self.store.discard(function, &digest);
            return Err(not_found());
        }
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| io_status("seek in a blob", e))?;
        }
        // A whole-blob read is verified as it streams; a blob found corrupt is removed and
        // the stream ends with DATA_LOSS.
        let hasher = (offset == 0 && remaining == digest.size).then(|| Hasher::new(function));
        let store = self.store.clone();
        let stream = futures::stream::unfold(Some((file, remaining, hasher)), move |state| {
            let store = store.clone();
            async move {
                let (mut file, remaining, mut hasher) = state?;
                if remaining == 0 {
                    return None;
                }
                let n = remaining.min(READ_CHUNK as u64) as usize;
                let mut buf = vec![0u8; n];
                if let Err(e) = file.read_exact(&mut buf).await {
                    return Some((Err(io_status("read a blob", e)), None));
                }
                let left = remaining - n as u64;
                if let Some(h) = hasher.as_mut() {
                    h.update(&buf);
                    if left == 0 && h.finish() != digest.hash {
                        store.discard(function, &digest);
                        return Some((
                            Err(Status::data_loss(format!(
                                "blob {function}/{digest} was corrupt on disk and is removed"
                            ))),
                            None,
                        ));
                    }
                }
                Some((Ok(ReadResponse { data: buf }), Some((file, left, hasher))))
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn write(
        &self,
        request: Request<Streaming<WriteRequest>>,
    ) -> Result<Response<WriteResponse>, Status> {
        let mut stream = request.into_inner();
        let Some(mut msg) = stream.message().await? else {
            return Err(Status::invalid_argument(
                "empty Write stream: no resource_name",
            ));
        };
        let name = msg.resource_name.clone();
        let (key, Resource { function, digest }) = parse_write(&name)?;
        let size = digest.size;
        let done = |n: u64| {
            Ok(Response::new(WriteResponse {
                committed_size: i64::try_from(n).unwrap_or(i64::MAX),
            }))
        };
        if self.store.has(function, &digest) {
            // Already stored (by this upload or another): nothing more to send.
            return done(size);
        }
        let existing = self.uploads().get(&key).cloned();
        let upload = match existing {
            Some(u) => u,
            None => {
                if msg.write_offset != 0 {
                    return Err(Status::invalid_argument(format!(
                        "write_offset {} for an upload this worker does not know ({name}): \
                         start again at offset 0",
                        msg.write_offset
                    )));
                }
                let tmp = self.store.temp_path();
                let file = tokio::fs::File::create(&tmp)
                    .await
                    .map_err(|e| io_status("create an upload file", e))?;
                self.drop_stale_uploads();
                let u = Arc::new(Upload {
                    committed: AtomicU64::new(0),
                    touched: Mutex::new(Instant::now()),
                    state: tokio::sync::Mutex::new(UploadState {
                        tmp,
                        file: Some(file),
                        hasher: Hasher::new(function),
                    }),
                });
                self.uploads().entry(key.clone()).or_insert(u).clone()
            }
        };
        let mut state = upload.state.lock().await;
        loop {
            if !msg.resource_name.is_empty() && msg.resource_name != name {
                return Err(Status::invalid_argument(format!(
                    "resource_name changed within one Write: \"{}\" after \"{name}\"",
                    msg.resource_name.escape_default()
                )));
            }
            let committed = upload.committed.load(Ordering::SeqCst);
            if u64::try_from(msg.write_offset).ok() != Some(committed) {
                return Err(Status::invalid_argument(format!(
                    "write_offset {} does not match the {committed} bytes committed to {name}",
                    msg.write_offset
                )));
            }
            let after = committed + msg.data.len() as u64;
            if after > size {
                let tmp = state.tmp.clone();
                self.forget(&key, &tmp);
                return Err(Status::invalid_argument(format!(
                    "upload {name} sent {after} bytes or more, more than the digest's size {size}"
                )));
            }
            let Some(file) = state.file.as_mut() else {
                return Err(Status::internal(format!("upload {name} has no open file")));
            };
            file.write_all(&msg.data)
                .await
                .map_err(|e| io_status("write an upload", e))?;
            state.hasher.update(&msg.data);
            upload.committed.store(after, Ordering::SeqCst);
            upload.touch();
            if msg.finish_write {
                let tmp = state.tmp.clone();
                if after != size {
                    self.forget(&key, &tmp);
                    return Err(Status::invalid_argument(format!(
                        "upload {name} finished at {after} bytes, not the digest's size {size}"
                    )));
                }
                if let Some(mut f) = state.file.take() {
                    f.flush()
                        .await
                        .map_err(|e| io_status("flush an upload", e))?;
                }
                let actual = BlobDigest {
                    hash: state.hasher.finish(),
                    size: after,
                };
                if actual != digest {
                    self.forget(&key, &tmp);
                    return Err(Status::invalid_argument(format!(
                        "digest mismatch: the content uploaded as {name} hashes to \
                         {function}/{actual}, not {digest}"
                    )));
                }
                let store = self.store.clone();
                let committed =
                    tokio::task::spawn_blocking(move || store.commit_temp(function, &digest, &tmp))
                        .await;
                self.uploads().remove(&key);
                match committed {
                    Ok(Ok(())) => return done(size),
                    Ok(Err(e)) => return Err(e.into()),
                    Err(e) => return Err(Status::internal(format!("store task failed: {e}"))),
                }
            }
            match stream.message().await? {
                Some(m) => msg = m,
                None => {
                    return Err(Status::invalid_argument(format!(
                        "the Write stream for {name} ended without finish_write at {after} \
                         bytes: resume at that offset"
                    )));
                }
            }
        }
    }

    async fn query_write_status(
        &self,
        request: Request<QueryWriteStatusRequest>,
    ) -> Result<Response<QueryWriteStatusResponse>, Status> {
        let name = request.into_inner().resource_name;
        let (key, Resource { function, digest }) = parse_write(&name)?;
        let size = i64::try_from(digest.size).unwrap_or(i64::MAX);
        if self.store.has(function, &digest) {
            return Ok(Response::new(QueryWriteStatusResponse {
                committed_size: size,
                complete: true,
            }));
        }
        match self.uploads().get(&key) {
            Some(u) => Ok(Response::new(QueryWriteStatusResponse {
                committed_size: i64::try_from(u.committed.load(Ordering::SeqCst))
                    .unwrap_or(i64::MAX),
                complete: false,
            })),
            None => Err(Status::not_found(format!(
                "no upload in progress for {name}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn read_names_with_and_without_function_and_instance() {
        let r = parse_read(&format!("blobs/{H}/5")).expect("plain");
        assert_eq!(r.function, DigestFunction::Sha256);
        assert_eq!(r.digest.size, 5);
        let r = parse_read(&format!("my/instance/blobs/blake3/{H}/7")).expect("blake3");
        assert_eq!(r.function, DigestFunction::Blake3);
        assert!(parse_read(&format!("blobs/sha1/{H}/7")).is_err());
        assert!(parse_read(&format!("blobs/{H}")).is_err());
        assert!(parse_read(&format!("blobs/{H}/-1")).is_err());
        assert_eq!(
            parse_read(&format!("compressed-blobs/zstd/{H}/5"))
                .unwrap_err()
                .code(),
            tonic::Code::Unimplemented
        );
    }

    #[test]
    fn upload_names_with_metadata_share_a_key() {
        let (k1, r) = parse_write(&format!("inst/uploads/u-1/blobs/blake3/{H}/9/meta")).expect("w");
        assert_eq!(r.function, DigestFunction::Blake3);
        let (k2, _) = parse_write(&format!("inst/uploads/u-1/blobs/blake3/{H}/9")).expect("w");
        assert_eq!(k1, k2);
        assert!(parse_write(&format!("inst/blobs/{H}/9")).is_err());
    }
}
