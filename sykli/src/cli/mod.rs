//! The `sykli` command line. Each command lives in its own file; this module holds the
//! argument types and the dispatch. Exit codes: 0 ok, 1 a task failed, 2 bad usage or an
//! invalid pipeline (see `docs/cli.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod cache;
pub use cache::{CacheArgs, CacheCommand};

/// CI/CD pipelines as real code.
#[derive(Debug, Parser)]
#[command(name = "sykli", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// The command; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Arguments of the implied `run`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Every `sykli` command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline (the default command).
    Run(RunArgs),
    /// Check the pipeline and list every error.
    Validate(ValidateArgs),
    /// Print the task graph as Mermaid (default) or Graphviz.
    Graph(GraphArgs),
    /// Inspect and prune the local cache.
    Cache(CacheArgs),
}

/// Where the pipeline is.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Project directory holding sykli.rs / sykli.go / sykli.ts / sykli.json, or a graph file.
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

/// Arguments of `sykli run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Where the pipeline is.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Run every task, ignoring and not filling the cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Arguments of `sykli validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Where the pipeline is.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Print one JSON envelope instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sykli graph`.
#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// Where the pipeline is.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Graphviz DOT instead of Mermaid.
    #[arg(long)]
    pub dot: bool,
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Cache(args)) => cache::cache_command(&args),
        Some(Command::Run(_)) | None => {
            eprintln!("sykli: `run` is not available yet");
            ExitCode::from(2)
        }
        Some(Command::Validate(_)) | Some(Command::Graph(_)) => {
            eprintln!("sykli: this command is not available yet");
            ExitCode::from(2)
        }
    }
}
