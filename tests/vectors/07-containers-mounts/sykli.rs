//! Test vector 07-containers-mounts: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    let src = p.dir(".");
    let web = p.dir("web").globs(&["**/*.ts", "package.json"]);
    let cargo = p.cache("cargo-registry");
    p.task("build")
        .container("rust:1.95")
        .mount(&src, "/src")
        .mount_cache(&cargo, "/usr/local/cargo/registry")
        .workdir("/src")
        .run("cargo build");
    p.task("web")
        .container("node:22")
        .mount(&web, "/web")
        .run("npm ci");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
