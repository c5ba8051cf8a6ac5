//! Test vector 25-resources-only: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.cache("unused");
    p.task("a").run("true");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
