//! The one CLI-level error type and its exit codes.

use std::fmt;
use std::process::ExitCode;

use crate::report::Envelope;

/// Exit code: nothing failed or errored.
pub const EXIT_OK: u8 = 0;
/// Exit code: a task failed or errored, the run was interrupted, or a command failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or an invalid pipeline.
pub const EXIT_USAGE: u8 = 2;

/// A command that could not do its job: what to print and which exit code to use.
#[derive(Debug)]
pub struct CliError {
    /// A stable snake_case code for `--json`, one of [`crate::report::ERROR_CODES`]
    /// (`invalid_pipeline`, `unknown_run`, ...).
    pub code: &'static str,
    /// The exit code (1 or 2).
    pub exit: u8,
    /// The error with its causes.
    pub error: anyhow::Error,
    /// Extra lines printed after the message (e.g. every validation error).
    pub details: Vec<String>,
    /// `data` of the `--json` envelope (null when there is none; the details otherwise).
    pub data: serde_json::Value,
}

impl CliError {
    /// Bad usage or an invalid pipeline: exit 2.
    pub fn usage(code: &'static str, error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code,
            exit: EXIT_USAGE,
            error: error.into(),
            details: Vec::new(),
            data: serde_json::Value::Null,
        }
    }

    /// The command failed: exit 1.
    pub fn failed(code: &'static str, error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code,
            exit: EXIT_FAILED,
            error: error.into(),
            details: Vec::new(),
            data: serde_json::Value::Null,
        }
    }

    /// A tokio runtime (multi-threaded for servers, current-thread for one-shot clients), or
    /// the `internal` error saying it could not start.
    pub fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, CliError> {
        let mut builder = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        builder.enable_all().build().map_err(|e| {
            CliError::failed(
                "internal",
                anyhow::anyhow!(e).context("failed to start the async runtime"),
            )
        })
    }

    /// Adds lines printed under the message.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// Sets `data` of the `--json` envelope.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    /// The message with its chain of causes, on one line (a cause the message already
    /// holds is not repeated).
    pub fn message(&self) -> String {
        sykli_runtime::error_chain(self.error.as_ref())
    }

    /// Prints the error to stderr (`error: ...` then the details).
    pub fn print(&self) {
        eprintln!("error: {}", self.message());
        for d in &self.details {
            eprintln!("  {d}");
        }
    }

    /// The `--json` envelope for this error.
    pub fn envelope(&self) -> Envelope {
        let data = if !self.data.is_null() || self.details.is_empty() {
            self.data.clone()
        } else {
            serde_json::json!({ "details": self.details })
        };
        Envelope::failure(self.code, self.message(), data)
    }

    /// Prints the error as `--json` asks (envelope on stdout) or as text (stderr), and returns
    /// its exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        if json {
            crate::cli::print_out(&self.envelope().to_line());
        } else {
            self.print();
        }
        ExitCode::from(self.exit)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl From<sykli_runtime::state::StateError> for CliError {
    /// `.sykli/` that cannot be read is `state_unreadable` (exit 1), a task without a log
    /// `no_log` (exit 1); asking for a run or task that does not exist is bad usage (exit 2:
    /// `no_runs`, `unknown_run`, `unknown_task`).
    fn from(e: sykli_runtime::state::StateError) -> Self {
        use sykli_runtime::state::StateError;
        match e {
            e @ (StateError::Io { .. } | StateError::Parse { .. }) => {
                CliError::failed("state_unreadable", e)
            }
            e @ StateError::NoLog { .. } => CliError::failed("no_log", e),
            e @ StateError::NoRuns { .. } => CliError::usage("no_runs", e),
            e @ StateError::UnknownRun { .. } => CliError::usage("unknown_run", e),
            e @ StateError::UnknownTask { .. } => CliError::usage("unknown_task", e),
            e @ StateError::JournalFormat { .. } => CliError::failed("journal_format", e),
            e @ StateError::JournalCorrupt { .. } => CliError::failed("state_unreadable", e),
            e @ (StateError::NotResumable { .. } | StateError::NothingToResume { .. }) => {
                CliError::usage("not_resumable", e)
            }
            e @ StateError::Gate { .. } => CliError::usage("gate_failed", e),
        }
    }
}
