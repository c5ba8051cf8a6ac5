//! The task graph: wire types ([`model`]) read from and written to JSON.

pub mod model;

pub use model::*;
