//! The sykli runtime: the task graph model, validation, planning, scheduling, executors and
//! the content-addressed cache.
//!
//! Data flows one way: [`graph`] (wire types, validation) -> [`plan`] (what runs, where,
//! under which cache key) -> [`scheduler`] -> [`exec`] (executors, by name in an
//! [`exec::ExecutorRegistry`]) -> [`events`] -> reporters.
//!
//! The main types: [`graph::Graph`] (what an SDK emitted), [`graph::ValidGraph`] (what runs),
//! [`plan::Plan`] (what happens to each task, where, under which cache key),
//! [`scheduler::RunBuilder`] (the one way a run is configured), [`RunConfig`] and [`run`]
//! (the scheduler), [`exec::Executor`] (one trait for every
//! backend: [`exec::process::ProcessExecutor`], [`exec::native::NativeExecutor`], containers,
//! remote), [`Event`] / [`EventSink`] (how a run is observed), [`TaskCtx`] (what a native task
//! function receives).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use sykli_runtime::graph::{Graph, validate};
//! use sykli_runtime::{Event, EventSink, NativeRegistry, RunConfig, Signals, TaskCtx};
//!
//! struct Print;
//! impl EventSink for Print {
//!     fn emit(&self, e: &Event) {
//!         if let Event::TaskFinished(r) = e {
//!             println!("{}: {}", r.task, r.status);
//!         }
//!     }
//! }
//!
//! let graph = Graph::from_json(r#"{"version": "1", "tasks": [
//!     {"name": "hello", "command": "echo hello"},
//!     {"name": "native", "native": "greet", "depends_on": ["hello"]}
//! ]}"#)?;
//! let mut native = NativeRegistry::new();
//! native.register("greet", |ctx: TaskCtx| async move {
//!     ctx.sh("echo from a native task").await
//! });
//! let project = tempfile::tempdir()?;
//! let mut config = RunConfig::new(project.path());
//! config.native = native;
//! config.signals = Signals::Noop;
//! let summary = sykli_runtime::run(&validate(&graph)?, config, Arc::new(Print)).await?;
//! assert_eq!(summary.passed, 2);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod cache;
pub mod context;
mod error_chain;
pub mod events;
pub mod exec;
pub mod graph;
pub mod logs;
pub mod observe;
pub mod paths;
pub mod plan;
pub mod redact;
#[cfg(feature = "remote")]
pub mod remote;
pub mod scheduler;
pub mod secrets;
pub mod state;
mod status;
pub mod testreport;

pub use error_chain::error_chain;
pub use events::{Event, EventSink, RunSummary, TaskReport};
pub use exec::native::{NativeError, NativeFn, NativeRegistry, TaskCtx};
pub use scheduler::{RunConfig, RunError, Signals, run};
pub use secrets::Secret;
pub use status::TaskStatus;
