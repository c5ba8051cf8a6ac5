//! The content-addressable storage: which blobs are missing, uploading them (batched under
//! the server's limit, ByteStream above it) and downloading them.

use std::path::{Path, PathBuf};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::bytestream;
use futures::StreamExt;
use reapi::content_addressable_storage_client::ContentAddressableStorageClient as CasClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{MAX_DECODE, RemoteClient, RemoteError, retry};
use crate::cache::DigestFunction;

/// ByteStream chunk size.
const CHUNK: usize = 1024 * 1024;
/// Digests per FindMissingBlobs request.
const FIND_MISSING_CHUNK: usize = 10_000;
/// Bytes a blob adds to a batch request besides its data (digest, framing).
const PER_BLOB_OVERHEAD: usize = 160;

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub enum BlobData {
    /// In memory.
    Bytes(Vec<u8>),
    /// In a file.
    File(PathBuf),
}

/// A blob to upload.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Its digest under the client's function.
    pub digest: reapi::Digest,
    /// Its bytes.
    pub data: BlobData,
}

/// What an upload sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Blobs sent.
    pub blobs: u64,
    /// Bytes of blob data sent.
    pub bytes: u64,
}

impl RemoteClient {
    fn cas(&self) -> CasClient<tonic::transport::Channel> {
        CasClient::new(self.channel())
            .max_decoding_message_size(MAX_DECODE)
            .max_encoding_message_size(MAX_DECODE)
    }

    fn bytestream(
        &self,
    ) -> bytestream::byte_stream_client::ByteStreamClient<tonic::transport::Channel> {
        bytestream::byte_stream_client::ByteStreamClient::new(self.channel())
            .max_decoding_message_size(MAX_DECODE)
    }

