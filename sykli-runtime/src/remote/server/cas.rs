//! The ContentAddressableStorage service: FindMissingBlobs, BatchUpdateBlobs (verified),
//! BatchReadBlobs, GetTree. Chunking (split/splice) is not offered.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use tonic::codegen::BoxStream;
use tonic::{Code, Request, Response, Status, Streaming};

use super::capabilities::MAX_BATCH_TOTAL_SIZE_BYTES;
use super::digests::{BlobDigest, function_of};
use super::status;
use super::store::{DiskStore, StoreError};

/// Directories per `GetTree` response message (far under the 4 MiB message limit for
/// ordinary directories).
const TREE_PAGE: usize = 1000;

/// The ContentAddressableStorage service.
#[derive(Debug, Clone)]
pub struct CasService {
    store: Arc<DiskStore>,
}

impl CasService {
    /// The service over `store`.
    pub fn new(store: Arc<DiskStore>) -> Self {
        Self { store }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
}

fn too_large(total: u64) -> Status {
    Status::invalid_argument(format!(
        "batch of {total} bytes exceeds max_batch_total_size_bytes \
         {MAX_BATCH_TOTAL_SIZE_BYTES}: send large blobs with ByteStream"
    ))
}

#[tonic::async_trait]
impl reapi::content_addressable_storage_server::ContentAddressableStorage for CasService {
    type GetTreeStream = BoxStream<reapi::GetTreeResponse>;
    type GetChunkMappingStream = BoxStream<reapi::GetChunkMappingResponse>;

