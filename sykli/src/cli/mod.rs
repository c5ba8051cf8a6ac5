//! The `sykli` command line. Each command lives in its own file; this module holds the
//! argument types and the dispatch. Exit codes: 0 ok, 1 a task failed, 2 bad usage or an
//! invalid pipeline (see `docs/cli.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod cache;
mod clean;
mod error;
mod explain;
pub mod graph;
mod history;
pub mod init;
pub mod load;
mod logs;
pub(crate) mod run;
pub mod validate;

pub use cache::{CacheArgs, CacheCommand};
pub use error::CliError;
pub use run::{RunOptions, Timeout};

/// Exit code for bad usage or an invalid pipeline.
pub const EXIT_INVALID: u8 = 2;

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
    /// Scaffold a starter pipeline (sykli.rs, sykli.go or sykli.ts).
    Init(init::InitArgs),
    /// Remove what interrupted runs left behind.
    Clean(CleanArgs),
    /// List past runs, newest first.
    History(HistoryArgs),
    /// Print the full log of a past run's tasks.
    Logs(LogsArgs),
    /// Show what a run would do and why, without running anything.
    Explain(ExplainArgs),
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
    /// How to run it (shared with pipeline binaries started without `--emit`).
    #[command(flatten)]
    pub options: RunOptions,
}

/// The project whose `.sykli/` state a command reads.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// Project directory (holding `.sykli/`).
    #[arg(short = 'C', long = "project", value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
}

/// Arguments of `sykli history`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The project.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// How many runs to show.
    #[arg(short = 'n', long = "limit", value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print one JSON envelope instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sykli logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The project.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Run id (or a unique prefix of one), or `last`.
    pub run: String,
    /// Only this task's log; every task of the run when omitted.
    pub task: Option<String>,
}

/// Arguments of `sykli explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// Where the pipeline is.
    #[arg(long = "path", value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// Explain only this task (and what it depends on).
    pub task: Option<String>,
    /// Only tasks selected by these filters, as `sykli run --filter` would.
    #[arg(long = "filter", value_name = "NAME")]
    pub filter: Vec<String>,
    /// Print one JSON envelope instead of text.
    #[arg(long)]
    pub json: bool,
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

/// Arguments of `sykli clean`.
#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Remove containers and networks labelled by sykli (`dev.sykli.managed=true`); cache
    /// volumes are kept.
    #[arg(long)]
    pub containers: bool,
    /// Only what this run left behind.
    #[arg(long, value_name = "RUN_ID", requires = "containers")]
    pub run: Option<String>,
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Cache(args)) => cache::cache_command(&args),
        Some(Command::Run(args)) => run::run_command(&args),
        None => run::run_command(&cli.run),
        Some(Command::Validate(args)) => validate::validate_command(&args),
        Some(Command::Graph(args)) => graph::graph_command(&args),
        Some(Command::Init(args)) => init::init_command(&args),
        Some(Command::Clean(args)) => clean::run(&args),
        Some(Command::Explain(args)) => done(explain::explain(&args), args.json),
        Some(Command::History(args)) => done(history::history(&args), args.json),
        Some(Command::Logs(args)) => done(logs::logs(&args), false),
    }
}

/// Exit 0 on success, or print the error (as `--json` asks) and exit with its code.
fn done(result: Result<(), CliError>, json: bool) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(json),
    }
}

/// The `--json` envelope as one line without the newline: `ok` and `data`, plus the error's
/// code and message when there is one (see [`crate::report::Envelope`]).
pub fn envelope(ok: bool, data: serde_json::Value, error: Option<(&str, String)>) -> String {
    let envelope = match error {
        Some((code, message)) => crate::report::Envelope {
            ok,
            ..crate::report::Envelope::failure(code, message, data)
        },
        None => crate::report::Envelope {
            ok,
            ..crate::report::Envelope::success(data)
        },
    };
    envelope.to_line().trim_end().to_owned()
}

/// Writes to stdout, ignoring a closed pipe (`sykli graph | head`).
pub(crate) fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
