//! Remote execution and caching over the Bazel Remote Execution API v2 (REAPI).
//!
//! The same protocol in both directions: the client side lets a run look results up in a
//! remote action cache and ship tasks placed `remote` to a remote executor (a `sykli worker`,
//! BuildGrid, Buildbarn, BuildBuddy, NativeLink); the server side is `sykli worker`, which
//! runs actions with the same executors as a local run. The cache key is the REAPI `Action`
//! digest (see [`crate::cache::action`]), so every topology shares results.

pub mod auth;
pub mod autoscale;
pub mod bots;
pub mod client;
pub mod endpoint;
pub mod pool;
pub mod server;
