//! Test vector 26-every-field: `pipeline().to_json()` must equal expected.json byte for byte.
use std::time::Duration;

use sykli::{Condition, Criterion, Pipeline, Placement, SecretSource};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    let src = p.dir(".");
    let cache = p.cache("deps");
    p.task("dep").run("true").output("out", "o.txt");
    p.task("prov").run("true").provides("cap");
    p.task("all")
        .run("run all")
        .after(&["dep"])
        .env("K", "V")
        .workdir("/w")
        .inputs(&["in/**"])
        .output("report", "r.txt")
        .input_from("dep", "out", "o.txt")
        .container("img:1")
        .mount(&src, "/w")
        .mount_cache(&cache, "/c")
        .service("svc:1", "svc")
        .matrix("m", &["1", "2"])
        .secret("S")
        .secret_from("R", SecretSource::env("R_KEY"))
        .when_cond(Condition::branch("main"))
        .retry(2)
        .timeout(Duration::from_secs(60))
        .requires(&["linux"])
        .provides("all-done")
        .needs("cap")
        .success_criteria(Criterion::exit_code(0))
        .task_type("build")
        .remote()
        .prefer(Placement::Remote)
        .no_cache()
        .target("docker");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