    async fn find_missing_blobs(
        &self,
        request: Request<reapi::FindMissingBlobsRequest>,
    ) -> Result<Response<reapi::FindMissingBlobsResponse>, Status> {
        let req = request.into_inner();
        let function = function_of(req.digest_function)?;
        let digests = req
            .blob_digests
            .iter()
            .enumerate()
            .map(|(i, d)| BlobDigest::parse(d, &format!("blob_digests[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let store = self.store.clone();
        let missing = blocking(move || {
            Ok(digests
                .into_iter()
                .filter(|d| !store.has(function, d))
                .map(BlobDigest::to_reapi)
                .collect())
        })
        .await?;
        Ok(Response::new(reapi::FindMissingBlobsResponse {
            missing_blob_digests: missing,
        }))
    }

    async fn batch_update_blobs(
        &self,
        request: Request<reapi::BatchUpdateBlobsRequest>,
    ) -> Result<Response<reapi::BatchUpdateBlobsResponse>, Status> {
        let req = request.into_inner();
        let function = function_of(req.digest_function)?;
        let total: u64 = req.requests.iter().map(|r| r.data.len() as u64).sum();
        if total > MAX_BATCH_TOTAL_SIZE_BYTES as u64 {
            return Err(too_large(total));
        }
        let store = self.store.clone();
        let responses = blocking(move || {
            Ok(req
                .requests
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let field = format!("requests[{i}].digest");
                    let outcome = if r.compressor != 0 {
                        Err(status::status(
                            Code::InvalidArgument,
                            format!("requests[{i}]: compressed uploads are not supported"),
                        ))
                    } else {
                        match BlobDigest::required(r.digest.as_ref(), &field) {
                            Err(s) => Err(status::status(s.code(), s.message())),
                            Ok(d) => store
                                .put_bytes(function, &d, &r.data)
                                .map_err(|e| store_status(&e)),
                        }
                    };
                    reapi::batch_update_blobs_response::Response {
                        digest: r.digest,
                        status: Some(outcome.err().unwrap_or_else(status::ok)),
                    }
                })
                .collect())
        })
        .await?;
        Ok(Response::new(reapi::BatchUpdateBlobsResponse { responses }))
    }

    async fn batch_read_blobs(
        &self,
        request: Request<reapi::BatchReadBlobsRequest>,
    ) -> Result<Response<reapi::BatchReadBlobsResponse>, Status> {
        let req = request.into_inner();
        let function = function_of(req.digest_function)?;
        let digests = req
            .digests
            .iter()
            .enumerate()
            .map(|(i, d)| BlobDigest::parse(d, &format!("digests[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let total: u64 = digests.iter().map(|d| d.size).sum();
        if total > MAX_BATCH_TOTAL_SIZE_BYTES as u64 {
            return Err(too_large(total));
        }
        let store = self.store.clone();
        let responses = blocking(move || {
            Ok(digests
                .into_iter()
                .map(|d| {
                    let (data, st) = match store.read(function, &d) {
                        Ok(data) => (data, status::ok()),
                        Err(e) => (Vec::new(), store_status(&e)),
                    };
                    reapi::batch_read_blobs_response::Response {
                        digest: Some(d.to_reapi()),
                        data,
                        compressor: 0,
                        status: Some(st),
                    }
                })
                .collect())
        })
        .await?;
        Ok(Response::new(reapi::BatchReadBlobsResponse { responses }))
    }

    async fn get_tree(
        &self,
        request: Request<reapi::GetTreeRequest>,
    ) -> Result<Response<Self::GetTreeStream>, Status> {
        let req = request.into_inner();
        let function = function_of(req.digest_function)?;
        let root = BlobDigest::required(req.root_digest.as_ref(), "root_digest")?;
        let store = self.store.clone();
        let dirs = blocking(move || {
            let mut out = Vec::new();
            let mut seen = HashSet::new();
            let mut queue = VecDeque::from([(root, "root_digest".to_owned())]);
            while let Some((d, what)) = queue.pop_front() {
                if !seen.insert(d) {
                    continue;
                }
                let dir: reapi::Directory =
                    store
                        .read_message(function, &d, "Directory")
                        .map_err(|e| match e {
                            StoreError::NotFound { .. } => Status::not_found(format!(
                                "{what}: Directory {function}/{d} is not in the CAS"
                            )),
                            other => other.to_status(),
                        })?;
                for sub in &dir.directories {
                    let field = format!("directory \"{}\" in {d}", sub.name);
                    let sd = BlobDigest::required(sub.digest.as_ref(), &field)?;
                    queue.push_back((sd, field));
                }
                out.push(dir);
            }
            Ok(out)
        })
        .await?;
        let pages: Vec<Result<reapi::GetTreeResponse, Status>> = dirs
            .chunks(TREE_PAGE)
            .map(|c| {
                Ok(reapi::GetTreeResponse {
                    directories: c.to_vec(),
                    next_page_token: String::new(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(pages))))
    }

    async fn split_blob(
        &self,
        _request: Request<reapi::SplitBlobRequest>,
    ) -> Result<Response<reapi::SplitBlobResponse>, Status> {
        Err(Status::unimplemented(
            "SplitBlob is not supported by sykli worker",
        ))
    }

    async fn get_chunk_mapping(
        &self,
        _request: Request<reapi::GetChunkMappingRequest>,
    ) -> Result<Response<Self::GetChunkMappingStream>, Status> {
        Err(Status::unimplemented(
            "GetChunkMapping is not supported by sykli worker",
        ))
    }

    async fn splice_blob(
        &self,
        _request: Request<reapi::SpliceBlobRequest>,
    ) -> Result<Response<reapi::SpliceBlobResponse>, Status> {
        Err(Status::unimplemented(
            "SpliceBlob is not supported by sykli worker",
        ))
    }

    async fn register_chunk_mapping(
        &self,
        _request: Request<Streaming<reapi::RegisterChunkMappingRequest>>,
    ) -> Result<Response<reapi::RegisterChunkMappingResponse>, Status> {
        Err(Status::unimplemented(
            "RegisterChunkMapping is not supported by sykli worker",
        ))
    }
}

/// A store error as a per-blob status.
fn store_status(e: &StoreError) -> bazel_remote_apis::google::rpc::Status {
    let s = e.to_status();
    status::status(s.code(), s.message())
}
