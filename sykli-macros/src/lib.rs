//! Procedural macros for sykli, re-exported by the `sykli` crate: use them as
//! `#[sykli::task]`, never from this crate directly.
//!
//! The generated code refers only to `::sykli::__private`, the hidden support module of the
//! `sykli` crate, so a pipeline crate needs `sykli` (and nothing else) as a dependency.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod attrs;
mod task;

/// The runtime's condition parser, compiled into the macro so `when = "..."` is checked at
/// compile time without making the macro depend on the whole runtime crate.
#[allow(dead_code, missing_docs)]
#[path = "../../sykli-runtime/src/graph/condition.rs"]
mod condition;

/// Declares a task of the pipeline: a native Rust function or a shell command.
///
/// See the `sykli` crate's documentation of `task` for the attributes.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match task::expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // Keep the function as written so the error above is the only one reported.
        Err(e) => {
            let mut tokens = e.into_compile_error();
            match syn::parse2::<syn::ItemFn>(item.clone()) {
                Ok(mut func) => {
                    func.attrs.push(syn::parse_quote!(#[allow(dead_code)]));
                    tokens.extend(quote::quote!(#func));
                }
                Err(_) => tokens.extend(item),
            }
            tokens.into()
        }
    }
}
