//! Test vector 14-services: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("integration")
        .run("go test -tags=integration ./...")
        .service("postgres:16", "db")
        .service("redis:7", "cache");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
