//! Test vector 13-matrix: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("test")
        .run("cargo test")
        .matrix("rust", &["stable", "beta"])
        .matrix("os", &["linux", "macos"])
        .matrix("rust", &["1.95", "stable", "nightly"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
