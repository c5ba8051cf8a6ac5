//! sykli: CI/CD pipelines written as real code.
//!
//! This crate is what pipelines depend on: the builder API, the in-process runtime entry
//! points and the `sykli` command line.
#![deny(missing_docs)]

pub mod cli;
pub mod init;
pub mod loader;
pub mod pipeline;
pub mod report;
mod run;

pub use sykli_runtime as runtime;

pub use pipeline::{
    CacheVolume, Condition, Criterion, Directory, EmitError, GateBuilder, Group, Pipeline,
    Placement, SecretSource, TaskBuilder, Template,
};
pub use run::{Runner, RunnerError, run, run_async};
