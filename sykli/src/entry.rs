//! The program entry behind [`sykli::main!`](crate::main): the pipeline made of every
//! `#[sykli::task]` in the crate, plus the tasks an optional function adds with the builder.
//!
//! Arguments:
//! - `--sykli-exec <task>` runs one native task by itself, in this process, and exits with
//!   its result (0 ok, 1 the task failed, 2 no such native task). This is what other engines
//!   and remote workers run: a native task's `command` in the JSON graph is
//!   [`native_command`].
//! - `--emit` validates and prints the graph as JSON (exit 1 listing every error).
//! - `worker ...` serves as a remote worker, exactly as `sykli worker ...` (feature `remote`).
//! - otherwise the pipeline runs in-process with the flags of `sykli run` (`--filter`,
//!   `--jobs`, `--keep-going`, `--timeout`, `--json`, `--no-cache`, `--verbose`), native tasks
//!   called directly.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sykli_runtime::exec::native::NativeExecutor;
use sykli_runtime::exec::process::ProcessExecutor;
use sykli_runtime::exec::{Action, ExecIo, ExecOutcome, ExecRequest, OutputSink, OutputStream};
use tokio_util::sync::CancellationToken;

use crate::cli::RunOptions;
use crate::pipeline::{EmitError, Pipeline};
use crate::tasks::{self, DeclaredTasks};

/// Identifies the pipeline binary, captured by `sykli::main!` at compile time.
#[derive(Debug, Clone, Copy)]
pub struct BinInfo {
    /// `CARGO_PKG_NAME` of the pipeline crate.
    pub package: &'static str,
    /// `CARGO_BIN_NAME` of the pipeline binary (absent for examples and tests).
    pub bin: Option<&'static str>,
}

/// The shell command other engines run for the native task `task`:
/// `cargo run --quiet -p <package> --bin <bin> -- --sykli-exec <task>`, run from the
/// project directory, so the graph stays valid wherever the project is checked out and
/// whatever the target directory. Without a binary name (cargo examples, tests) it is the
/// absolute path of the running executable instead.
pub fn native_command(bin: &BinInfo, task: &str) -> String {
    let program = match bin.bin {
        Some(b) => format!(
            "cargo run --quiet -p {} --bin {} --",
            shell_quote(bin.package),
            shell_quote(b)
        ),
        None => std::env::current_exe()
            .map(|p| shell_quote(&p.to_string_lossy()))
            .unwrap_or_else(|_| shell_quote(bin.package)),
    };
    format!("{program} --sykli-exec {}", shell_quote(task))
}

/// Quotes `s` for `/bin/sh` when it holds anything beyond `[A-Za-z0-9_./:=@+-]`.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@+-".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The arguments of a pipeline binary.
#[derive(Debug, Parser)]
#[command(about = "A sykli pipeline: runs in-process, or prints its task graph with --emit")]
struct PipelineArgs {
    /// Print the task graph as JSON and exit.
    #[arg(long)]
    emit: bool,
    /// Run one native task by itself and exit with its result (what other engines and remote
    /// workers call).
    #[arg(long, value_name = "TASK", conflicts_with = "emit")]
    sykli_exec: Option<String>,
    /// How to run.
    #[command(flatten)]
    run: RunOptions,
}

/// Runs the program for `sykli::main!`: see the module docs. `configure` adds builder tasks
/// after the declared ones.
pub fn main_entry(bin: BinInfo, configure: Option<fn(&mut Pipeline)>) -> ExitCode {
    // A re-executed sandbox init never gets past this line.
    sykli_runtime::exec::sandbox::run_init_if_requested();
    // `BINARY worker ...`: the pipeline binary serves as a remote worker, like `sykli worker`.
    #[cfg(feature = "remote")]
    if std::env::args_os().nth(1).is_some_and(|a| a == "worker") {
        return crate::cli::worker::worker_main_from(std::env::args_os().skip(1));
    }
    let args = PipelineArgs::parse();
    let declared = match tasks::declared_tasks(|name| native_command(&bin, name)) {
        Ok(d) => d,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(if args.emit { 1 } else { 2 });
        }
    };
    if let Some(task) = &args.sykli_exec {
        return exec_native(&declared, task);
    }
    let pipeline = pipeline_of(&declared, configure);
    if args.emit {
        return match pipeline.emit_to(&mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(EmitError::Invalid(errors)) => {
                eprintln!("{errors}");
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Err(errors) = pipeline.validate() {
        eprintln!("{errors}");
        return ExitCode::from(2);
    }
    let root = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: failed to read the working directory: {e}");
            return ExitCode::from(2);
        }
    };
    crate::cli::run::run_blocking(&pipeline.to_graph(), &root, &args.run, declared.registry())
}

