//! What the CLI tests share: a temporary project holding a `sykli.json`, the real `sykli`
//! binary run in it, and its output as text.
#![allow(dead_code)] // each test binary uses its own subset

pub mod observer;
pub mod peers;
pub mod plugins;
pub mod runner_service;
pub mod runs;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// A temporary project whose `sykli.json` is `graph`.
pub fn project(graph: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sykli.json"),
        serde_json::to_string_pretty(&graph).unwrap(),
    )
    .unwrap();
    dir
}

/// The real `sykli` binary with `args`, in `dir`, outside CI, with a cache of the project's
/// own (so no other test's hits leak in).
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sykli"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CI")
        .env("SYKLI_CACHE_DIR", dir.join(".test-cache"));
    cmd
}

/// Runs [`command`] to its end.
pub fn sykli(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

/// Stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
pub mod pool;
pub mod worker;
