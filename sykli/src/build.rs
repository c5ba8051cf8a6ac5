//! Running a pipeline from a cargo build script (`build.rs`), in-process, with cargo's
//! `rerun-if-changed` wired from the tasks' `inputs`.
//!
//! ```no_run
//! // build.rs
//! use sykli::TaskCtx;
//!
//! #[sykli::task(inputs = ["schema/*.txt"])]
//! async fn generate(ctx: &TaskCtx) -> std::io::Result<()> {
//!     let out = std::path::PathBuf::from(ctx.env("OUT_DIR").unwrap_or_default());
//!     std::fs::write(out.join("generated.rs"), "pub const N: u32 = 1;\n")
//! }
//!
//! fn main() -> Result<(), sykli::build::BuildError> {
//!     let (pipeline, natives) = sykli::build::declared_pipeline()?;
//!     sykli::build::rerun_if_changed(&pipeline);
//!     sykli::build::run(&pipeline, natives)?;
//!     Ok(())
//! }
//! ```
//!
//! Tasks run with the build script's environment (`OUT_DIR`, `TARGET`, `PROFILE`, ...), with
//! the package directory (`CARGO_MANIFEST_DIR`) as project root. Run state and logs go to
//! `$OUT_DIR/sykli`, never into the source tree. The run is configured by the same builder
//! as `sykli run` (the local cache, the container executor, native tasks cached on the
//! build script's identity). Task output is forwarded to stderr, which
//! cargo shows when the build script fails.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sykli_runtime::events::{Event, EventSink, RunSummary};
use sykli_runtime::exec::native::NativeRegistry;
use sykli_runtime::graph::ValidationErrors;
use sykli_runtime::scheduler::{self, RunError, Signals};

use crate::pipeline::Pipeline;
use crate::tasks::{self, CollectError};

/// Why a build script's pipeline did not succeed.
#[derive(thiserror::Error)]
pub enum BuildError {
    /// Two `#[sykli::task]` functions declare the same name.
    #[error("{}", join_lines(.0))]
    Declarations(Vec<CollectError>),
    /// The pipeline is invalid; every error is listed.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The runtime could not run the pipeline.
    #[error("failed to run the build pipeline")]
    Run(#[source] RunError),
    /// Tasks failed.
    #[error(
        "build pipeline failed: {} (logs in {})",
        .failed.iter().map(|t| format!("task \"{t}\"")).collect::<Vec<_>>().join(", "),
        .log_dir.display()
    )]
    Failed {
        /// The tasks that failed or errored, in the order they finished.
        failed: Vec<String>,
        /// The run's summary.
        summary: Box<RunSummary>,
        /// Where the full task logs are.
        log_dir: PathBuf,
    },
    /// The async runtime could not be started.
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
}

