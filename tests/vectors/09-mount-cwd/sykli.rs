//! Test vector 09-mount-cwd: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.dir(".").globs(&["**/*.go", "go.mod"]);
    p.task("test")
        .container("golang:1.26")
        .mount_cwd()
        .run("go test ./...");
    p.task("lint")
        .container("golang:1.26")
        .workdir("/elsewhere")
        .mount_cwd()
        .run("go vet ./...");
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
