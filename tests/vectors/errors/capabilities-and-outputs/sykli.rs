//! Test vector errors/capabilities-and-outputs: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("db").run("db").provides("pg");
    p.task("db2").run("db").provides("pg");
    p.task("build").run("make").output("bin", "out/app");
    p.task("test")
        .run("test")
        .input_from("build", "lib", "lib")
        .needs("redis");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
