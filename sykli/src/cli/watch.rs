//! `sykli watch [PATH]`: watch the project and rerun the tasks each change affects.
//!
//! Changes are debounced ([`notify_debouncer_full`]) and filtered through the project's
//! ignore rules as the cache's input walk applies them ([`Ignores`]); `.git/`, `.sykli/` and
//! cache directories (marked by a `CACHEDIR.TAG`, as cargo's `target/` is) never count. The
//! tasks a batch of changes affects are found as `sykli plan --from` finds them
//! ([`sykli_runtime::plan::affected`]) and run with what they depend on, one run at a time.
//! A change that affects a task of the run in flight cancels that run and starts a new one
//! with both changes; other changes wait for the run to end. A change to `sykli.rs`,
//! `sykli.go`, `sykli.ts` or `sykli.json` reloads the pipeline; a pipeline that does not load
//! or validate shows its errors and the watch goes on until it is fixed. The first Ctrl-C or
//! SIGTERM cancels the run in flight and stops; a second one kills its tasks at once.

use std::collections::BTreeSet;
use std::future::Future;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use notify::EventKind;
use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use sykli_runtime::cache::Ignores;
use sykli_runtime::events::RunSummary;
use sykli_runtime::graph::ValidGraph;
use sykli_runtime::plan::affected;
use sykli_runtime::scheduler::{RunError, Signals};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use super::run::{
    Ui, build_config, builder_for, execute, load_pipeline, run_error, validate_graph,
};
use super::{PipelineArgs, RunOptions};
use crate::loader::{LOADERS, find_pipeline};

/// Arguments of `sykli watch`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Where the pipeline is.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Rerun only these tasks (and what they depend on) when a change affects them.
    #[arg(long = "filter", value_name = "NAME")]
    pub filter: Vec<String>,
    /// Tasks run at once [default: the number of CPUs].
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
    /// Run every task even when a cached result exists.
    #[arg(long)]
    pub no_cache: bool,
    /// Show every task's output as it is printed.
    #[arg(short, long)]
    pub verbose: bool,
    /// How long the project must be quiet before changes are acted on.
    #[arg(long, value_name = "DURATION", default_value = "50ms")]
    pub debounce: humantime::Duration,
}

/// Runs `sykli watch`.
pub fn watch_command(args: &WatchArgs, json: bool) -> ExitCode {
    if json {
        return CliError::usage(
            "usage",
            anyhow::anyhow!("`sykli watch` reports to the terminal; it has no --json form"),
        )
        .report(true);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return CliError::failed(
                "internal",
                anyhow::Error::new(e).context("failed to start the async runtime"),
            )
            .report(false);
        }
    };
    match rt.block_on(watch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(false),
    }
}

/// A run in flight.
struct Running {
    run: Pin<Box<dyn Future<Output = Result<RunSummary, RunError>>>>,
    cancel: CancellationToken,
    kill: CancellationToken,
    /// The tasks it runs (by index of the graph it was planned on).
    tasks: Vec<bool>,
    /// The changes it runs for.
    paths: BTreeSet<String>,
}

/// What a batch of file events means.
type Batch = Result<Vec<PathBuf>, String>;

async fn watch(args: &WatchArgs) -> Result<(), CliError> {
    let (file, _) = find_pipeline(&args.pipeline.path).map_err(super::validate::load_error)?;
    let file = super::run::absolute(&file);
    let root = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let opts = RunOptions {
        filter: args.filter.clone(),
        jobs: args.jobs,
        no_cache: args.no_cache,
        verbose: args.verbose,
        ..RunOptions::default()
    };
    let mut graph = load(&args.pipeline.path);
    let ignores = Ignores::new(&root);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Batch>();
    let mut debouncer = new_debouncer(
        Duration::from(args.debounce),
        None,
        move |res: DebounceEventResult| {
            let batch = match res {
                Ok(events) => Ok(events
                    .into_iter()
                    .filter(|e| !matches!(e.kind, EventKind::Access(_)))
                    .flat_map(|e| e.event.paths)
                    .collect()),
                Err(errors) => Err(errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")),
            };
            // The receiver is gone only when the watch is stopping.
            let _ = tx.send(batch);
        },
    )
    .map_err(|e| {
        CliError::failed(
            "watch_failed",
            anyhow::anyhow!("failed to start watching: {e}"),
        )
    })?;
    debouncer
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| {
            CliError::failed(
                "watch_failed",
                anyhow::anyhow!("failed to watch {}: {e}", root.display()),
            )
        })?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_error)?;
    eprintln!(
        "watch: watching {} ({}); waiting for changes, Ctrl-C to stop",
        root.display(),
        match &graph {
            Some(g) => format!("{} tasks", g.len()),
            None => "the pipeline does not load yet".to_owned(),
        }
    );

    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut running: Option<Running> = None;
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let paths = match batch {
                    Some(Ok(paths)) => paths,
                    Some(Err(message)) => {
                        eprintln!("watch: warning: {message}");
                        continue;
                    }
                    None => break,
                };
                let changed = relevant(&root, &ignores, &paths);
                if changed.is_empty() {
                    continue;
                }
                let mut restart = false;
                if changed.iter().any(|p| LOADERS.iter().any(|l| l.file == p)) {
                    eprintln!("watch: pipeline changed; reloading");
                    graph = load(&args.pipeline.path);
                    restart = true;
                }
                eprintln!("watch: changed: {}", changed.iter().cloned().collect::<Vec<_>>().join(", "));
                if let (Some(r), Some(g)) = (&running, &graph) && !restart {
                    let list: Vec<String> = changed.iter().cloned().collect();
                    if let Ok(a) = affected(g, &root, &list) {
                        restart = a.indices().into_iter().any(|i| r.tasks.get(i) == Some(&true));
                    }
                }
                pending.extend(changed);
                if let Some(r) = &running {
                    if restart {
                        eprintln!("watch: inputs of the run in flight changed; cancelling it");
                        r.cancel.cancel();
                        pending.extend(r.paths.iter().cloned());
                    }
                } else {
                    running = start(&root, &opts, graph.as_ref(), &mut pending);
                }
            }
            result = async { running.as_mut().map(|r| r.run.as_mut()).expect("guarded").await }, if running.is_some() => {
                match result {
                    Ok(s) if s.interrupted => eprintln!("watch: run cancelled"),
                    Ok(s) => eprintln!("watch: run finished ({})", if s.ok() { "passed" } else { "failed" }),
                    Err(e) => run_error(e).print(),
                }
                running = start(&root, &opts, graph.as_ref(), &mut pending);
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    // Stop: cancel the run in flight and wait for it; a second signal kills its tasks.
    drop(debouncer);
    if let Some(mut r) = running {
        eprintln!("watch: stopping the run in flight");
        r.cancel.cancel();
        loop {
            tokio::select! {
                _ = r.run.as_mut() => break,
                _ = sigint.recv() => r.kill.cancel(),
                _ = sigterm.recv() => r.kill.cancel(),
            }
        }
    }
    eprintln!("watch: stopped");
    Ok(())
}

