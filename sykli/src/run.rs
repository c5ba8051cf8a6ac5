//! Running a pipeline in-process: the entry points of a pipeline binary.
//!
//! A `ci` binary's `main` is
//!
//! ```no_run
//! use std::process::ExitCode;
//! fn main() -> ExitCode {
//!     let p = sykli::Pipeline::new();
//!     p.task("test").run("cargo test");
//!     sykli::run(p)
//! }
//! ```
//!
//! [`run`] parses the process arguments: `--emit` prints the JSON graph (what
//! [`Pipeline::emit`] prints); otherwise the pipeline runs right here with the flags of
//! `sykli run` (`--filter`, `--jobs`, `--keep-going`, `--timeout`, `--json`, ...) and the same
//! reporters. [`Runner`] takes explicit options instead of arguments, for `build.rs` scripts,
//! tests and other embedders, and returns the [`RunSummary`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sykli_runtime::events::{EventSink, RunSummary};
use sykli_runtime::exec::native::NativeRegistry;
use sykli_runtime::graph::{Graph, ValidationErrors, validate};
use sykli_runtime::scheduler::{RunError, Signals};

use crate::Pipeline;
use crate::cli::RunOptions;
use crate::cli::run::{Ui, build_config, builder_for, execute, run_blocking, run_reported};

/// The arguments a pipeline binary accepts.
#[derive(Debug, Parser)]
#[command(about = "A sykli pipeline: runs itself, or prints its task graph with --emit")]
struct PipelineCli {
    /// Print the task graph as JSON and exit.
    #[arg(long)]
    emit: bool,
    /// Project directory the tasks run in [default: the current directory].
    #[arg(short = 'C', long = "project", value_name = "DIR")]
    project: Option<PathBuf>,
    /// How to run it.
    #[command(flatten)]
    options: RunOptions,
}

fn project_root(p: Option<PathBuf>) -> PathBuf {
    let p = p.unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&p).unwrap_or(p)
}

/// The native task functions of `pipeline`. The builder does not carry native closures yet;
/// when it does (or `#[sykli::task]` registrations are bridged), they are gathered here so
/// [`run`] registers them.
fn natives(pipeline: &Pipeline) -> NativeRegistry {
    pipeline.natives()
}

