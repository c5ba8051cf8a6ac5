//! The program entry behind `sykli::main!()`: the pipeline made of every `#[sykli::task]`.
//!
//! Arguments:
//! - `--sykli-exec <task>` runs one native task by itself, in this process, and exits with
//!   its result (0 ok, 1 the task failed, 2 no such native task). This is what other engines
//!   and remote workers run: a native task's `command` in the JSON graph is
//!   [`native_command`].
//! - `--emit` prints the graph as JSON.
//! - otherwise the pipeline runs in-process.

use std::collections::BTreeMap;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::tasks::{self, DeclaredTasks, NativeTaskFn, TaskCtx};

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
/// project directory. Without a binary name (cargo examples, tests) it is the absolute path
/// of the running executable instead.
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

/// What the process arguments ask for.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Exec(String),
    Emit,
    Run,
}

fn mode(args: &[String]) -> Result<Mode, String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--sykli-exec" {
            return match iter.next() {
                Some(task) if !task.is_empty() => Ok(Mode::Exec(task.clone())),
                _ => Err("`--sykli-exec` needs a task name".to_string()),
            };
        }
        if let Some(task) = arg.strip_prefix("--sykli-exec=") {
            if task.is_empty() {
                return Err("`--sykli-exec` needs a task name".to_string());
            }
            return Ok(Mode::Exec(task.to_string()));
        }
    }
    if args.iter().any(|a| a == "--emit") {
        Ok(Mode::Emit)
    } else {
        Ok(Mode::Run)
    }
}

/// Runs the program for `sykli::main!`: see the module docs.
pub fn main_entry(bin: BinInfo) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match mode(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let declared = match tasks::declared_tasks(|name| native_command(&bin, name)) {
        Ok(d) => d,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(if mode == Mode::Emit { 1 } else { 2 });
        }
    };
    match mode {
        Mode::Exec(task) => exec_native(&declared, &task),
        Mode::Emit => emit(declared),
        Mode::Run => {
            eprintln!("error: in-process runs of macro pipelines need the runtime; use --emit");
            ExitCode::from(2)
        }
    }
}

fn emit(declared: DeclaredTasks) -> ExitCode {
    let mut graph = sykli_runtime::graph::Graph::new();
    graph.tasks = declared.tasks;
    graph.normalize_version();
    if let Err(errors) = sykli_runtime::graph::validate(&graph) {
        eprintln!("{errors}");
        return ExitCode::from(1);
    }
    print!("{}", graph.to_json_pretty());
    ExitCode::SUCCESS
}

/// Runs one native task in this process: `--sykli-exec <task>`.
fn exec_native(declared: &DeclaredTasks, task: &str) -> ExitCode {
    let Some(f) = declared.natives.get(task).copied() else {
        let known: Vec<&str> = declared.natives.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        eprintln!("error: no native task named \"{task}\" in this binary (native tasks: {known})");
        return ExitCode::from(2);
    };
    match run_native_standalone(task, f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// Calls one native task with a context built from this process (its working directory and
/// environment), cancelled on Ctrl-C / SIGTERM.
fn run_native_standalone(task: &str, f: NativeTaskFn) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("failed to start the async runtime: {e}"))?;
    let workdir = std::env::current_dir()
        .map_err(|e| format!("failed to read the working directory: {e}"))?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cancel = CancellationToken::new();
    let ctx = TaskCtx::new(task, workdir, env, cancel.clone());
    rt.block_on(async {
        let watcher = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            }
        });
        let result = f(&ctx).await;
        watcher.abort();
        result.map_err(|e| {
            let mut message = format!("task \"{task}\" failed: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            message
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn modes_from_arguments() {
        assert_eq!(mode(&args(&[])), Ok(Mode::Run));
        assert_eq!(mode(&args(&["--emit"])), Ok(Mode::Emit));
        assert_eq!(
            mode(&args(&["--sykli-exec", "lint"])),
            Ok(Mode::Exec("lint".into()))
        );
        assert_eq!(
            mode(&args(&["--sykli-exec=a-b"])),
            Ok(Mode::Exec("a-b".into()))
        );
        assert!(mode(&args(&["--sykli-exec"])).is_err());
        assert!(mode(&args(&["--sykli-exec="])).is_err());
    }

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
}
