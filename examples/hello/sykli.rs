//! A small, real pipeline: `cargo run -p sykli -- run examples/hello` (or, in-process,
//! `cargo run -p hello-pipeline`).
//!
//! `lint` and three `unit` shards run in parallel; `build` writes an artifact that `package`
//! receives as an input; `deploy` runs only on `main` in CI, so here it is `skipped`.

use std::process::ExitCode;

use sykli::{Condition, Pipeline};

fn main() -> ExitCode {
    let p = Pipeline::new();
    p.task("lint")
        .run("echo 'checking style of' $(ls | wc -l) 'files'; sleep 1");
    p.task("unit")
        .run("echo \"running shard $shard of 3\"; sleep 1")
        .matrix("shard", &["1", "2", "3"]);
    p.task("build")
        .run("mkdir -p out && echo \"hello-pipeline built on $(uname -s)\" > out/app.txt && cat out/app.txt")
        .output("app", "out/app.txt")
        .after(&["lint"]);
    p.task("package")
        .run("mkdir -p dist && tar -cf dist/app.tar app.txt && echo \"packaged $(wc -c < dist/app.tar) bytes\"")
        .input_from("build", "app", "app.txt")
        .after(&["unit"]);
    p.task("deploy")
        .run("echo deploying dist/app.tar")
        .after(&["package"])
        .when_cond(Condition::branch("main").and(Condition::in_ci()));
    sykli::run(p)
}
