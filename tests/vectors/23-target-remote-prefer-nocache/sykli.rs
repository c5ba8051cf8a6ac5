//! Test vector 23-target-remote-prefer-nocache: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::{Pipeline, Placement};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("a").run("make").target("docker");
    p.task("b").run("make").remote();
    p.task("c").run("make").prefer(Placement::Remote);
    p.task("d").run("make").prefer(Placement::Local).no_cache();
    p.task("e")
        .run("make")
        .inputs(&["**/*.c"])
        .no_cache()
        .remote()
        .prefer(Placement::Remote)
        .target("k8s");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
