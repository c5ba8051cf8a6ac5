//! `sykli run`: load, validate and run the pipeline with the terminal or JSON reporter.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use sykli_runtime::error_chain;
use sykli_runtime::events::{EventSink, RunSummary};
use sykli_runtime::graph::{Graph, ValidGraph, validate};
use sykli_runtime::scheduler::{self, CacheChoice, RunBuilder, RunConfig, RunError, Signals};
use sykli_runtime::state::Journal;

use super::RunArgs;
use super::error::{CliError, EXIT_FAILED, EXIT_OK};
use crate::loader as load;
use crate::report::github::GithubActions;
use crate::report::{
    Fanout, RunCollector, TerminalOptions, TerminalReporter, record_formats, run_envelope,
    write_junit,
};

/// How to run a pipeline: the flags of `sykli run`, also accepted by pipeline binaries
/// (`sykli::run`) started without `--emit`.
#[derive(Debug, Clone, Default, Args)]
pub struct RunOptions {
    /// Run only this task and what it depends on (repeatable).
    #[arg(long = "filter", value_name = "NAME")]
    pub filter: Vec<String>,
    /// Run only the tasks affected by the files changed since REF (default HEAD: uncommitted
    /// changes) and what they depend on; see `sykli plan --from`.
    #[arg(long = "affected", value_name = "REF", num_args = 0..=1, default_missing_value = "HEAD")]
    pub affected: Option<String>,
    /// Tasks run at once [default: the number of CPUs].
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
    /// Keep starting independent tasks after a failure.
    #[arg(long)]
    pub keep_going: bool,
    /// Default time limit of a task that sets none (`30s`, `5m`, `0` for none).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Timeout>,
    /// Print one JSON envelope on stdout instead of text (any command; see docs/json.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// Run every task even when a cached result exists.
    #[arg(long)]
    pub no_cache: bool,
    /// Show every task's output as it is printed.
    #[arg(short, long)]
    pub verbose: bool,
    /// Continue a run that did not finish (killed, crashed or parked) from its journal:
    /// RUN, or the newest unfinished run. The pipeline must be the one it ran (see
    /// docs/durable.md).
    #[arg(long, value_name = "RUN", num_args = 0..=1, default_missing_value = "latest")]
    pub resume: Option<String>,
    /// When the run only waits on gates, park it: record that in its journal and exit
    /// (`sykli gate approve`, then `sykli run --resume`, continue it).
    #[arg(long)]
    pub park: bool,
    /// With --park: a retry backoff with at least this much left parks the run too (it
    /// holds no process meanwhile; `sykli run --resume` waits out the rest).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_backoff)]
    pub park_backoff: std::time::Duration,
    /// Run every host command task in the sandbox (namespaces and cgroups; Linux; see
    /// docs/sandbox.md), as if each set `sandbox: true`.
    #[arg(long)]
    pub sandbox: bool,
    /// Write the run as JUnit XML to FILE: a testcase per task, and each test of the tasks
    /// that declare a test output format (`tests`; see docs/reports.md).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Serve this run's events to observers on ADDR (`HOST:PORT`, or a port on 127.0.0.1;
    /// port 0 picks one): `sykli observe`, `sykli ps` and `sykli cancel` talk to it (see
    /// docs/observe.md). Calls need SYKLI_TOKEN when it is set.
    #[cfg(feature = "remote")]
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// While the run lasts, serve the live web page and /metrics at ADDR (default
    /// 127.0.0.1:0, a free port; the address is printed to stderr). See docs/observe.md.
    #[cfg(feature = "web")]
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    pub ui: Option<String>,
    /// Remote cache and execution (see docs/remote.md).
    #[cfg(feature = "remote")]
    #[command(flatten)]
    pub remote: super::remote::RemoteArgs,
}

fn parse_backoff(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration \"{s}\": {e}"))
}

/// A `--timeout` value: a humantime duration, or `0` for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Option<Duration>);

impl FromStr for Timeout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(Timeout(None));
        }
        match humantime::parse_duration(s) {
            Ok(d) if d.is_zero() => Ok(Timeout(None)),
            Ok(d) => Ok(Timeout(Some(d))),
            Err(e) => Err(format!(
                "invalid duration \"{s}\": {e} (examples: 30s, 5m, 1h30m, 0 for no limit)"
            )),
        }
    }
}

