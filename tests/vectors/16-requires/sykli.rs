//! Test vector 16-requires: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("gpu-test")
        .run("pytest -m gpu")
        .requires(&["linux", "x86_64"])
        .requires(&["gpu"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
