//! Test vector 10-when-raw: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("main-only").run("deploy").when("branch == 'main'");
    p.task("shorthand").run("deploy").when("branch:main");
    p.task("double-quoted")
        .run("deploy")
        .when(r#"event == "push" && !tag"#);
    p.task("replaced")
        .run("deploy")
        .when("branch == 'dev'")
        .when("ci == true");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