/// Runs `sykli run`.
pub fn run_command(args: &RunArgs) -> ExitCode {
    let json = args.options.json;
    let loaded = match load_pipeline(&args.pipeline.path) {
        Ok(l) => l,
        Err(e) => return e.report(json),
    };
    run_blocking(
        &loaded.graph,
        &loaded.project_root,
        &args.options,
        Default::default(),
    )
}

/// Validates and runs `graph` on a new tokio runtime with the reporters `opts` asks for,
/// printing the outcome; the exit code follows the CLI's rules.
pub(crate) fn run_blocking(
    graph: &Graph,
    project_root: &Path,
    opts: &RunOptions,
    native: sykli_runtime::exec::native::NativeRegistry,
) -> ExitCode {
    // Without in-process functions a run only waits on children and I/O: one thread does
    // that with less hand-off than a worker pool (about 12% faster on 1,000 `true` tasks).
    // Native functions get the pool, so one that blocks cannot stall the scheduler.
    let mut builder = if native.names().is_empty() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return CliError::failed(
                "internal",
                anyhow::Error::new(e).context("failed to start the async runtime"),
            )
            .report(opts.json);
        }
    };
    rt.block_on(run_reported(graph, project_root, opts, native))
}

/// The async body of [`run_blocking`].
pub(crate) async fn run_reported(
    graph: &Graph,
    project_root: &Path,
    opts: &RunOptions,
    native: sykli_runtime::exec::native::NativeRegistry,
) -> ExitCode {
    let sandboxed;
    let graph = if opts.sandbox {
        let mut g = graph.clone();
        sykli_runtime::graph::sandbox::sandbox_all(&mut g);
        sandboxed = g;
        &sandboxed
    } else {
        graph
    };
    let valid = match validate_graph(graph) {
        Ok(v) => v,
        Err(e) => return e.report(opts.json),
    };
    let builder = match with_affected(builder_for(project_root, opts), &valid, project_root, opts) {
        Ok(b) => b,
        Err(e) => return e.report(opts.json),
    };
    let builder = match with_remote(builder, project_root, opts).await {
        Ok(b) => b,
        Err(e) => return e.report(opts.json),
    };
    let builder = match resume_from(builder, project_root, opts) {
        Ok(b) => b,
        Err(e) => return e.report(opts.json),
    };
    let config = build_config(
        builder
            .native(native)
            .park(opts.park)
            .park_backoff(opts.park_backoff),
    );
    let ui = if opts.json {
        Ui::Json
    } else {
        Ui::Terminal {
            verbose: opts.verbose,
        }
    };
    let reports = match Reports::new(&valid, opts) {
        Ok(r) => r,
        Err(e) => return e.report(opts.json),
    };
    if let (Some(c), Some(point)) = (&reports.collector, &config.resume) {
        c.finished_before(point.finished.values().map(|(r, _)| r.clone()));
    }
    // After the run: the journal creates the run's directory and refuses one that exists.
    let (state_dir, run_id) = (config.state_dir.clone(), config.run_id.clone());
    // Pushed to only with the `remote` or `web` feature.
    #[allow(unused_mut)]
    let mut extra: Vec<Arc<dyn EventSink>> = reports.sinks();
    #[cfg(feature = "remote")]
    let serving = match &opts.serve {
        Some(addr) => match super::observe::serve_run(addr, &config, opts.json) {
            Ok((sink, serving)) => {
                extra.push(sink);
                Some(serving)
            }
            Err(e) => {
                reports.discard();
                return e.report(opts.json);
            }
        },
        None => None,
    };
    #[cfg(feature = "web")]
    let web = match &opts.ui {
        Some(addr) => {
            match super::web::start(addr, &valid, &config.state_dir, &config.run_id).await {
                Ok(w) => Some(w),
                Err(e) => {
                    reports.discard();
                    return e.report(opts.json);
                }
            }
        }
        None => None,
    };
    #[cfg(feature = "web")]
    if let Some(w) = &web {
        extra.extend(w.sinks.iter().cloned());
    }
    // Served metrics count this run once, whichever servers show them.
    #[cfg(feature = "web")]
    if web.is_some() || opts_serves(opts) {
        extra.push(Arc::new(sykli_runtime::observe::metrics::MetricsSink::new(
            sykli_runtime::observe::metrics::Metrics::global(),
        )));
    }
    let result = execute(&valid, config, ui, extra).await;
    #[cfg(feature = "web")]
    if let Some(web) = web {
        web.stop().await;
    }
    #[cfg(feature = "remote")]
    if let Some(s) = serving {
        s.stop().await;
    }
    if let Err(e) = record_formats(&valid, &state_dir, &run_id) {
        eprintln!(
            "warning: the tasks' test formats are not recorded (`sykli report --junit` will not list their tests): {}",
            error_chain(&e)
        );
    }
    if result.is_err() {
        reports.discard();
    }
    match result {
        Ok(summary) => {
            let written = reports.write(opts.json);
            match (exit_code(&summary), written) {
                (code, true) => code,
                (_, false) => ExitCode::from(EXIT_FAILED),
            }
        }
        Err(RunError::Parked { .. }) => ExitCode::from(EXIT_OK),
        Err(e) => run_error(e).report(opts.json),
    }
}

