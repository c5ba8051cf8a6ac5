//! The Capabilities service: BLAKE3 and SHA-256 for cache and execution, the batch limit,
//! REAPI 2.0 to 2.3, and `x-sykli-worker: 1` plus the worker's labels in the response
//! metadata (a sykli client sends secrets only to a sykli worker).

use std::sync::Arc;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::build::bazel::semver::SemVer;
use tonic::{Request, Response, Status};

use super::platform::Labels;
use crate::cache::digest::DigestFunction;

/// The largest `BatchUpdateBlobs`/`BatchReadBlobs` total this worker accepts: under gRPC's
/// 4 MiB message limit with room for the request's other fields.
pub const MAX_BATCH_TOTAL_SIZE_BYTES: i64 = 4 * 1024 * 1024 - 64 * 1024;

pub use crate::remote::{LABELS_METADATA, WORKER_METADATA};

/// The Capabilities service.
#[derive(Debug, Clone)]
pub struct CapabilitiesService {
    labels: Arc<Labels>,
}

impl CapabilitiesService {
    /// The service advertising `labels`.
    pub fn new(labels: Arc<Labels>) -> Self {
        Self { labels }
    }
}

fn semver(major: i32, minor: i32) -> SemVer {
    SemVer {
        major,
        minor,
        patch: 0,
        prerelease: String::new(),
    }
}

/// What this worker supports.
pub fn server_capabilities() -> reapi::ServerCapabilities {
    let functions = vec![
        DigestFunction::Sha256.reapi_value(),
        DigestFunction::Blake3.reapi_value(),
    ];
    reapi::ServerCapabilities {
        cache_capabilities: Some(reapi::CacheCapabilities {
            digest_functions: functions.clone(),
            action_cache_update_capabilities: Some(reapi::ActionCacheUpdateCapabilities {
                update_enabled: true,
            }),
            max_batch_total_size_bytes: MAX_BATCH_TOTAL_SIZE_BYTES,
            symlink_absolute_path_strategy: reapi::symlink_absolute_path_strategy::Value::Allowed
                as i32,
            ..Default::default()
        }),
        #[allow(deprecated)]
        execution_capabilities: Some(reapi::ExecutionCapabilities {
            // The single (deprecated) field is what clients before REAPI 2.3 (Bazel 4.2)
            // check against their own function: SHA-256.
            digest_function: DigestFunction::Sha256.reapi_value(),
            exec_enabled: true,
            digest_functions: functions,
            ..Default::default()
        }),
        deprecated_api_version: None,
        low_api_version: Some(semver(2, 0)),
        high_api_version: Some(semver(2, 3)),
    }
}

#[tonic::async_trait]
impl reapi::capabilities_server::Capabilities for CapabilitiesService {
    async fn get_capabilities(
        &self,
        _request: Request<reapi::GetCapabilitiesRequest>,
    ) -> Result<Response<reapi::ServerCapabilities>, Status> {
        let mut response = Response::new(server_capabilities());
        response.metadata_mut().insert(
            WORKER_METADATA,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        if let Ok(v) = self.labels.advertised().join(",").parse() {
            response.metadata_mut().insert(LABELS_METADATA, v);
        }
        Ok(response)
    }
}
