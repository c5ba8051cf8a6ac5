//! `sykli cache stats | clean [--older-than 7d] | path` (each with `--json`): inspect and prune the local
//! content-addressed cache (`$SYKLI_CACHE_DIR`, else `$XDG_CACHE_HOME/sykli`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use sykli_runtime::cache::Store;

use super::error::CliError;
use super::print_out;
use crate::report::{Envelope, to_data};

/// Arguments of `sykli cache`.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// The `sykli cache` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum CacheCommand {
    /// Location, entries, blobs and total size.
    Stats,
    /// Remove every entry, or those not used for a while.
    Clean {
        /// Remove only entries unused for this long, e.g. `7d`, `12h`.
        #[arg(long, value_parser = parse_duration)]
        older_than: Option<Duration>,
    },
    /// Print the cache directory.
    Path,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration \"{s}\": {e}"))
}

/// Runs `sykli cache ...`: exit 0, or 1 with `cache_failed` when the cache cannot be
/// opened or read.
pub fn cache_command(args: &CacheArgs, json: bool) -> ExitCode {
    match run(args, json) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => CliError::failed("cache_failed", e).report(json),
    }
}

fn run(args: &CacheArgs, json: bool) -> Result<()> {
    let (data, text) = match &args.command {
        CacheCommand::Path => {
            let root = Store::default_root()?;
            let text = format!("{}\n", root.display());
            (serde_json::json!({ "path": root }), text)
        }
        CacheCommand::Stats => {
            let store = Store::open_default().context("failed to open the cache")?;
            let s = store.stats()?;
            let text = format!(
                "location: {}\nentries:  {}\nblobs:    {}\nsize:     {}\n",
                s.location.display(),
                s.entries,
                s.blobs,
                human_bytes(s.total_bytes)
            );
            (to_data(&s), text)
        }
        CacheCommand::Clean { older_than } => {
            let store = Store::open_default().context("failed to open the cache")?;
            let r = store.clean(*older_than)?;
            let text = format!(
                "removed {} entries and {} blobs, freed {}\n",
                r.entries_removed,
                r.blobs_removed,
                human_bytes(r.bytes_freed)
            );
            (to_data(&r), text)
        }
    };
    if json {
        print_out(&Envelope::success(data).to_line());
    } else {
        print_out(&text);
    }
    Ok(())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
