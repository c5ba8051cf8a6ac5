//! Remote execution and caching over the Bazel Remote Execution API v2 (REAPI).
//!
//! The same protocol in both directions: the client side lets a run look results up in a
//! remote action cache and ship tasks placed `remote` to a remote executor (a `sykli worker`,
//! BuildGrid, Buildbarn, BuildBuddy, NativeLink); the server side is `sykli worker`, which
//! runs actions with the same executors as a local run. The cache key is the REAPI `Action`
//! digest (see [`crate::cache::action`]), so every topology shares results.

/// Request metadata carrying a task's secret values on `Execute`, toward a sykli worker only
/// (binary, JSON `{NAME: VALUE}`): secrets travel beside the action, never in it.
pub const SECRETS_METADATA: &str = "x-sykli-secrets-bin";
/// Request metadata carrying which attempt of its task an `Execute` is (ASCII, from 1), so a
/// worker hands plugins the same attempt a local run would; outside the action, so every
/// attempt has the same digest.
pub const ATTEMPT_METADATA: &str = "x-sykli-attempt";
/// Response metadata by which a `sykli worker` says it is one (on `GetCapabilities`).
pub const WORKER_METADATA: &str = "x-sykli-worker";
/// Response metadata listing a `sykli worker`'s labels (`K=V`, comma-separated).
pub const LABELS_METADATA: &str = "x-sykli-worker-labels";

pub mod auth;
pub mod autoscale;
pub mod bots;
pub mod client;
pub mod endpoint;
pub mod pool;
pub mod resources;
pub mod server;

/// The answer of a hand-written gRPC service (pool, observe, admin) to a method it does not
/// have: `UNIMPLEMENTED`, as generated servers answer.
pub(crate) fn unimplemented_method() -> tonic::codegen::http::Response<tonic::body::Body> {
    use tonic::codegen::http;
    let mut response = http::Response::new(tonic::body::Body::default());
    let headers = response.headers_mut();
    headers.insert(
        tonic::Status::GRPC_STATUS,
        (tonic::Code::Unimplemented as i32).into(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        tonic::metadata::GRPC_CONTENT_TYPE,
    );
    response
}
