//! `sykli config push ADDR FILE` and `sykli config show ADDR`: the hot configuration of a
//! running `sykli worker` or `sykli serve` (concurrency, labels, `[targets.NAME]` settings,
//! plugin grants; docs/plugins.md), validated by the server whole and applied at once, no task
//! interrupted; serve hands it on to every worker of its pool, and to those that join later.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::error::CliError;
use super::print_out;
use crate::report::Envelope;

/// Arguments of `sykli config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// The `sykli config` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE and apply it to the running server at ADDR.
    Push(PushArgs),
    /// Print the configuration the server at ADDR applies now.
    Show(ShowArgs),
}

/// Arguments of `sykli config push`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The server (grpc://HOST:PORT or grpcs://HOST:PORT).
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// The configuration (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Send this bearer token (else SYKLI_TOKEN when set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Arguments of `sykli config show`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The server (grpc://HOST:PORT or grpcs://HOST:PORT).
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// Send this bearer token (else SYKLI_TOKEN when set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Runs `sykli config ...`.
pub fn config(args: &ConfigArgs, json: bool) -> Result<(), CliError> {
    match &args.command {
        ConfigCommand::Push(a) => {
            let text = std::fs::read_to_string(&a.file).map_err(|e| {
                CliError::usage(
                    "usage",
                    anyhow::anyhow!("reading the config {}: {e}", a.file.display()),
                )
            })?;
            // Checked here too, so a bad file is named before anything is sent.
            sykli_runtime::plugin::config::ServerConfig::parse(&text).map_err(|e| {
                CliError::failed(
                    "config_failed",
                    anyhow::anyhow!("{}: {e}", a.file.display()),
                )
                .with_details(e.problems.clone())
            })?;
            let applied =
                super::plugin::admin_call(&a.addr, a.token_file.as_deref(), |mut c| async move {
                    c.push_config(&text).await
                })?;
            show(&a.addr, &applied, "applied", json);
            Ok(())
        }
        ConfigCommand::Show(a) => {
            let current =
                super::plugin::admin_call(&a.addr, a.token_file.as_deref(), |mut c| async move {
                    c.show_config().await
                })?;
            show(&a.addr, &current, "current", json);
            Ok(())
        }
    }
}

fn show(addr: &str, toml_text: &str, what: &str, json: bool) {
    if json {
        let parsed = sykli_runtime::plugin::config::ServerConfig::parse(toml_text).ok();
        let env = Envelope::success(serde_json::json!({
            "server": addr,
            "config": parsed,
            "toml": toml_text,
        }));
        print_out(&env.to_line());
    } else {
        print_out(&format!("# {what} configuration of {addr}\n{toml_text}"));
    }
}