    fn function_segment(&self) -> &'static str {
        match self.function() {
            DigestFunction::Blake3 => "blake3/",
            DigestFunction::Sha256 => "",
        }
    }

    fn instance_prefix(&self) -> String {
        if self.instance().is_empty() {
            String::new()
        } else {
            format!("{}/", self.instance())
        }
    }

    /// `{instance}/blobs/[blake3/]{hash}/{size}`.
    pub fn read_resource(&self, d: &reapi::Digest) -> String {
        format!(
            "{}blobs/{}{}/{}",
            self.instance_prefix(),
            self.function_segment(),
            d.hash,
            d.size_bytes
        )
    }

    /// `{instance}/uploads/{uuid}/blobs/[blake3/]{hash}/{size}`.
    pub fn write_resource(&self, d: &reapi::Digest) -> String {
        let u: u128 = rand::random();
        // A version-4 UUID.
        let u = (u & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        let h = format!("{u:032x}");
        format!(
            "{}uploads/{}-{}-{}-{}-{}/blobs/{}{}/{}",
            self.instance_prefix(),
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..],
            self.function_segment(),
            d.hash,
            d.size_bytes
        )
    }

    /// The digests among `digests` the server does not have.
    pub async fn find_missing(
        &self,
        digests: &[reapi::Digest],
    ) -> Result<Vec<reapi::Digest>, RemoteError> {
        let mut missing = Vec::new();
        for chunk in digests.chunks(FIND_MISSING_CHUNK) {
            let req = reapi::FindMissingBlobsRequest {
                instance_name: self.instance().to_owned(),
                blob_digests: chunk.to_vec(),
                digest_function: self.fn_value(),
            };
            let r = retry::unary("FindMissingBlobs", || {
                let mut c = self.cas();
                let r = self.request(req.clone());
                async move { c.find_missing_blobs(r).await }
            })
            .await
            .map_err(|s| self.rpc_error("FindMissingBlobs", s))?;
            missing.extend(r.into_inner().missing_blob_digests);
        }
        Ok(missing)
    }

    /// Uploads the blobs the server lacks (FindMissingBlobs first); duplicates are sent once.
    pub async fn upload_missing(&self, mut blobs: Vec<Blob>) -> Result<Transferred, RemoteError> {
        blobs.sort_by(|a, b| a.digest.hash.cmp(&b.digest.hash));
        blobs.dedup_by(|a, b| a.digest.hash == b.digest.hash);
        let digests: Vec<reapi::Digest> = blobs.iter().map(|b| b.digest.clone()).collect();
        let missing: std::collections::HashSet<String> = self
            .find_missing(&digests)
            .await?
            .into_iter()
            .map(|d| d.hash)
            .collect();
        blobs.retain(|b| missing.contains(&b.digest.hash));
        self.upload(blobs).await
    }

    /// Uploads `blobs` (all of them): small ones in batches under the server's limit,
    /// larger ones with ByteStream Write.
    pub async fn upload(&self, blobs: Vec<Blob>) -> Result<Transferred, RemoteError> {
        let limit = self.batch_limit();
        let mut sent = Transferred::default();
        let mut batch: Vec<reapi::batch_update_blobs_request::Request> = Vec::new();
        let mut batch_bytes = 0usize;
        for blob in blobs {
            let size = usize::try_from(blob.digest.size_bytes).unwrap_or(usize::MAX);
            sent.blobs += 1;
            sent.bytes += size as u64;
            if size + PER_BLOB_OVERHEAD + 1024 > limit {
                self.write_stream(&blob).await?;
                continue;
            }
            if batch_bytes + size + PER_BLOB_OVERHEAD + 1024 > limit {
                self.batch_update(std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            let data = match blob.data {
                BlobData::Bytes(b) => b,
                BlobData::File(p) => tokio::fs::read(&p).await.map_err(|e| RemoteError::Io {
                    action: "read",
                    path: p.clone(),
                    source: e,
                })?,
            };
            batch_bytes += size + PER_BLOB_OVERHEAD;
            batch.push(reapi::batch_update_blobs_request::Request {
                digest: Some(blob.digest),
                data,
                compressor: 0,
            });
        }
        if !batch.is_empty() {
            self.batch_update(batch).await?;
        }
        self.count_upload(sent);
        Ok(sent)
    }

    async fn batch_update(
        &self,
        requests: Vec<reapi::batch_update_blobs_request::Request>,
    ) -> Result<(), RemoteError> {
        let req = reapi::BatchUpdateBlobsRequest {
            instance_name: self.instance().to_owned(),
            requests,
            digest_function: self.fn_value(),
        };
        let r = retry::unary("BatchUpdateBlobs", || {
            let mut c = self.cas();
            let r = self.request(req.clone());
            async move { c.batch_update_blobs(r).await }
        })
        .await
        .map_err(|s| self.rpc_error("BatchUpdateBlobs", s))?;
        for resp in r.into_inner().responses {
            if let Some(st) = resp.status
                && st.code != 0
            {
                let d = resp.digest.unwrap_or_default();
                return Err(RemoteError::Rpc {
                    endpoint: self.endpoint().to_string(),
                    call: "BatchUpdateBlobs",
                    code: tonic::Code::from_i32(st.code),
                    message: format!("blob {}/{}: {}", d.hash, d.size_bytes, st.message),
                });
            }
        }
        Ok(())
    }

    /// Uploads one blob with ByteStream Write in chunks.
    async fn write_stream(&self, blob: &Blob) -> Result<(), RemoteError> {
        let mut attempt = 1;
        loop {
            let resource = self.write_resource(&blob.digest);
            let total = blob.digest.size_bytes;
            let source =
                match &blob.data {
                    BlobData::Bytes(b) => Source::Bytes(b.clone()),
                    BlobData::File(p) => {
                        Source::File(tokio::fs::File::open(p).await.map_err(|e| {
                            RemoteError::Io {
                                action: "open",
                                path: p.clone(),
                                source: e,
                            }
                        })?)
                    }
                };
            let failed: std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>> =
                std::sync::Arc::default();
            let stream = write_requests(resource, total, source, failed.clone());
            let r = self.bytestream().write(self.request(stream)).await;
            let read_error = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let (Some(e), BlobData::File(p)) = (read_error, &blob.data) {
                return Err(RemoteError::Io {
                    action: "read",
                    path: p.clone(),
                    source: e,
                });
            }
            match r {
                Ok(resp) => {
                    let committed = resp.into_inner().committed_size;
                    // -1 or the full size: the server had it or took it all.
                    if committed != total && committed != -1 {
                        return Err(self.protocol(format!(
                            "ByteStream Write of {} committed {committed} of {total} bytes",
                            blob.digest.hash
                        )));
                    }
                    return Ok(());
                }
                Err(s) if s.code() == tonic::Code::AlreadyExists => return Ok(()),
                Err(s) if retry::transient(s.code()) && attempt < retry::UNARY_ATTEMPTS => {
                    tokio::time::sleep(retry::delay(attempt)).await;
                    attempt += 1;
                }
                Err(s) => return Err(self.rpc_error("ByteStream.Write", s)),
            }
        }
    }

    /// A blob's bytes: BatchReadBlobs when it fits a batch, ByteStream Read otherwise.
    pub async fn read_blob(&self, d: &reapi::Digest) -> Result<Vec<u8>, RemoteError> {
        if d.size_bytes == 0 {
            return Ok(Vec::new());
        }
        let size = usize::try_from(d.size_bytes).unwrap_or(usize::MAX);
        let data = if size + PER_BLOB_OVERHEAD + 1024 <= self.batch_limit() {
            let req = reapi::BatchReadBlobsRequest {
                instance_name: self.instance().to_owned(),
                digests: vec![d.clone()],
                acceptable_compressors: Vec::new(),
                digest_function: self.fn_value(),
            };
            let r = retry::unary("BatchReadBlobs", || {
                let mut c = self.cas();
                let r = self.request(req.clone());
                async move { c.batch_read_blobs(r).await }
            })
            .await
            .map_err(|s| self.rpc_error("BatchReadBlobs", s))?;
            let resp = r
                .into_inner()
                .responses
                .into_iter()
                .next()
                .ok_or_else(|| self.protocol("BatchReadBlobs returned no blob"))?;
            if let Some(st) = resp.status
                && st.code != 0
            {
                return Err(RemoteError::Rpc {
                    endpoint: self.endpoint().to_string(),
                    call: "BatchReadBlobs",
                    code: tonic::Code::from_i32(st.code),
                    message: format!("blob {}/{}: {}", d.hash, d.size_bytes, st.message),
                });
            }
            resp.data
        } else {
            let mut out = Vec::with_capacity(size.min(1 << 30));
            self.read_stream(&self.read_resource(d), |chunk| {
                out.extend_from_slice(chunk);
                Ok(())
            })
            .await?;
            out
        };
        if self.function().of_bytes(&data).to_hex() != d.hash || data.len() != size {
            return Err(self.protocol(format!(
                "blob {}/{} arrived with other content",
                d.hash, d.size_bytes
            )));
        }
        Ok(data)
    }

    /// Reads a ByteStream resource to its end, handing each chunk to `sink`.
    pub async fn read_stream(
        &self,
        resource: &str,
        mut sink: impl FnMut(&[u8]) -> Result<(), RemoteError>,
    ) -> Result<(), RemoteError> {
        let req = bytestream::ReadRequest {
            resource_name: resource.to_owned(),
            read_offset: 0,
            read_limit: 0,
        };
        let mut stream = retry::unary("ByteStream.Read", || {
            let mut c = self.bytestream();
            let r = self.request(req.clone());
            async move { c.read(r).await }
        })
        .await
        .map_err(|s| self.rpc_error("ByteStream.Read", s))?
        .into_inner();
        while let Some(msg) = stream.next().await {
            let msg = msg.map_err(|s| self.rpc_error("ByteStream.Read", s))?;
            sink(&msg.data)?;
        }
        Ok(())
    }

    /// Writes a blob to `path` (parents created, replacing a file there) with the execute
    /// bits when `executable`.
    pub async fn download(
        &self,
        d: &reapi::Digest,
        path: &Path,
        executable: bool,
    ) -> Result<(), RemoteError> {
        let io = |action: &'static str, source| RemoteError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        let data = self.read_blob(d).await?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io("create the directory of", e))?;
        }
        let _ = tokio::fs::remove_file(path).await;
        let mut f = tokio::fs::File::create(path)
            .await
            .map_err(|e| io("create", e))?;
        f.write_all(&data).await.map_err(|e| io("write", e))?;
        f.flush().await.map_err(|e| io("write", e))?;
        if executable {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .await
                .map_err(|e| io("set the mode of", e))?;
        }
        Ok(())
    }
}

