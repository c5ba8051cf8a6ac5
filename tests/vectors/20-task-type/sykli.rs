//! Test vector 20-task-type: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("fmt").run("cargo fmt --check").task_type("lint");
    p.task("test")
        .run("cargo test")
        .container("rust:1.95")
        .task_type("test");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
