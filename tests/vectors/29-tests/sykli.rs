//! Test vector 29-tests: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::{Pipeline, TestFormat};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("unit")
        .run("cargo test")
        .inputs(&["src/**"])
        .tests(TestFormat::Cargo);
    p.task("go")
        .run("go test -json ./...")
        .tests(TestFormat::GoJson);
    p.task("tap").run("./t.sh").tests(TestFormat::Tap).sandbox();
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
