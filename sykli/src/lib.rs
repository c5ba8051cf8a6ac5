//! sykli: CI/CD pipelines written as real code.
//!
//! This crate is what pipelines depend on: the builder API, the in-process runtime entry
//! points and the `sykli` command line.
#![deny(missing_docs)]

pub mod cli;
pub mod pipeline;
pub mod report;

pub use sykli_runtime as runtime;

pub use pipeline::{
    CacheVolume, Condition, Criterion, Directory, EmitError, GateBuilder, Group, Pipeline,
    Placement, SecretSource, TaskBuilder, Template,
};

pub mod build;
pub mod entry;
pub mod tasks;

pub use sykli_macros::task;
pub use sykli_runtime::exec::native::{NativeError, TaskCtx};

/// Support for the code `#[sykli::task]` and `sykli::main!` generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::entry::{BinInfo, main_entry};
    pub use crate::tasks::{
        BoxError, NativeTaskFn, TaskAction, TaskRegistration,
        registration::{ErrorSlot, TaskMarker, ViaBoxError, ViaNativeError},
    };
    pub use futures::future::BoxFuture;
    pub use inventory;
    pub use sykli_runtime::exec::native::NativeError;
    pub use sykli_runtime::graph::Placement;
}

/// Defines `fn main()` for a pipeline binary made of every `#[sykli::task]` in the crate.
///
/// `sykli::main!(configure)` also calls `fn configure(p: &mut Pipeline)` to add tasks with
/// the builder; they come after the declared tasks and may depend on them by name.
///
/// The binary prints the graph with `--emit`, runs one native task with
/// `--sykli-exec <task>` (what other engines and remote workers call) and otherwise runs the
/// pipeline in-process. See [`entry`].
///
/// ```no_run
/// use sykli::TaskCtx;
///
/// #[sykli::task(inputs = ["src/**/*.rs"])]
/// async fn lint(_ctx: &TaskCtx) -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// #[sykli::task(cmd = "cargo test", after = [lint])]
/// fn test() {}
///
/// sykli::main!();
/// ```
#[macro_export]
macro_rules! main {
    () => {
        fn main() -> ::std::process::ExitCode {
            $crate::__private::main_entry(
                $crate::__private::BinInfo {
                    package: ::core::env!("CARGO_PKG_NAME"),
                    bin: ::core::option_env!("CARGO_BIN_NAME"),
                },
                ::core::option::Option::None,
            )
        }
    };
    ($configure:path) => {
        fn main() -> ::std::process::ExitCode {
            $crate::__private::main_entry(
                $crate::__private::BinInfo {
                    package: ::core::env!("CARGO_PKG_NAME"),
                    bin: ::core::option_env!("CARGO_BIN_NAME"),
                },
                ::core::option::Option::Some($configure),
            )
        }
    };
}
