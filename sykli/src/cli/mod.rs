//! The `sykli` command line. Each command lives in its own file; this module holds the
//! argument types and the dispatch. Exit codes: 0 ok, 1 a task failed, 2 bad usage or an
//! invalid pipeline. `--json` is one flag for every command, before or after the subcommand;
//! each command then prints exactly one [`crate::report::Envelope`] (`docs/json.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[cfg(feature = "remote")]
mod autoscale;
mod cache;
mod clean;
mod error;
mod explain;
mod gate;
pub mod graph;
mod history;
mod import;
pub mod init;
mod logs;
#[cfg(feature = "remote")]
pub mod observe;
mod plan;
#[cfg(feature = "remote")]
pub mod remote;
mod report;
pub(crate) mod run;
#[cfg(feature = "remote")]
pub mod serve;
pub mod validate;
mod watch;
#[cfg(feature = "web")]
mod web;
#[cfg(feature = "remote")]
pub mod worker;

pub use cache::{CacheArgs, CacheCommand};
pub use error::CliError;
pub use run::{RunOptions, Timeout};

/// Exit code for bad usage or an invalid pipeline.
pub const EXIT_INVALID: u8 = 2;

/// CI/CD pipelines as real code.
#[derive(Debug, Parser)]
#[command(name = "sykli", version, about)]
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
    /// Summarise the last run (or a given one) from the run records.
    Report(ReportArgs),
    /// Show what a run would do and why, without running anything.
    Explain(ExplainArgs),
    /// List the files changed since a git ref and the tasks they affect, with reasons.
    Plan(PlanArgs),
    /// Turn a GitHub Actions workflow into a pipeline (printed on stdout).
    Import(import::ImportArgs),
    /// Watch the project and rerun the tasks each change affects.
    Watch(watch::WatchArgs),
    /// Inspect and prune the local cache.
    Cache(CacheArgs),
    /// Approve or reject a gate of a run, from any process (see docs/durable.md).
    Gate(gate::GateArgs),
    /// Serve the Remote Execution API and run actions (a remote cache and executor).
    #[cfg(feature = "remote")]
    Worker(worker::WorkerArgs),
    /// Serve the Remote Execution API in front of a pool of joined workers.
    #[cfg(feature = "remote")]
    Serve(serve::ServeArgs),
    /// List the workers of a `sykli serve` pool, with its queue and load.
    #[cfg(feature = "remote")]
    Workers(serve::WorkersArgs),
    /// Follow a run live on a server (`sykli worker`, `sykli serve`, `sykli run --serve`).
    #[cfg(feature = "remote")]
    Observe(observe::ObserveArgs),
    /// List the runs and tasks a server serves, and where they run.
    #[cfg(feature = "remote")]
    Ps(observe::PsArgs),
    /// Cancel a run, or one of its running tasks, on a server.
    #[cfg(feature = "remote")]
    Cancel(observe::CancelArgs),
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

/// Arguments of `sykli report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The project.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Run id (or a unique prefix of one); the last run when omitted.
    pub run: Option<String>,
    /// Also write the run as JUnit XML to FILE, its tests parsed from the task logs (see
    /// docs/reports.md).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
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
    /// Only tasks affected by the changes since REF (default HEAD), as `sykli run
    /// --affected` would.
    #[arg(long = "affected", value_name = "REF", num_args = 0..=1, default_missing_value = "HEAD")]
    pub affected: Option<String>,
}

/// Arguments of `sykli plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Where the pipeline is.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The git ref (branch, tag, commit) to compare the working tree against.
    #[arg(long = "from", value_name = "REF")]
    pub from: String,
}

/// Arguments of `sykli validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Where the pipeline is.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
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
    // A re-executed sandbox init never gets past this line.
    sykli_runtime::exec::sandbox::run_init_if_requested();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => return e,
    };
    // `--json` is global: clap propagates it from wherever it was written.
    let json = cli.run.options.json;
    match cli.command {
        Some(Command::Cache(args)) => cache::cache_command(&args, json),
        Some(Command::Run(args)) => run::run_command(&args),
        None => run::run_command(&cli.run),
        Some(Command::Validate(args)) => validate::validate_command(&args, json),
        Some(Command::Graph(args)) => graph::graph_command(&args, json),
        Some(Command::Init(args)) => init::init_command(&args, json),
        Some(Command::Clean(args)) => clean::run(&args, json),
        Some(Command::Explain(args)) => done(explain::explain(&args, json), json),
        Some(Command::Import(args)) => done(import::import(&args, json), json),
        Some(Command::Watch(args)) => watch::watch_command(&args, json),
        Some(Command::Plan(args)) => done(plan::plan(&args, json), json),
        Some(Command::History(args)) => done(history::history(&args, json), json),
        Some(Command::Logs(args)) => done(logs::logs(&args, json), json),
        Some(Command::Report(args)) => done(report::report(&args, json), json),
        Some(Command::Gate(args)) => done(gate::gate(&args, json), json),
        #[cfg(feature = "remote")]
        Some(Command::Worker(args)) => worker::worker_command(&args, json),
        #[cfg(feature = "remote")]
        Some(Command::Serve(args)) => serve::serve_command(&args, json),
        #[cfg(feature = "remote")]
        Some(Command::Workers(args)) => serve::workers_command(&args, json),
        #[cfg(feature = "remote")]
        Some(Command::Observe(args)) => observe::observe_command(&args, json),
        #[cfg(feature = "remote")]
        Some(Command::Ps(args)) => observe::ps_command(&args, json),
        #[cfg(feature = "remote")]
        Some(Command::Cancel(args)) => observe::cancel_command(&args, json),
    }
}

/// Parses the arguments. A usage error is printed as clap words it, or as a `usage` envelope
/// when `--json` is among the arguments; `--help` and `--version` print as usual.
fn parse() -> Result<Cli, ExitCode> {
    let json_asked = std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let usage = |message: String| {
        let message = message.trim_end();
        let message = message.strip_prefix("error: ").unwrap_or(message);
        CliError::usage("usage", anyhow::anyhow!("{message}")).report(json_asked)
    };
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            let informational = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if !json_asked || informational {
                e.exit();
            }
            return Err(usage(e.render().to_string()));
        }
    };
    // The options of the implied `run` belong to `run`: `sykli --jobs 2 validate` is refused
    // rather than silently ignoring `--jobs` (`--json`, being global, is the exception).
    if let Some((sub, _)) = matches.subcommand() {
        let misplaced: Vec<String> = Cli::command()
            .get_arguments()
            .filter(|a| !a.is_global_set())
            .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
            .map(|a| match a.get_long() {
                Some(long) => format!("--{long}"),
                None => a.get_id().to_string().to_uppercase(),
            })
            .collect();
        if !misplaced.is_empty() {
            return Err(usage(format!(
                "{} before `{sub}` belongs to `sykli run`; write the options of `{sub}` after it",
                misplaced.join(", ")
            )));
        }
    }
    Cli::from_arg_matches(&matches).map_err(|e| usage(e.render().to_string()))
}

/// Exit 0 on success, or print the error (as `--json` asks) and exit with its code.
fn done(result: Result<(), CliError>, json: bool) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(json),
    }
}

/// Writes to stdout, ignoring a closed pipe (`sykli graph | head`).
pub(crate) fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
