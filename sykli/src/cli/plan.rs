//! `sykli plan --from REF`: the files changed since a git ref and the tasks they affect, each
//! with its reason ([`sykli_runtime::plan::affected`]). `sykli run --affected` and
//! `sykli explain --affected` restrict the run's plan to the same tasks.

use serde::Serialize;
use sykli_runtime::graph::ValidGraph;
use sykli_runtime::plan::{Affected, AffectedError, affected, changed_since};

use super::PlanArgs;
use super::error::CliError;
use super::print_out;
use super::run::{load_pipeline, validate_graph};
use crate::report::Envelope;

/// `data` of `sykli plan --json`.
#[derive(Debug, Serialize)]
struct PlanData {
    /// The git ref compared against, as given.
    from: String,
    /// The changed files, relative to the project, sorted.
    changed: Vec<String>,
    /// The affected tasks, in definition order.
    affected: Vec<AffectedTask>,
    /// Number of tasks in the pipeline.
    tasks: usize,
}

/// One affected task.
#[derive(Debug, Serialize)]
struct AffectedTask {
    name: String,
    reason: String,
}

/// Runs `sykli plan`.
pub fn plan(args: &PlanArgs, json: bool) -> Result<(), CliError> {
    let loaded = load_pipeline(&args.pipeline.path)?;
    let valid = validate_graph(&loaded.graph)?;
    let (changed, found) = affected_since(&valid, &loaded.project_root, &args.from)?;
    let data = PlanData {
        from: args.from.clone(),
        changed,
        affected: found
            .indices()
            .into_iter()
            .map(|i| AffectedTask {
                name: valid.task(i).name.clone(),
                reason: found
                    .reason(i)
                    .map(|r| r.describe(&valid))
                    .unwrap_or_default(),
            })
            .collect(),
        tasks: valid.len(),
    };
    if json {
        print_out(&Envelope::success(data).to_line());
        return Ok(());
    }
    let mut s = format!(
        "{} file{} changed since {}\n",
        data.changed.len(),
        if data.changed.len() == 1 { "" } else { "s" },
        data.from
    );
    for f in &data.changed {
        s.push_str(&format!("  {f}\n"));
    }
    for t in &data.affected {
        s.push_str(&format!("{}: {}\n", t.name, t.reason));
    }
    s.push_str(&format!(
        "{} of {} tasks affected\n",
        data.affected.len(),
        data.tasks
    ));
    print_out(&s);
    Ok(())
}

/// The files changed since `reference` under `root` and the tasks of `graph` they affect.
pub(crate) fn affected_since(
    graph: &ValidGraph,
    root: &std::path::Path,
    reference: &str,
) -> Result<(Vec<String>, Affected), CliError> {
    let changed = changed_since(root, reference).map_err(affected_error)?;
    let found = affected(graph, root, &changed).map_err(affected_error)?;
    Ok((changed, found))
}

/// The CLI error (and `--json` code) of an [`AffectedError`].
pub(crate) fn affected_error(e: AffectedError) -> CliError {
    match e {
        e @ AffectedError::BadRef { .. } => CliError::usage("unknown_ref", e),
        e @ AffectedError::NotARepository { .. } => CliError::usage("not_a_repository", e),
        e @ AffectedError::Inputs(_) => CliError::usage("invalid_inputs", e),
        e @ (AffectedError::GitMissing { .. } | AffectedError::Git { .. }) => {
            CliError::failed("git_failed", e)
        }
    }
}