fn emit(pipeline: &Pipeline) -> ExitCode {
    match pipeline.emit_to(&mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `pipeline` as the process arguments say (`--emit`, or the flags of `sykli run`), on a
/// tokio runtime of its own, and returns the exit code: 0 when nothing failed, 1 when a task
/// failed or errored (or the run was interrupted), 2 for bad usage or an invalid pipeline.
/// Blocking; from async code use [`run_async`].
pub fn run(pipeline: Pipeline) -> ExitCode {
    let cli = PipelineCli::parse();
    if cli.emit {
        return emit(&pipeline);
    }
    run_blocking(
        &pipeline.to_graph(),
        &project_root(cli.project),
        &cli.options,
        natives(&pipeline),
    )
}

/// [`run`] for callers already inside a tokio runtime.
pub async fn run_async(pipeline: Pipeline) -> ExitCode {
    let cli = PipelineCli::parse();
    if cli.emit {
        return emit(&pipeline);
    }
    run_reported(
        &pipeline.to_graph(),
        &project_root(cli.project),
        &cli.options,
        natives(&pipeline),
    )
    .await
}

/// Why [`Runner::run`] could not carry out a run (task failures are in the summary).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The pipeline is invalid.
    #[error("invalid pipeline:\n{0}")]
    Invalid(ValidationErrors),
    /// The runtime could not run it (unknown filter name, unwritable state directory, ...).
    #[error("failed to run the pipeline")]
    Run(#[source] RunError),
    /// The async runtime could not be started.
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A remote setting is invalid, or a remote server refused the client (see
    /// `docs/remote.md`).
    #[error("{0}")]
    Remote(String),
}

/// Runs a pipeline with explicit options, not process arguments: for `build.rs`, tests and
/// embedders.
///
/// ```no_run
/// let p = sykli::Pipeline::new();
/// p.task("gen").run("echo generating");
/// let summary = sykli::Runner::new(&p).jobs(2).quiet().run()?;
/// assert!(summary.ok());
/// # Ok::<(), sykli::RunnerError>(())
/// ```
pub struct Runner {
    graph: Graph,
    project_root: PathBuf,
    options: RunOptions,
    native: NativeRegistry,
    sinks: Vec<Arc<dyn EventSink>>,
    quiet: bool,
    signals: Signals,
}

impl Runner {
    /// A runner for `pipeline`, in the current directory, with the defaults of `sykli run`
    /// and the terminal reporter. Signals are left alone (no Ctrl-C handler is installed).
    pub fn new(pipeline: &Pipeline) -> Self {
        let mut r = Runner::from_graph(pipeline.to_graph());
        r.native = natives(pipeline);
        r
    }

    /// A runner for a task graph.
    pub fn from_graph(graph: Graph) -> Self {
        Runner {
            graph,
            project_root: project_root(None),
            options: RunOptions::default(),
            native: NativeRegistry::new(),
            sinks: Vec::new(),
            quiet: false,
            signals: Signals::Noop,
        }
    }

    /// Tasks run at once (at least 1).
    pub fn jobs(mut self, n: usize) -> Self {
        self.options.jobs = std::num::NonZeroUsize::new(n.max(1));
        self
    }

    /// Keep running independent tasks after a failure.
    pub fn keep_going(mut self, yes: bool) -> Self {
        self.options.keep_going = yes;
        self
    }

    /// Run only this task and its dependencies (may be called several times).
    pub fn filter(mut self, task: impl Into<String>) -> Self {
        self.options.filter.push(task.into());
        self
    }

    /// Time limit of tasks that set none.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.options.timeout = Some(crate::cli::Timeout(Some(limit)));
        self
    }

    /// The project directory tasks run in and `.sykli/` is kept in.
    pub fn project_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.project_root = project_root(Some(dir.into()));
        self
    }

    /// The functions of `native` tasks.
    pub fn native(mut self, registry: NativeRegistry) -> Self {
        self.native = registry;
        self
    }

    /// Also send the run's events to `sink`.
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// No terminal output (the run record and logs are still written).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Run every task even when a cached result exists.
    pub fn no_cache(mut self) -> Self {
        self.options.no_cache = true;
        self
    }

    /// Show every task's output as it is printed.
    pub fn verbose(mut self) -> Self {
        self.options.verbose = true;
        self
    }

    /// Runs the tasks placed remote on this REAPI executor (`grpc://HOST:PORT` or
    /// `grpcs://HOST:PORT`), as `sykli run --remote` does (see `docs/remote.md`).
    #[cfg(feature = "remote")]
    pub fn remote(mut self, endpoint: &str) -> Self {
        self.options.remote.remote = Some(endpoint.to_owned());
        self
    }

    /// Looks results up in (and publishes them to) this REAPI cache behind the local one,
    /// as `sykli run --remote-cache` does.
    #[cfg(feature = "remote")]
    pub fn remote_cache(mut self, endpoint: &str) -> Self {
        self.options.remote.remote_cache = Some(endpoint.to_owned());
        self
    }

    /// Handle Ctrl-C like `sykli run` does (by default signals are left alone).
    pub fn handle_signals(mut self) -> Self {
        self.signals = Signals::Standard;
        self
    }

    /// Runs on a tokio runtime of its own, blocking until the run ends.
    pub fn run(self) -> Result<RunSummary, RunnerError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(RunnerError::Runtime)?;
        rt.block_on(self.run_async())
    }

    /// Runs inside the caller's tokio runtime.
    pub async fn run_async(self) -> Result<RunSummary, RunnerError> {
        let valid = validate(&self.graph).map_err(RunnerError::Invalid)?;
        // Remote settings as `sykli run` reads them: options, environment, sykli.toml.
        let builder = crate::cli::run::with_remote(
            builder_for(&self.project_root, &self.options),
            &self.project_root,
            &self.options,
        )
        .await
        .map_err(|e| RunnerError::Remote(e.message()))?;
        let config = build_config(builder.signals(self.signals).native(self.native));
        let ui = if self.quiet {
            Ui::Quiet
        } else {
            Ui::Terminal {
                verbose: self.options.verbose,
            }
        };
        execute(&valid, config, ui, self.sinks)
            .await
            .map_err(RunnerError::Run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_binaries_take_the_flags_of_sykli_run() {
        let cli = PipelineCli::try_parse_from([
            "ci",
            "--filter",
            "a",
            "--filter",
            "b",
            "-j",
            "3",
            "--keep-going",
            "--timeout",
            "5m",
            "--json",
        ])
        .unwrap();
        assert!(!cli.emit);
        assert_eq!(cli.options.filter, ["a", "b"]);
        assert_eq!(cli.options.jobs.map(|j| j.get()), Some(3));
        assert!(cli.options.keep_going && cli.options.json);
        assert_eq!(
            cli.options.timeout,
            Some(crate::cli::Timeout(Some(Duration::from_secs(300))))
        );
        assert!(PipelineCli::try_parse_from(["ci", "--emit"]).unwrap().emit);
        assert!(PipelineCli::try_parse_from(["ci", "--jobs", "0"]).is_err());
    }
}
