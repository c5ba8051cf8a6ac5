//! The task graph: wire types ([`model`]) read from and written to JSON, the condition language
//! ([`condition`]), matrix expansion ([`matrix`]) and validation ([`validate()`]) into a
//! [`ValidGraph`], the input of planning and scheduling. [`limits`] bounds what a document can
//! make any of these allocate or do.
//!
//! ```
//! use sykli_runtime::graph::{validate, Graph};
//! let g = Graph::from_json(r#"{"version": "1", "tasks": [
//!     {"name": "lint", "command": "cargo clippy"},
//!     {"name": "test", "command": "cargo test", "depends_on": ["lint"]}]}"#).unwrap();
//! let v = validate(&g).unwrap();
//! assert_eq!(v.deps(1), &[0]);
//! ```

pub mod condition;
pub mod error;
pub mod limits;
pub mod matrix;
pub mod model;
pub mod sandbox;
pub mod validate;

pub use condition::{Condition, ConditionContext, ConditionError};
pub use error::{ValidationError, ValidationErrors, ValidationWarning};
pub use limits::{Limits, TextLimitError};
pub use model::*;
pub use sandbox::Sandbox;
pub use validate::{ValidGraph, validate, validate_owned, validate_owned_with, validate_with};