/// The reports written after a run: JUnit XML (`--junit`) and, under GitHub Actions,
/// annotations and the job summary.
struct Reports {
    collector: Option<Arc<RunCollector>>,
    junit: Option<PathBuf>,
    github: Option<GithubActions>,
}

impl Reports {
    /// The reports `opts` and the environment ask for. The JUnit file is created now, so a
    /// path that cannot be written fails before anything runs.
    fn new(valid: &ValidGraph, opts: &RunOptions) -> Result<Reports, CliError> {
        if let Some(path) = &opts.junit {
            std::fs::File::create(path).map_err(|e| {
                CliError::failed(
                    "write_failed",
                    anyhow::Error::new(e)
                        .context(format!("cannot write the JUnit file {}", path.display())),
                )
            })?;
        }
        let github = GithubActions::from_env();
        let collector =
            (opts.junit.is_some() || github.is_some()).then(|| Arc::new(RunCollector::new(valid)));
        Ok(Reports {
            collector,
            junit: opts.junit.clone(),
            github,
        })
    }

    /// Removes the JUnit file created up front, for a run that did not finish (it could not
    /// be carried out, or it was parked on a gate): no half-written report is left behind.
    fn discard(&self) {
        if let Some(path) = &self.junit {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The sinks to add to the run.
    fn sinks(&self) -> Vec<Arc<dyn EventSink>> {
        self.collector
            .iter()
            .map(|c| c.clone() as Arc<dyn EventSink>)
            .collect()
    }

    /// Writes the reports of the finished run; says on stderr what could not be written and
    /// returns false then. Annotations go to stdout, or to stderr under `--json` (stdout
    /// carries only the envelope; GitHub reads workflow commands from both).
    fn write(&self, json: bool) -> bool {
        let Some(collector) = &self.collector else {
            return true;
        };
        let run = collector.run();
        let mut ok = true;
        if let Some(path) = &self.junit
            && let Err(e) = write_junit(path, &run)
        {
            eprintln!(
                "error: cannot write the JUnit file {}: {}",
                path.display(),
                error_chain(&e)
            );
            ok = false;
        }
        if let Some(gh) = &self.github {
            let result = if json {
                gh.report(&run, &mut std::io::stderr().lock())
            } else {
                gh.report(&run, &mut std::io::stdout().lock())
            };
            if let Err(e) = result {
                let path = gh.step_summary.as_deref().unwrap_or(Path::new(""));
                eprintln!(
                    "error: cannot append the job summary to {} (GITHUB_STEP_SUMMARY): {}",
                    path.display(),
                    error_chain(&e)
                );
                ok = false;
            }
        }
        ok
    }
}

/// Whether `--serve` was given (it serves `/metrics` too).
#[cfg(feature = "web")]
fn opts_serves(opts: &RunOptions) -> bool {
    #[cfg(feature = "remote")]
    {
        opts.serve.is_some()
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = opts;
        false
    }
}

/// `builder` continuing the run `opts.resume` names (`latest`: the newest unfinished one),
/// from its journal; unchanged without `--resume`.
fn resume_from(
    builder: RunBuilder,
    project_root: &Path,
    opts: &RunOptions,
) -> Result<RunBuilder, CliError> {
    let Some(run) = opts.resume.as_deref() else {
        return Ok(builder);
    };
    let state_dir = project_root.join(".sykli");
    let id = if run == "latest" {
        sykli_runtime::state::journal::latest_unfinished(&state_dir)?
    } else {
        sykli_runtime::state::find_run(&state_dir, run)?.run_id
    };
    let point = sykli_runtime::state::journal::resume_point(&state_dir, &id)?;
    if let Some(torn) = &point.torn {
        eprintln!("warning: run {id}: {torn}; it is ignored and cut off");
    }
    if !opts.json {
        eprintln!(
            "resuming run {id}: {} task(s) finished before",
            point.finished.len()
        );
    }
    Ok(builder.resume(point))
}

/// How a run is shown.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ui {
    /// The terminal reporter (live or plain).
    Terminal {
        /// Stream every task's output.
        verbose: bool,
    },
    /// One JSON envelope on stdout at the end.
    Json,
    /// Nothing (only the run record is written).
    Quiet,
}

/// Runs a validated graph with the run recorder, the reporter `ui` asks for and `extra`
/// sinks. In JSON mode a successful run's envelope is printed here; an error is the caller's
/// to report.
pub(crate) async fn execute(
    valid: &ValidGraph,
    config: RunConfig,
    ui: Ui,
    extra: Vec<Arc<dyn EventSink>>,
) -> Result<RunSummary, RunError> {
    let state_dir = config.state_dir.clone();
    let resumed = config.resume.is_some();
    let journal = match &config.resume {
        Some(point) => Journal::reopen(&state_dir, point),
        None => Journal::create(&state_dir, &config.run_id),
    };
    let journal = match journal {
        Ok(j) => Some(Arc::new(j)),
        Err(e) if config.resume.is_some() => {
            return Err(RunError::StateDir {
                path: state_dir.clone(),
                source: std::io::Error::other(error_chain(&e)),
            });
        }
        Err(e) => {
            eprintln!(
                "warning: the run is not journalled (it cannot be resumed, nor shown by history): {}",
                error_chain(&e)
            );
            None
        }
    };
    let mut sinks = Fanout::new();
    if let Some(j) = &journal {
        sinks.push(j.clone());
    }
    match ui {
        // The envelope is built from the run record once the run is over.
        Ui::Json => {}
        Ui::Terminal { verbose } => {
            let mut t = TerminalOptions::detect(&state_dir);
            t.verbose = verbose;
            sinks.push(Arc::new(TerminalReporter::new(t)));
            for w in valid.warnings() {
                eprintln!("warning: {w}");
            }
        }
        Ui::Quiet => {}
    }
    for s in extra {
        sinks.push(s);
    }
    let result = scheduler::run(valid, config, Arc::new(sinks) as Arc<dyn EventSink>).await;
    if let Some(j) = &journal
        && result.is_err()
        && !resumed
    {
        j.discard_if_empty();
    }
    let record = journal.as_ref().and_then(|j| j.record());
    if let Some(e) = journal.as_ref().and_then(|j| j.take_error()) {
        eprintln!(
            "warning: the run journal is incomplete: {}",
            error_chain(&e)
        );
    }
    if let Err(RunError::Parked {
        run_id,
        waiting,
        wake_at_ms,
    }) = &result
    {
        if matches!(ui, Ui::Json) {
            let data = record
                .as_ref()
                .map(|r| crate::report::to_data(&crate::report::RunData::from(r)))
                .unwrap_or_default();
            super::print_out(&crate::report::Envelope::success(data).to_line());
        } else if let Some(at) = wake_at_ms {
            let at = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(*at),
            );
            eprintln!(
                "run {run_id} parked, waiting on {}; the next retry is due at {at}: continue with `sykli run --resume {run_id}` (it waits for the rest of the backoff)",
                waiting.join(", ")
            );
        } else {
            let gates = waiting.join(", ");
            eprintln!(
                "run {run_id} parked, waiting on {gates}; decide with `sykli gate approve|reject {run_id} <gate>`, then continue with `sykli run --resume {run_id}`"
            );
        }
        return result;
    }
    if let (Ok(_), Ui::Json) = (&result, ui) {
        super::print_out(&run_envelope(record.as_ref()).to_line());
    }
    result
}

