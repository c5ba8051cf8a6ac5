//! `sykli validate [--json]`: load the pipeline, validate it, list every error.

use std::process::ExitCode;

use serde_json::{Value, json};
use sykli_runtime::graph::{ValidGraph, ValidationErrors, validate_owned};

use super::load::{LoadError, load_project};
use super::{EXIT_INVALID, ValidateArgs, envelope, print_out};

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

impl CheckError {
    /// The `--json` error code.
    pub fn code(&self) -> &'static str {
        match self {
            CheckError::Load(_) => "load_failed",
            CheckError::Invalid(_) => "invalid_pipeline",
        }
    }

    /// Prints the error to stderr: one `error: ...` line per problem.
    pub fn print(&self) {
        match self {
            CheckError::Load(e) => eprintln!("error: {e}"),
            CheckError::Invalid(errs) => eprintln!("{errs}"),
        }
    }

    /// The `--json` envelope.
    pub fn envelope(&self) -> String {
        match self {
            CheckError::Load(e) => envelope(false, Value::Null, Some((self.code(), e.to_string()))),
            CheckError::Invalid(errs) => {
                let list: Vec<Value> = errs
                    .errors()
                    .iter()
                    .map(
                        |e| json!({"code": e.code(), "message": e.to_string(), "tasks": e.tasks()}),
                    )
                    .collect();
                let message = format!(
                    "the pipeline has {} error{}",
                    errs.len(),
                    if errs.len() == 1 { "" } else { "s" }
                );
                envelope(
                    false,
                    json!({ "errors": list }),
                    Some((self.code(), message)),
                )
            }
        }
    }
}

/// Loads and validates the pipeline at `path`.
pub fn check(path: &std::path::Path) -> Result<ValidGraph, CheckError> {
    let loaded = load_project(path)?;
    validate_owned(loaded.graph).map_err(CheckError::Invalid)
}

/// Runs `sykli validate`.
pub fn validate_command(args: &ValidateArgs) -> ExitCode {
    match check(&args.pipeline.path) {
        Ok(v) => {
            let warnings: Vec<String> = v.warnings().iter().map(ToString::to_string).collect();
            if args.json {
                let data = json!({
                    "tasks": v.len(),
                    "warnings": warnings,
                });
                print_out(&format!("{}\n", envelope(true, data, None)));
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
        Err(e) => {
            if args.json {
                print_out(&format!("{}\n", e.envelope()));
            } else {
                e.print();
            }
            ExitCode::from(EXIT_INVALID)
        }
    }
}
