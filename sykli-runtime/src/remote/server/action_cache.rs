//! The ActionCache service. A result counts only while every blob it refers to is in the
//! CAS: `GetActionResult` answers NOT_FOUND otherwise, and `UpdateActionResult` refuses a
//! result whose blobs were not uploaded first (FAILED_PRECONDITION naming the first).

use std::sync::Arc;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use tonic::{Request, Response, Status};

use super::digests::{BlobDigest, function_of};
use super::outputs::first_missing;
use super::store::DiskStore;
use crate::observe::metrics::Metrics;

/// Logs up to this size are inlined when a client asks (`inline_stdout`/`inline_stderr`).
const MAX_INLINE: u64 = 1024 * 1024;

/// The ActionCache service.
#[derive(Debug, Clone)]
pub struct ActionCacheService {
    store: Arc<DiskStore>,
}

impl ActionCacheService {
    /// The service over `store`.
    pub fn new(store: Arc<DiskStore>) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl reapi::action_cache_server::ActionCache for ActionCacheService {
    async fn get_action_result(
        &self,
        request: Request<reapi::GetActionResultRequest>,
    ) -> Result<Response<reapi::ActionResult>, Status> {
        let req = request.into_inner();
        let function = function_of(req.digest_function)?;
        let action = BlobDigest::required(req.action_digest.as_ref(), "action_digest")?;
        let store = self.store.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let Some(mut result) = store.get_action(function, &action)? else {
                return Err(Status::not_found(format!(
                    "no cached result for action {function}/{action}"
                )));
            };
            if let Some(why) = first_missing(&store, function, &result) {
                return Err(Status::not_found(format!(
                    "the cached result for action {function}/{action} is incomplete: {why}"
                )));
            }
            let inline = |d: &Option<reapi::Digest>, want: bool| -> Vec<u8> {
                let Some(d) = d.as_ref().filter(|_| want) else {
                    return Vec::new();
                };
                match BlobDigest::parse(d, "log") {
                    Ok(d) if d.size <= MAX_INLINE => store.read(function, &d).unwrap_or_default(),
                    _ => Vec::new(),
                }
            };
            result.stdout_raw = inline(&result.stdout_digest, req.inline_stdout);
            result.stderr_raw = inline(&result.stderr_digest, req.inline_stderr);
            Ok(Response::new(result))
        })
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?;
        match &answer {
            Ok(_) => Metrics::global().cache_lookup(true),
            Err(s) if s.code() == tonic::Code::NotFound => Metrics::global().cache_lookup(false),
            Err(_) => {}
        }
        answer
    }

    async fn update_action_result(
        &self,
        request: Request<reapi::UpdateActionResultRequest>,
    ) -> Result<Response<reapi::ActionResult>, Status> {
        let req = request.into_inner();
        let function = function_of(req.digest_function)?;
        let action = BlobDigest::required(req.action_digest.as_ref(), "action_digest")?;
        let Some(result) = req.action_result else {
            return Err(Status::invalid_argument("action_result is missing"));
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(why) = first_missing(&store, function, &result) {
                return Err(Status::failed_precondition(format!(
                    "result for action {function}/{action} refused: {why}; upload it first"
                )));
            }
            store.put_action(function, &action, &result)?;
            Ok(Response::new(result))
        })
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
    }
}