/// 0 when nothing failed or errored and the run was not interrupted, 1 otherwise.
pub(crate) fn exit_code(summary: &RunSummary) -> ExitCode {
    ExitCode::from(if summary.ok() { EXIT_OK } else { EXIT_FAILED })
}

/// The [`RunBuilder`] of `opts` for a project: jobs, keep-going, filter, default timeout,
/// cache, Ctrl-C handling and the durations of earlier runs. Every entry point (this CLI,
/// `sykli::run`, `sykli::main!`, `sykli::Runner`, build scripts) starts from it.
pub(crate) fn builder_for(project_root: &Path, opts: &RunOptions) -> RunBuilder {
    let mut b = RunBuilder::new(project_root.to_path_buf())
        .keep_going(opts.keep_going)
        .filter(opts.filter.clone())
        .default_timeout(opts.timeout.and_then(|t| t.0))
        .signals(Signals::Standard);
    if let Some(j) = opts.jobs {
        b = b.jobs(j.get());
    }
    if opts.no_cache {
        b = b.cache(CacheChoice::Off);
    }
    b
}

/// `builder` restricted to the tasks the changes since `opts.affected` affect, when asked.
pub(crate) fn with_affected(
    builder: RunBuilder,
    valid: &ValidGraph,
    project_root: &Path,
    opts: &RunOptions,
) -> Result<RunBuilder, CliError> {
    let Some(reference) = &opts.affected else {
        return Ok(builder);
    };
    let (_, found) = super::plan::affected_since(valid, project_root, reference)?;
    Ok(builder.affected(Some(found)))
}

