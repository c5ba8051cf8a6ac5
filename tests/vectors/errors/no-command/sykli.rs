//! Test vector errors/no-command: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("a").env("K", "V");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
