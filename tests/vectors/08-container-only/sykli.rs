//! Test vector 08-container-only: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("test").container("golang:1.26").run("go test ./...");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
