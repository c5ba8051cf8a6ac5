//! Helpers shared by the benchmarks (each benchmark is a binary under `src/bin/` that prints
//! its figures; none is a timed test).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The `sykli` binary to measure: `$SYKLI_BIN`, else the one built next to this benchmark
/// (`cargo build --release -p sykli`).
pub fn sykli_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SYKLI_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("failed to locate this benchmark's executable")?;
    let p = exe
        .parent()
        .map(|d| d.join("sykli"))
        .context("benchmark executable has no parent directory")?;
    if !p.is_file() {
        bail!(
            "no sykli binary at {}: build it (`cargo build --release -p sykli`) or set SYKLI_BIN",
            p.display()
        );
    }
    Ok(p)
}