/// Where a streamed upload reads from.
enum Source {
    Bytes(Vec<u8>),
    File(tokio::fs::File),
}

/// The WriteRequests of one upload, read chunk by chunk (a file is never held whole in
/// memory). A read error ends the stream early and is left in `failed`.
fn write_requests(
    resource: String,
    total: i64,
    source: Source,
    failed: std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>>,
) -> impl futures::Stream<Item = bytestream::WriteRequest> + Send + 'static {
    futures::stream::unfold((source, 0i64, false), move |(mut source, offset, done)| {
        let (resource, failed) = (resource.clone(), failed.clone());
        async move {
            if done {
                return None;
            }
            let data = match &mut source {
                Source::Bytes(b) => {
                    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                    b[start..(start + CHUNK).min(b.len())].to_vec()
                }
                Source::File(f) => {
                    let mut buf = vec![0u8; CHUNK];
                    let mut filled = 0;
                    // Bounded: each read fills more of the chunk or reaches the end.
                    while filled < CHUNK {
                        match f.read(&mut buf[filled..]).await {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) => {
                                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                return None;
                            }
                        }
                    }
                    buf.truncate(filled);
                    buf
                }
            };
            let next = offset + data.len() as i64;
            let finish = next >= total || data.is_empty();
            let req = bytestream::WriteRequest {
                resource_name: if offset == 0 { resource } else { String::new() },
                write_offset: offset,
                finish_write: finish,
                data,
            };
            Some((req, (source, next, finish)))
        }
    })
}
