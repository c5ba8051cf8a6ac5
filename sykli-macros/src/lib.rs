//! Procedural macros for sykli, re-exported by the `sykli` crate: use them as
//! `#[sykli::task]`, never from this crate directly.
//!
//! The generated code refers only to `::sykli::__private`, the hidden support module of the
//! `sykli` crate, so a pipeline crate needs `sykli` (and nothing else) as a dependency.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod attrs;
mod task;

/// Declares a task of the pipeline: a native Rust function or a shell command.
///
/// See the `sykli` crate's documentation of `task` for the attributes.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
