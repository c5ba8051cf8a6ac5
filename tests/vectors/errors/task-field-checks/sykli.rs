//! Test vector errors/task-field-checks: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::{Criterion, Pipeline};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    let up = p.dir("../outside");
    p.task("a")
        .run("x")
        .mount(&up, "relative")
        .success_criteria(Criterion::exit_code(0))
        .success_criteria(Criterion::exit_code(1))
        .success_criteria(Criterion::file_exists("../escape"))
        .service("", "db")
        .matrix("os", &[])
        .matrix("v", &["1", "1"]);
    p.gate("g").env_var("");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
