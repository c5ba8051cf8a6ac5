//! Test vector errors/cycle: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("x").run("x");
    p.task("b").run("b").after(&["a"]);
    p.task("a").run("a").after(&["x", "c"]);
    p.task("c").run("c").after(&["b"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
