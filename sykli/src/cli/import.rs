//! `sykli import FILE --to rust|go|ts`: a GitHub Actions or Loom workflow as a pipeline ([`crate::import`]).
//! The pipeline is printed on stdout; what was not translated is listed on stderr (and in
//! the pipeline's comments).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::error::CliError;
use super::print_out;
use crate::import::{Target, generate, translate_file};
use crate::report::Envelope;

/// The SDK to generate for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum To {
    /// sykli.rs (the Rust builder; build it in a cargo project with the `sykli` crate).
    Rust,
    /// sykli.go.
    Go,
    /// sykli.ts.
    Ts,
}

/// Arguments of `sykli import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The GitHub Actions workflow file (`.github/workflows/ci.yml`), or a Loom workflow
    /// (a name ending in `.loom.yml` or `.loom.yaml`).
    pub file: PathBuf,
    /// The SDK of the generated pipeline.
    #[arg(long = "to", value_enum)]
    pub to: To,
}

/// Runs `sykli import`.
pub fn import(args: &ImportArgs, json: bool) -> Result<(), CliError> {
    let failed = |e: anyhow::Error| CliError::usage("import_failed", e);
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        failed(anyhow::Error::new(e).context(format!("failed to read {}", args.file.display())))
    })?;
    let context = || format!("failed to import {}", args.file.display());
    let imported = translate_file(&args.file, &text)
        .map_err(|e| failed(anyhow::Error::new(e).context(context())))?;
    let target = match args.to {
        To::Rust => Target::Rust,
        To::Go => Target::Go,
        To::Ts => Target::TypeScript,
    };
    let source = args.file.display().to_string();
    // As `sykli init`: `SYKLI_TS_SDK` points a TypeScript pipeline at a local SDK checkout.
    let ts_import = match crate::init::SdkSources::from_env().ts {
        Some(sdk) => sdk.join("src").join("index.ts").display().to_string(),
        None => "@sykli/sdk".to_owned(),
    };
    let code = generate(&imported, &source, target, &ts_import)
        .map_err(|e| failed(anyhow::Error::new(e).context(context())))?;
    for n in &imported.untranslated {
        eprintln!("warning: not translated: {n}");
    }
    if json {
        print_out(
            &Envelope::success(serde_json::json!({
                "source": code,
                "untranslated": imported.untranslated,
            }))
            .to_line(),
        );
    } else {
        print_out(&code);
    }
    Ok(())
}
