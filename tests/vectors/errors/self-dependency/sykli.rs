//! Test vector errors/self-dependency: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("a").run("x").after(&["a"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
