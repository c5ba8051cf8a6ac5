//! Test vector errors/cycle-shortest-path: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("a").run("a").after(&["b", "c"]);
    p.task("b").run("b").after(&["c"]);
    p.task("c").run("c").after(&["a"]);
    p.task("x").run("x").after(&["y"]);
    p.task("y").run("y").after(&["x"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
