//! A pipeline whose tasks live in three modules. `sykli::main!()` collects them all.
//!
//! ```text
//! cargo run -p sykli-example-multi-module --bin pipeline -- --emit
//! cargo run -p sykli-example-multi-module --bin pipeline -- --sykli-exec lint
//! ```

mod build;
mod checks;
mod release;

sykli::main!();
