//! Test vector 11-when-cond: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::{Condition, Pipeline};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("branch")
        .run("true")
        .when_cond(Condition::branch("main"));
    p.task("branch-glob")
        .run("true")
        .when_cond(Condition::branch("release/*"));
    p.task("tag")
        .run("true")
        .when_cond(Condition::tag("v1.0.0"));
    p.task("tag-glob")
        .run("true")
        .when_cond(Condition::tag("v*"));
    p.task("has-tag")
        .run("true")
        .when_cond(Condition::has_tag());
    p.task("tag-empty")
        .run("true")
        .when_cond(Condition::tag(""));
    p.task("event")
        .run("true")
        .when_cond(Condition::event("pull_request"));
    p.task("ci").run("true").when_cond(Condition::in_ci());
    p.task("and")
        .run("true")
        .when_cond(Condition::branch("main").and(Condition::in_ci()));
    p.task("or-and-not").run("true").when_cond(
        Condition::branch("main")
            .or(Condition::tag("v*"))
            .and(Condition::event("pull_request").not()),
    );
    p.task("not-and-or")
        .run("true")
        .when_cond((!Condition::branch("main").and(Condition::has_tag())).or(Condition::in_ci()));
    p.task("method-not")
        .run("true")
        .when_cond(Condition::in_ci().not());
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
