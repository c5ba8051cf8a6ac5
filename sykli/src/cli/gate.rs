//! `sykli gate approve|reject RUN TASK`: decides a gate of a run from any process. The
//! decision is written durably into the run's directory (`.sykli/runs/<run>/gates/`); a
//! live run picks it up within a poll, a parked one when it is resumed.

use clap::{Args, Subcommand};
use sykli_runtime::state::{self, journal};

use super::error::CliError;
use super::{ProjectArgs, print_out};
use crate::report::Envelope;

/// Arguments of `sykli gate`.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: GateAction,
}

/// `approve` or `reject`.
#[derive(Debug, Clone, Subcommand)]
pub enum GateAction {
    /// Approve the gate: its task passes.
    Approve(GateTarget),
    /// Reject the gate: its task fails, and what depends on it is blocked.
    Reject(GateTarget),
}

/// Which gate.
#[derive(Debug, Clone, Args)]
pub struct GateTarget {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The run: its id, a unique prefix, or `last`.
    pub run: String,
    /// The gate task.
    pub task: String,
}

/// Runs `sykli gate approve|reject`.
pub fn gate(args: &GateArgs, json: bool) -> Result<(), CliError> {
    let (target, approved) = match &args.action {
        GateAction::Approve(t) => (t, true),
        GateAction::Reject(t) => (t, false),
    };
    let state_dir = target.project.project.join(".sykli");
    let run = state::find_run(&state_dir, &target.run)?.run_id;
    let path = journal::decide_gate(&state_dir, &run, &target.task, approved)?;
    let verb = if approved { "approved" } else { "rejected" };
    if json {
        let data = serde_json::json!({
            "run_id": run,
            "task": target.task,
            "approved": approved,
            "decision": path,
        });
        print_out(&Envelope::success(data).to_line());
    } else {
        print_out(&format!(
            "{verb} gate `{}` of run {run}; a parked run continues with `sykli run --resume {run}`\n",
            target.task
        ));
    }
    Ok(())
}
