//! `sykli validate [--json]`: load the pipeline, validate it, list every error.
//!
//! With `--json` an invalid pipeline is still `ok: true` (validating worked): `data.valid` is
//! false and `data.errors` lists every error; the exit code stays 2. A pipeline that cannot be
//! loaded is `ok: false` (`not_found` or `load_failed`).

use std::process::ExitCode;

use serde_json::{Value, json};
use sykli_runtime::graph::{ValidGraph, ValidationErrors, validate_owned};

use super::error::CliError;
use super::load::{LoadError, load_project};
use super::{EXIT_INVALID, ValidateArgs, print_out};
use crate::report::Envelope;

/// What went wrong in a command that loads and validates the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The pipeline could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The pipeline is invalid.
    #[error("{0}")]
    Invalid(ValidationErrors),
}

impl From<CheckError> for CliError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Load(e) => load_error(e),
            CheckError::Invalid(errs) => invalid_pipeline(&errs),
        }
    }
}

/// The `--json` code of a load error: `not_found` when there is no pipeline at the path,
/// `load_failed` when there is one that could not be turned into a graph.
pub fn load_code(e: &LoadError) -> &'static str {
    match e {
        LoadError::NotFound { .. } | LoadError::Missing { .. } => "not_found",
        _ => "load_failed",
    }
}

/// A pipeline that could not be loaded, as a CLI error (exit 2).
pub fn load_error(e: LoadError) -> CliError {
    CliError::usage(load_code(&e), e)
}

/// Every validation error as `[{"code", "message", "tasks"}]`.
pub fn errors_json(errs: &ValidationErrors) -> Value {
    errs.errors()
        .iter()
        .map(|e| json!({"code": e.code(), "message": e.to_string(), "tasks": e.tasks()}))
        .collect()
}

/// An invalid pipeline as the error of a command that needs a valid one (exit 2): every error
/// on its own line, and `{"valid": false, "errors": [...]}` as the envelope's data.
pub fn invalid_pipeline(errs: &ValidationErrors) -> CliError {
    let n = errs.len();
    let details = errs.errors().iter().map(|e| e.to_string()).collect();
    CliError::usage(
        "invalid_pipeline",
        anyhow::anyhow!(
            "invalid pipeline: {n} error{}",
            if n == 1 { "" } else { "s" }
        ),
    )
    .with_details(details)
    .with_data(json!({ "valid": false, "errors": errors_json(errs) }))
}

/// Loads and validates the pipeline at `path`.
pub fn check(path: &std::path::Path) -> Result<ValidGraph, CheckError> {
    let loaded = load_project(path)?;
    validate_owned(loaded.graph).map_err(CheckError::Invalid)
}

/// Runs `sykli validate`.
pub fn validate_command(args: &ValidateArgs, json: bool) -> ExitCode {
    match check(&args.pipeline.path) {
        Ok(v) => {
            let warnings: Vec<String> = v.warnings().iter().map(ToString::to_string).collect();
            if json {
                let data = json!({
                    "valid": true,
                    "tasks": v.len(),
                    "warnings": warnings,
                    "errors": [],
                });
                print_out(&Envelope::success(data).to_line());
            } else {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                print_out(&format!(
                    "ok: the pipeline is valid ({} task{})\n",
                    v.len(),
                    if v.len() == 1 { "" } else { "s" }
                ));
            }
            ExitCode::SUCCESS
        }
        Err(CheckError::Invalid(errs)) => {
            if json {
                let data = json!({
                    "valid": false,
                    "warnings": [],
                    "errors": errors_json(&errs),
                });
                print_out(&Envelope::success(data).to_line());
            } else {
                eprintln!("{errs}");
            }
            ExitCode::from(EXIT_INVALID)
        }
        Err(CheckError::Load(e)) => load_error(e).report(json),
    }
}
