//! Test vector errors/many-errors-with-cycle: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("build").run("make");
    p.task("test").after(&["buld"]);
    p.task("p").run("p").after(&["q"]).env("", "v");
    p.task("q").run("q").after(&["p", "q"]);
    p.chain(&["build", "nope", "test"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
