//! `sykli init [--rust|--go|--ts] [DIR]`: scaffold a starter pipeline (see [`crate::init`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::error::CliError;
use super::print_out;
use crate::init::{InitError, Language, SdkSources, scaffold};
use crate::report::Envelope;

/// Arguments of `sykli init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// A Rust pipeline: sykli.rs and a Cargo [[bin]] (the default).
    #[arg(long, conflicts_with_all = ["go", "ts"])]
    pub rust: bool,
    /// A Go pipeline: sykli.go (and go.mod when there is none).
    #[arg(long, conflicts_with = "ts")]
    pub go: bool,
    /// A TypeScript pipeline: sykli.ts.
    #[arg(long)]
    pub ts: bool,
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Runs `sykli init`: exit 0 with the files written, 2 when a pipeline already exists
/// (`pipeline_exists`), 1 when a file could not be written (`write_failed`).
pub fn init_command(args: &InitArgs, json: bool) -> ExitCode {
    let lang = if args.go {
        Language::Go
    } else if args.ts {
        Language::TypeScript
    } else {
        Language::Rust
    };
    let done = match scaffold(&args.dir, lang, &SdkSources::from_env()) {
        Ok(done) => done,
        Err(e @ InitError::Exists(_)) => return CliError::usage("pipeline_exists", e).report(json),
        Err(e) => return CliError::failed("write_failed", e).report(json),
    };
    let run = format!("sykli run {}", args.dir.display());
    if json {
        let data = serde_json::json!({
            "written": done.written,
            "next_steps": done.next_steps,
            "run": run,
        });
        print_out(&Envelope::success(data).to_line());
        return ExitCode::SUCCESS;
    }
    let mut out = String::new();
    for f in &done.written {
        out.push_str(&format!("created {}\n", f.display()));
    }
    for step in &done.next_steps {
        out.push_str(&format!("next: {step}\n"));
    }
    out.push_str(&format!("then: {run}\n"));
    print_out(&out);
    ExitCode::SUCCESS
}
