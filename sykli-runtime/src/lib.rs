//! The sykli runtime: the task graph model, validation, planning, scheduling, executors and
//! the content-addressed cache.
//!
//! Data flows one way: [`graph`] (wire types, validation) -> plan -> [`scheduler`] ->
//! [`exec`] (executors) -> [`events`] -> reporters.
#![deny(missing_docs)]

pub mod cache;
pub mod context;
pub mod events;
pub mod exec;
pub mod graph;
pub mod logs;
pub mod paths;
pub mod redact;
pub mod scheduler;
pub mod secrets;
mod status;

pub use events::{Event, EventSink, RunSummary, TaskReport};
pub use exec::native::{NativeError, NativeFn, NativeRegistry, TaskCtx};
pub use scheduler::{RunConfig, RunError, Signals, run};
pub use secrets::Secret;
pub use status::TaskStatus;
