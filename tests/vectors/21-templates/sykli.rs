//! Test vector 21-templates: `pipeline().to_json()` must equal expected.json byte for byte.
use std::time::Duration;

use sykli::{Pipeline, Placement};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    let src = p.dir(".");
    let cargo = p.cache("cargo");
    let rust = p
        .template()
        .container("rust:1.95")
        .workdir("/src")
        .env("CARGO_TERM_COLOR", "always")
        .env("RUST_BACKTRACE", "1")
        .inputs(&["src/**", "Cargo.toml"])
        .mount(&src, "/src")
        .mount_cache(&cargo, "/root/.cargo")
        .secret("CARGO_TOKEN")
        .secrets(&["SCCACHE_KEY"])
        .retry(1)
        .timeout(Duration::from_secs(600))
        .requires(&["linux"])
        .target("docker")
        .prefer(Placement::Local);
    p.task("build").from(&rust).run("cargo build");
    p.task("test")
        .env("RUST_BACKTRACE", "full")
        .from(&rust)
        .env("RUST_LOG", "debug")
        .inputs(&["tests/**"])
        .retry(0)
        .run("cargo test")
        .after(&["build"]);
    let alpine = p.template().mount_cwd().container("alpine:3");
    p.task("cwd").from(&alpine).run("ls");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
