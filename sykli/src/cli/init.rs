//! `sykli init [--rust|--go|--ts] [DIR]`: scaffold a starter pipeline (see [`crate::init`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::init::{Language, SdkSources, scaffold};

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

/// Runs `sykli init`: exit 0 with the files written, 2 when a pipeline already exists.
pub fn init_command(args: &InitArgs) -> ExitCode {
    let lang = if args.go {
        Language::Go
    } else if args.ts {
        Language::TypeScript
    } else {
        Language::Rust
    };
    match scaffold(&args.dir, lang, &SdkSources::from_env()) {
        Ok(done) => {
            for f in &done.written {
                println!("created {}", f.display());
            }
            for step in &done.next_steps {
                println!("next: {step}");
            }
            println!("then: sykli run {}", args.dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
