//! Build: a native task writing a build manifest, and the unit tests.

use sykli::TaskCtx;

use crate::checks::lint;

/// Writes `target/manifest.txt` listing the crate name and the profile from `PROFILE`.
#[sykli::task(
    name = "build-manifest",
    after = [lint],
    inputs = ["Cargo.toml", "src/**"],
    outputs = {"manifest": "target/manifest.txt"},
    env = {"PROFILE": "release"},
    retry = 1,
)]
pub async fn manifest(ctx: &TaskCtx) -> std::io::Result<()> {
    let profile = ctx.env("PROFILE").unwrap_or_else(|| "debug".to_string());
    let dir = ctx.workdir().join("target");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("manifest.txt"),
        format!("crate: multi-module\nprofile: {profile}\n"),
    )
}

/// Unit tests, as a shell command with a two-label worker requirement.
#[sykli::task(cmd = "cargo test --lib", after = [crate::checks::fmt], requires = ["linux", "x86_64"], timeout = 600)]
pub fn unit_tests() {}
