//! Test vector 19-success-criteria: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::{Criterion, Pipeline};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("build")
        .run("make")
        .success_criteria(Criterion::exit_code(0))
        .success_criteria(Criterion::file_exists("out/app"))
        .success_criteria(Criterion::file_non_empty("out/app.sha256"));
    p.task("expect-three")
        .run("./check")
        .success_criteria(Criterion::exit_code(3));
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
