//! Test vector errors/duplicate-name: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("a").run("x");
    p.task("a").run("y");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
