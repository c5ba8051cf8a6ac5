//! The sykli runtime: the task graph model, validation, planning, scheduling, executors and
//! the content-addressed cache.
//!
//! Data flows one way: [`graph`] (wire types, validation) -> plan -> scheduler ->
//! [`exec`] (executors) -> events -> reporters.
#![deny(missing_docs)]

pub mod cache;
pub mod events;
pub mod exec;
pub mod graph;
mod status;

pub use status::TaskStatus;
