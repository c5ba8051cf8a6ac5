//! Test vector 02-empty: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    Pipeline::new()
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
