//! Test vector 05-inputs-outputs: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("build")
        .run("cargo build")
        .inputs(&["src/**/*.rs", "Cargo.toml"])
        .inputs(&["Cargo.lock"])
        .output("bin", "target/release/app")
        .outputs(&["a.txt", "b.txt"])
        .outputs(&["c.txt"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
