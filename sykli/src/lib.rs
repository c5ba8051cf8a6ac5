//! sykli: CI/CD pipelines written as real code.
//!
//! This crate is what pipelines depend on: the builder API, the in-process runtime entry
//! points and the `sykli` command line.
#![deny(missing_docs)]

pub mod cli;
pub mod pipeline;

pub use sykli_runtime as runtime;

pub use pipeline::{
    CacheVolume, Condition, Criterion, Directory, EmitError, GateBuilder, Group, Pipeline,
    Placement, SecretSource, TaskBuilder, Template,
};
