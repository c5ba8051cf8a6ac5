//! Host bindings of the `sykli:target@0.1.0` world, generated from `sykli-runtime/wit/` by
//! wasmtime's `bindgen!` (no hand-written ABI). The WIT's doc comments document the items.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "target",
    path: "wit",
});
