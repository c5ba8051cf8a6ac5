//! Test vector 27-background: `pipeline().to_json()` must equal expected.json byte for byte.
use std::time::Duration;

use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("engine")
        .run("dockerd")
        .background("docker info", Duration::from_secs(90));
    p.task("web")
        .run("python3 -m http.server 8080")
        .background("curl -sf http://127.0.0.1:8080/", Duration::from_secs(5));
    p.task("test").run("make test").after(&["engine", "web"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
