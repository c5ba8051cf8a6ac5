//! Test vector 06-input-from: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("build").run("make").output("bin", "out/app");
    p.task("test")
        .run("./app --test")
        .after(&["lint"])
        .input_from("build", "bin", "app")
        .input_from("lint", "report", "lint.txt");
    p.task("lint")
        .run("lint > report.txt")
        .output("report", "report.txt");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
