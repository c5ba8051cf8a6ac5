//! Test vector errors/unknown-dep-no-suggestion: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("build").run("make");
    p.task("unit").run("make test").after(&["deploy"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
