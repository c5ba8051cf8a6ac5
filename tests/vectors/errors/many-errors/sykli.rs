//! Test vector errors/many-errors: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("build").run("make");
    p.task("test").after(&["buld"]);
    p.task("").run("x");
    p.task("build").run("again");
    p.task("p").run("p").after(&["q"]);
    p.task("q").run("q").after(&["p"]);
    p.chain(&["build", "nope"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