fn join_lines(errors: &[CollectError]) -> String {
    errors
        .iter()
        .map(|e| format!("error: {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Readable when `main` returns it: the message and its causes.
impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// The pipeline of every `#[sykli::task]` in the build script, and their native functions.
pub fn declared_pipeline() -> Result<(Pipeline, NativeRegistry), BuildError> {
    // A build script is not a binary other engines run: native commands name the script.
    let bin = crate::entry::BinInfo {
        package: option_env!("CARGO_PKG_NAME").unwrap_or("build-script"),
        bin: None,
    };
    let declared = tasks::declared_tasks(|name| crate::entry::native_command(&bin, name))
        .map_err(BuildError::Declarations)?;
    let pipeline = crate::entry::pipeline_of(&declared, None);
    Ok((pipeline, declared.registry()))
}

/// The paths cargo should watch for the tasks' `inputs`: for each glob, the directory before
/// its first wildcard (cargo watches a directory recursively, so new files count too), or
/// the path itself when it has no wildcard. Sorted, without duplicates.
pub fn watched_paths(pipeline: &Pipeline) -> Vec<String> {
    let graph = pipeline.to_graph();
    let mut paths: Vec<String> = graph
        .tasks
        .iter()
        .flat_map(|t| t.inputs.iter())
        .map(|glob| glob_base(glob))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// `src/**/*.rs` -> `src`; `schema/*.txt` -> `schema`; `build.txt` -> `build.txt`;
/// `*.txt` -> `.`.
fn glob_base(glob: &str) -> String {
    let first_wild = glob.find(['*', '?', '[', '{']);
    let literal = match first_wild {
        None => return glob.trim_end_matches('/').to_string(),
        Some(i) => &glob[..i],
    };
    match literal.rfind('/') {
        Some(slash) if slash > 0 => literal[..slash].to_string(),
        _ => ".".to_string(),
    }
}

/// Prints `cargo:rerun-if-changed=<path>` for every path of [`watched_paths`], so cargo
/// reruns the build script exactly when a task input changes.
pub fn rerun_if_changed(pipeline: &Pipeline) {
    let mut out = std::io::stdout().lock();
    for path in watched_paths(pipeline) {
        // stdout is cargo's pipe; if it is gone the build is over anyway.
        let _ = writeln!(out, "cargo:rerun-if-changed={path}");
    }
}

/// Forwards task output to stderr and remembers which tasks failed.
#[derive(Default)]
struct BuildSink {
    failed: Mutex<Vec<String>>,
}

impl EventSink for BuildSink {
    fn emit(&self, event: &Event) {
        match event {
            Event::TaskOutput { task, line, .. } => {
                eprintln!("[{task}] {line}");
            }
            Event::TaskFinished(report) if !report.status.is_success() => {
                let detail = report.message.as_deref().unwrap_or("");
                eprintln!("[{}] {} {detail}", report.task, report.status);
                if matches!(
                    report.status,
                    sykli_runtime::TaskStatus::Failed | sykli_runtime::TaskStatus::Errored
                ) {
                    self.failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(report.task.clone());
                }
            }
            _ => {}
        }
    }
}

/// Validates and runs `pipeline` in-process (native tasks from `natives`), blocking until it
/// ends. Must not be called from inside an async runtime.
pub fn run(pipeline: &Pipeline, natives: NativeRegistry) -> Result<RunSummary, BuildError> {
    let valid = pipeline.validate().map_err(BuildError::Invalid)?;
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    // The same builder as `sykli run`: the local cache and the container executor included.
    let mut builder = crate::cli::run::builder_for(&root, &crate::cli::RunOptions::default())
        .signals(Signals::Noop)
        .native(natives);
    if let Some(out) = std::env::var_os("OUT_DIR") {
        builder = builder.state_dir(PathBuf::from(out).join("sykli"));
    }
    let built = builder.build();
    for w in &built.warnings {
        eprintln!("warning: {w}");
    }
    let config = built.config;
    let log_dir = config.log_dir();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BuildError::Runtime)?;
    let sink = Arc::new(BuildSink::default());
    let summary = rt
        .block_on(scheduler::run(&valid, config, sink.clone()))
        .map_err(BuildError::Run)?;
    if summary.ok() {
        Ok(summary)
    } else {
        let failed = std::mem::take(&mut *sink.failed.lock().unwrap_or_else(|p| p.into_inner()));
        Err(BuildError::Failed {
            failed,
            summary: Box::new(summary),
            log_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_bases() {
        assert_eq!(glob_base("src/**/*.rs"), "src");
        assert_eq!(glob_base("schema/*.txt"), "schema");
        assert_eq!(glob_base("a/b/c?.txt"), "a/b");
        assert_eq!(glob_base("build.txt"), "build.txt");
        assert_eq!(glob_base("data/"), "data");
        assert_eq!(glob_base("*.txt"), ".");
        assert_eq!(glob_base("/abs/*.txt"), "/abs");
    }

    #[test]
    fn watched_paths_cover_every_task_input_once() {
        let p = Pipeline::new();
        p.task("a")
            .run("true")
            .inputs(&["schema/*.txt", "build.txt"]);
        p.task("b")
            .run("true")
            .inputs(&["schema/**/*.txt", "src/**"]);
        assert_eq!(watched_paths(&p), ["build.txt", "schema", "src"]);
    }
}
