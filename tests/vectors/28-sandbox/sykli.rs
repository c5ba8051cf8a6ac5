//! Test vector 28-sandbox: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::{Pipeline, Sandbox};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("build")
        .run("make")
        .inputs(&["src/**"])
        .output("app", "out/app")
        .sandbox();
    p.task("fetch")
        .run("curl -sf https://example.com")
        .sandbox_with(Sandbox {
            network: true,
            memory_mb: Some(512),
            cpus: Some(1.5),
            pids: Some(256),
            paths: vec!["/opt/tools".into()],
        });
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
