//! Test vector 03-after-order-dedup: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("c").run("echo c").after(&["b"]);
    p.task("a").run("echo a");
    p.task("b").run("echo b").after(&["a"]);
    p.task("d")
        .run("echo d")
        .after(&["b", "a", "b"])
        .after(&["a", "c"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