/// The pipeline of the declared tasks, then what `configure` adds.
pub(crate) fn pipeline_of(
    declared: &DeclaredTasks,
    configure: Option<fn(&mut Pipeline)>,
) -> Pipeline {
    let mut pipeline = Pipeline::new();
    for task in &declared.tasks {
        pipeline.push(task.clone());
    }
    if let Some(configure) = configure {
        configure(&mut pipeline);
    }
    pipeline
}

/// Writes a task's output straight to this process's stdout and stderr.
struct Stdio;

impl OutputSink for Stdio {
    fn write(&self, stream: OutputStream, bytes: &[u8]) {
        // A closed stdout/stderr cannot be reported anywhere; the task's result still is.
        let _ = match stream {
            OutputStream::Stdout => std::io::stdout().lock().write_all(bytes),
            OutputStream::Stderr => std::io::stderr().lock().write_all(bytes),
        };
    }
}

/// Runs one native task in this process through the runtime's native executor:
/// `--sykli-exec <task>`. The task sees this process's environment and working directory.
fn exec_native(declared: &DeclaredTasks, task: &str) -> ExitCode {
    let registry = declared.registry();
    if registry.get(task).is_none() {
        let names = registry.names();
        let known = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        eprintln!("error: no native task named \"{task}\" in this binary (native tasks: {known})");
        return ExitCode::from(2);
    }
    let workdir = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: failed to read the working directory: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let req = ExecRequest {
        task: task.to_string(),
        action: Action::Native(task.to_string()),
        env: BTreeMap::new(),
        inherit_env: true,
        workdir,
        container: None,
        timeout: None,
        kill_grace: Duration::from_secs(5),
        run_id: format!("sykli-exec-{}", std::process::id()),
        background: None,
        sandbox: None,
    };
    let executor = NativeExecutor::new(registry, ProcessExecutor::default());
    let outcome = rt.block_on(async {
        let cancel = CancellationToken::new();
        let watcher = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            }
        });
        let io = ExecIo {
            attempt: 1,
            output: Arc::new(Stdio),
            cancel,
            operations: None,
        };
        let (outcome, _outputs) = executor.run(&req, io).await;
        watcher.abort();
        outcome
    });
    match outcome {
        ExecOutcome::Exited { code } => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        ExecOutcome::TimedOut => {
            eprintln!("error: task \"{task}\" timed out");
            ExitCode::from(1)
        }
        ExecOutcome::Cancelled => {
            eprintln!("error: task \"{task}\" was cancelled");
            ExitCode::from(130)
        }
        ExecOutcome::Errored { stage, message } => {
            eprintln!("error: task \"{task}\" could not run ({stage}): {message}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_command_uses_cargo_run_with_package_and_bin() {
        let bin = BinInfo {
            package: "ci",
            bin: Some("pipeline"),
        };
        assert_eq!(
            native_command(&bin, "unit-tests"),
            "cargo run --quiet -p ci --bin pipeline -- --sykli-exec unit-tests"
        );
        assert_eq!(
            native_command(&bin, "it's"),
            r"cargo run --quiet -p ci --bin pipeline -- --sykli-exec 'it'\''s'"
        );
    }

    #[test]
    fn arguments_accept_run_flags_and_reject_exec_with_emit() {
        let a = PipelineArgs::try_parse_from(["p", "--sykli-exec", "lint"]).unwrap();
        assert_eq!(a.sykli_exec.as_deref(), Some("lint"));
        let a = PipelineArgs::try_parse_from(["p", "--keep-going", "--filter", "x"]).unwrap();
        assert!(a.run.keep_going && !a.emit);
        assert_eq!(a.run.filter, ["x"]);
        assert!(PipelineArgs::try_parse_from(["p", "--emit", "--sykli-exec", "x"]).is_err());
        assert!(PipelineArgs::try_parse_from(["p", "--sykli-exec"]).is_err());
    }
}
