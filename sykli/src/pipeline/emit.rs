//! `--emit`: validating the pipeline and printing its JSON.

use std::fmt;
use std::io::Write;

use sykli_runtime::graph::ValidationErrors;

use super::pipeline::Pipeline;

/// Why [`Pipeline::emit`] failed.
#[derive(thiserror::Error)]
pub enum EmitError {
    /// The pipeline is invalid; every error is listed.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// Writing the JSON failed.
    #[error("failed to write the task graph: {0}")]
    Io(#[source] std::io::Error),
}

/// Readable when `main` returns it: every error on its own line.
impl fmt::Debug for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Invalid(e) => fmt::Debug::fmt(e, f),
            EmitError::Io(e) => write!(f, "failed to write the task graph: {e}"),
        }
    }
}

impl Pipeline {
    /// When the process was started with `--emit`: validates the pipeline and prints its JSON
    /// on stdout. On validation errors nothing is printed on stdout and every error is
    /// returned, so `fn main() -> Result<(), EmitError>` exits non-zero listing them.
    /// Without `--emit` it does nothing (running in-process is up to the caller).
    pub fn emit(&self) -> Result<(), EmitError> {
        if !std::env::args_os().skip(1).any(|a| a == "--emit") {
            return Ok(());
        }
        self.emit_to(&mut std::io::stdout().lock())
    }

    /// Validates the pipeline and writes its JSON to `out`, whatever the arguments.
    pub fn emit_to(&self, out: &mut dyn Write) -> Result<(), EmitError> {
        self.validate().map_err(EmitError::Invalid)?;
        out.write_all(self.to_json().as_bytes())
            .and_then(|()| out.flush())
            .map_err(EmitError::Io)
    }

    /// [`Pipeline::emit`], then on error prints every error (one per line, prefixed
    /// `error: `) on stderr and exits with status 1.
    pub fn emit_or_exit(&self) {
        if let Err(e) = self.emit() {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
