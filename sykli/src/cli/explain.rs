//! `sykli explain [TASK]`: what a run would do and why, without running anything.
//!
//! It prints the run's [plan](sykli_runtime::plan) (the same one `sykli run` carries out,
//! made by the same builder and [`RunConfig::plan`](sykli_runtime::RunConfig::plan)) with
//! the cache keys filled in; it decides nothing itself.

use sykli_runtime::plan::{self, PlanError, PlanReport};

use super::error::CliError;
use super::run::{builder_for, load_pipeline, validate_graph, with_affected, with_remote};
use super::{ExplainArgs, RunOptions, print_out};
use crate::report::Envelope;

/// Runs `sykli explain`.
pub fn explain(args: &ExplainArgs, json: bool) -> Result<(), CliError> {
    let loaded = load_pipeline(&args.path)?;
    let valid = validate_graph(&loaded.graph)?;
    let mut filter = args.filter.clone();
    filter.extend(args.task.iter().cloned());
    let opts = RunOptions {
        filter,
        affected: args.affected.clone(),
        ..RunOptions::default()
    };
    // The remote executor and cache as `sykli run` would have them (environment and
    // sykli.toml): placement and the keys' digest function depend on them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::failed(
                "internal",
                anyhow::Error::new(e).context("failed to start the async runtime"),
            )
        })?;
    let builder = with_affected(
        builder_for(&loaded.project_root, &opts).history(false),
        &valid,
        &loaded.project_root,
        &opts,
    )?;
    let builder = rt.block_on(with_remote(builder, &loaded.project_root, &opts))?;
    let built = builder.build();
    for w in &built.warnings {
        eprintln!("warning: {w}");
    }
    let config = built.config;
    let mut planned = config
        .plan(&valid, &config.registry())
        .map_err(|e| match e {
            PlanError::UnknownFilter { .. } => {
                let names: Vec<&str> = valid
                    .graph()
                    .tasks
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect();
                CliError::usage(
                    "unknown_filter",
                    anyhow::anyhow!("{e}; tasks: {}", names.join(", ")),
                )
            }
        })?;
    if let Some(local) = &built.local_cache {
        plan::cache::decide(
            &mut planned,
            &valid,
            local.cache(),
            None,
            &config.registry(),
        );
    }
    let report = PlanReport::new(&valid, &planned);
    if json {
        print_out(&Envelope::success(report).to_line());
        return Ok(());
    }
    print_out(&report.render());
    Ok(())
}
