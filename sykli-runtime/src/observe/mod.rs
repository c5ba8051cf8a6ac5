//! Observing runs from anywhere: the [`hub::Hub`] of the runs a process serves (every event,
//! replayable from a sequence number, plus a live feed), which the gRPC observe service
//! (`remote` feature), the web view and the metrics read.

#[cfg(feature = "web")]
pub mod http;
pub mod hub;
pub mod metrics;
pub mod resources;

pub use hub::{Hub, HubError, RunHandle, RunInfo, RunState, Subscription, TaskInfo, TaskState};
#[cfg(feature = "remote")]
pub mod actions;
#[cfg(feature = "remote")]
pub mod grpc;
