//! `sykli cache stats [--json] | clean [--older-than 7d] | path`: inspect and prune the local
//! content-addressed cache (`$SYKLI_CACHE_DIR`, else `$XDG_CACHE_HOME/sykli`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use sykli_runtime::cache::Store;

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
    Stats {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
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

/// Runs `sykli cache ...`.
pub fn cache_command(args: &CacheArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sykli: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &CacheArgs) -> Result<()> {
    match &args.command {
        CacheCommand::Path => {
            println!("{}", Store::default_root()?.display());
        }
        CacheCommand::Stats { json } => {
            let store = Store::open_default().context("failed to open the cache")?;
            let s = store.stats()?;
            if *json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                println!("location: {}", s.location.display());
                println!("entries:  {}", s.entries);
                println!("blobs:    {}", s.blobs);
                println!("size:     {}", human_bytes(s.total_bytes));
            }
        }
        CacheCommand::Clean { older_than } => {
            let store = Store::open_default().context("failed to open the cache")?;
            let r = store.clean(*older_than)?;
            println!(
                "removed {} entries and {} blobs, freed {}",
                r.entries_removed,
                r.blobs_removed,
                human_bytes(r.bytes_freed)
            );
        }
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