/// `builder` with the project's target plugins (`.sykli/plugins/`, see
/// [`super::plugin`]) and the remote cache and executor that `opts`, the environment and
/// `sykli.toml` configure, connected (see [`super::remote`]).
pub(crate) async fn with_remote(
    builder: RunBuilder,
    project_root: &Path,
    opts: &RunOptions,
) -> Result<RunBuilder, CliError> {
    #[cfg(feature = "plugins")]
    let builder = super::plugin::with_local_plugins(builder, project_root)?;
    #[cfg(feature = "remote")]
    {
        let settings = super::remote::settings(&opts.remote, project_root)?;
        Ok(match super::remote::connect(&settings).await? {
            Some(setup) => builder.remote(setup),
            None => builder,
        })
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = (project_root, opts);
        Ok(builder)
    }
}

/// The [`RunConfig`] a [`RunBuilder`] makes, its warnings printed to stderr.
pub(crate) fn build_config(builder: RunBuilder) -> RunConfig {
    let built = builder.build();
    for w in &built.warnings {
        eprintln!("warning: {w}");
    }
    built.config
}

/// Validates, turning every error into one exit-2 [`CliError`].
pub(crate) fn validate_graph(graph: &Graph) -> Result<ValidGraph, CliError> {
    validate(graph).map_err(|errors| super::validate::invalid_pipeline(&errors))
}

/// The CLI error for a run that could not be carried out.
pub(crate) fn run_error(e: RunError) -> CliError {
    match e {
        e @ RunError::UnknownFilter { .. } => CliError::usage("unknown_filter", e),
        e @ RunError::PlanChanged { .. } => CliError::usage("plan_changed", e),
        e => CliError::failed("run_failed", e),
    }
}

/// Loads the pipeline at `path` (exit 2 when it cannot be loaded), with an absolute project
/// root.
pub(crate) fn load_pipeline(path: &Path) -> Result<load::Loaded, CliError> {
    let mut loaded = load::load_project(path).map_err(super::validate::load_error)?;
    loaded.project_root = absolute(&loaded.project_root);
    Ok(loaded)
}

/// `path` made absolute against the current directory (unchanged if that fails).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!("0".parse(), Ok(Timeout(None)));
        assert_eq!("30s".parse(), Ok(Timeout(Some(Duration::from_secs(30)))));
        assert_eq!("5m".parse(), Ok(Timeout(Some(Duration::from_secs(300)))));
        let e = "5 parsecs".parse::<Timeout>().unwrap_err();
        assert!(e.contains("invalid duration \"5 parsecs\""), "{e}");
    }
}
