//! sykli: CI/CD pipelines written as real code.
//!
//! This crate is what pipelines depend on: the builder API, the in-process runtime entry
//! points and the `sykli` command line.
#![deny(missing_docs)]

pub mod cli;
pub mod import;
pub mod init;
pub mod loader;
pub mod pipeline;
pub mod report;
mod run;

pub use sykli_runtime as runtime;

pub use pipeline::{
    CacheVolume, Condition, Criterion, Directory, EmitError, GateBuilder, Group, Pipeline,
    Placement, Sandbox, SecretSource, TaskBuilder, Template, TestFormat,
};

pub mod build;
pub mod entry;
pub mod tasks;

/// Declares a pipeline task: a native `async fn` or a shell command, registered so that
/// [`main!`] (or [`build::declared_pipeline`]) finds it in whatever module it lives.
///
/// ```no_run
/// use sykli::{NativeError, TaskCtx};
///
/// #[sykli::task(cmd = "cargo fmt --check", inputs = ["src/**/*.rs"])]
/// fn fmt() {}
///
/// #[sykli::task(after = [fmt], timeout = "5m", env = {"RUST_LOG": "info"})]
/// async fn unit_tests(ctx: &TaskCtx) -> Result<(), NativeError> {
///     ctx.sh("cargo test --lib").await
/// }
///
/// sykli::main!();
/// ```
///
/// A native task is `async fn name(ctx: &TaskCtx) -> Result<(), E>` where `E` is
/// [`NativeError`] or anything `Into<Box<dyn Error + Send + Sync>>` (`anyhow::Error`,
/// `std::io::Error`, `String`, ...). A shell task is an empty `fn name() {}` with `cmd`.
/// The task name is the function name with `_` turned into `-`, unless `name` says otherwise.
///
/// | attribute | meaning (JSON field) |
/// |---|---|
/// | `name = "x"` | task name |
/// | `cmd = "..."` | shell command: makes a shell task (`command`) |
/// | `after = [lint, checks::fmt, "other-name"]` | `depends_on`: task functions (checked at compile time; `use` them or write their path) or task names (checked at validation) |
/// | `inputs = ["src/**"]` | `inputs` |
/// | `outputs = {"name": "path"}` or `outputs = ["a", "b"]` | `outputs` (the list form names them `output_0`, ...) |
/// | `env = {"KEY": "value"}` | `env` |
/// | `timeout = "5m"` or `timeout = 300` | `timeout` in whole seconds (humantime syntax, checked at compile time) |
/// | `retry = 2` | `retry` |
/// | `when = "branch == 'main'"` | `when` (parsed at compile time with the runtime's condition parser) |
/// | `requires = ["linux"]`, `secrets = ["TOKEN"]` | `requires`, `secrets` |
/// | `remote`, `prefer = Remote \| Local` | `remote: true`, `prefer` |
/// | `target = "k8s"`, `workdir = "dir"`, `container = "image"` | `target`, `workdir`, `container` |
/// | `no_cache` | `cache: false` |
///
/// Next to the function the macro defines a hidden type of the same name (type namespace
/// only), which is what `after = [lint]` resolves; a module or type with the same name as a
/// task function in the same module therefore clashes. Two functions declaring the same task
/// name (in different modules) are reported at startup naming both, with file and line.
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
pub use run::{Runner, RunnerError, run, run_async};
