//! Test vector 22-chain-parallel: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("fmt").run("fmt");
    p.task("lint").run("lint");
    let unit = p.task("unit").run("unit");
    let integration = p.task("integration").run("integration");
    let package = p.task("package").run("package");
    p.task("publish").run("publish");
    p.chain(&["fmt", "lint", "unit"]);
    let checks = p.parallel(&["fmt", "lint"]);
    let tests = p.parallel(&["unit", "integration"]);
    unit.after_group(&checks);
    integration.after_group(&checks);
    package.after_group(&tests);
    p.chain(&["package", "publish"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