/// Loads and validates the pipeline, printing its errors (`None`) when it cannot be run.
fn load(path: &Path) -> Option<Arc<ValidGraph>> {
    let result = load_pipeline(path).and_then(|l| validate_graph(&l.graph));
    match result {
        Ok(v) => Some(Arc::new(v)),
        Err(e) => {
            e.print();
            eprintln!("watch: the pipeline does not load; waiting for it to change");
            None
        }
    }
}

/// Starts a run of the tasks `pending` affects (and what they depend on), emptying
/// `pending`; `None` when there is nothing to run.
fn start(
    root: &Path,
    opts: &RunOptions,
    graph: Option<&Arc<ValidGraph>>,
    pending: &mut BTreeSet<String>,
) -> Option<Running> {
    if pending.is_empty() {
        return None;
    }
    // Without a pipeline the changes wait: fixing it reloads and runs them.
    let graph = graph?;
    let paths = std::mem::take(pending);
    let list: Vec<String> = paths.iter().cloned().collect();
    let found = match affected(graph, root, &list) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("watch: error: {}", sykli_runtime::error_chain(&e));
            return None;
        }
    };
    if found.indices().is_empty() {
        eprintln!("watch: no task is affected");
        return None;
    }
    let mut tasks = vec![false; graph.len()];
    let names: Vec<&str> = found
        .indices()
        .into_iter()
        .map(|i| {
            tasks[i] = true;
            graph.task(i).name.as_str()
        })
        .collect();
    eprintln!("watch: running {}", names.join(", "));
    let builder = builder_for(root, opts)
        .signals(Signals::Noop)
        .affected(Some(found));
    // The project's target plugins, registered as `sykli run` registers them (loaded again
    // for each run: `sykli plugin load` while watching takes effect on the next change).
    #[cfg(feature = "plugins")]
    let builder = match super::plugin::with_local_plugins(builder, root) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("watch: error: {e}");
            return None;
        }
    };
    let config = build_config(builder);
    // The plan also runs what the affected tasks depend on.
    if let Ok(plan) = config.plan(graph, &config.registry()) {
        for (i, t) in tasks.iter_mut().enumerate() {
            *t |= plan.selected(i);
        }
    }
    let cancel = config.cancel.clone();
    let kill = config.kill.clone();
    let g = graph.clone();
    let ui = Ui::Terminal {
        verbose: opts.verbose,
    };
    Some(Running {
        run: Box::pin(async move { execute(&g, config, ui, Vec::new()).await }),
        cancel,
        kill,
        tasks,
        paths,
    })
}

/// The changed paths that count, relative to `root`: inside it, not ignored, not in `.git/`,
/// `.sykli/` or a cache directory.
fn relevant(root: &Path, ignores: &Ignores, paths: &[PathBuf]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in paths {
        let Ok(rel) = p.strip_prefix(root) else {
            continue;
        };
        let Some(rel) = rel.to_str() else {
            eprintln!("watch: warning: ignoring non-UTF-8 path {}", p.display());
            continue;
        };
        if rel.is_empty() || in_cache_dir(root, rel) {
            continue;
        }
        let is_dir = p.is_dir();
        match ignores.is_ignored(rel, is_dir) {
            Ok(true) => {}
            Ok(false) if is_dir => {}
            Ok(false) => {
                out.insert(rel.to_owned());
            }
            Err(e) => eprintln!("watch: warning: {}", sykli_runtime::error_chain(&e)),
        }
    }
    out
}

/// Whether a parent directory of `rel` holds a `CACHEDIR.TAG` (cargo's `target/`, other
/// tools' caches).
fn in_cache_dir(root: &Path, rel: &str) -> bool {
    let mut dir = root.to_path_buf();
    let comps: Vec<&str> = rel.split('/').collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        dir.push(c);
        if dir.join("CACHEDIR.TAG").is_file() {
            return true;
        }
    }
    false
}

fn signal_error(e: std::io::Error) -> CliError {
    CliError::failed(
        "watch_failed",
        anyhow::Error::new(e).context("failed to install the signal handlers"),
    )
}
