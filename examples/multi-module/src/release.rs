//! Release: runs only on main, after the build, preferably on a remote worker.

use sykli::TaskCtx;

/// Prints what would be published.
#[sykli::task(
    after = [crate::build::manifest, "unit-tests"],
    when = "branch == 'main'",
    prefer = Remote,
    secrets = ["REGISTRY_TOKEN"],
    no_cache,
)]
pub async fn publish(ctx: &TaskCtx) -> anyhow::Result<()> {
    let manifest = std::fs::read_to_string(ctx.workdir().join("target/manifest.txt"))?;
    println!("would publish:\n{manifest}");
    Ok(())
}
