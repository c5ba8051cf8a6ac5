//! The pipeline builder: the same API as the Go and TypeScript SDKs, emitting the same bytes.
//!
//! ```
//! use std::time::Duration;
//! use sykli::{Condition, Pipeline};
//!
//! let p = Pipeline::new();
//! p.task("lint").run("cargo clippy -- -D warnings").inputs(&["src/**/*.rs"]);
//! p.task("test").run("cargo test").after(&["lint"]).timeout(Duration::from_secs(600));
//! p.task("deploy")
//!     .run("./deploy.sh")
//!     .after(&["test"])
//!     .when_cond(Condition::branch("main").and(Condition::in_ci()));
//! let json = p.to_json();
//! assert!(json.starts_with("{\n  \"version\": \"1\",\n  \"tasks\": ["));
//! assert!(json.contains(r#""when": "(branch == 'main') && (ci == true)""#));
//! # assert!(p.validate().is_ok());
//! ```
//!
//! A pipeline program calls [`Pipeline::emit`] (or [`Pipeline::emit_or_exit`]) at the end of
//! `main`: with `--emit` on the command line it validates the graph and prints it as JSON.

mod condition;
mod emit;
#[allow(clippy::module_inception)]
mod pipeline;
mod task;
mod template;

pub use condition::Condition;
pub use emit::EmitError;
pub use pipeline::{CacheVolume, Directory, Group, Pipeline};
pub use sykli_runtime::graph::{Placement, Sandbox};
pub use sykli_runtime::testreport::TestFormat;
pub use task::{Criterion, GateBuilder, SecretSource, TaskBuilder};
pub use template::Template;
