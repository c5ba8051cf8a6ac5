//! Test vector 04-env-workdir: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("env")
        .run("env")
        .env("b", "2")
        .env("a", "1")
        .env("B", "3")
        .env("_x", "4")
        .env("10", "5")
        .env("9", "6")
        .env("a", "override")
        .env("é", "e")
        .env("😀", "smile")
        .env("ｚ", "z")
        .workdir("sub/dir");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
