//! Test vector 18-gates: `pipeline().to_json()` must equal expected.json byte for byte.
use std::time::Duration;

use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("build").run("make");
    p.gate("approve").after(&["build"]);
    p.gate("env-gate")
        .after(&["approve"])
        .env_var("DEPLOY_APPROVED")
        .message("Approve the deploy?");
    p.gate("file-gate")
        .file("/tmp/approved")
        .timeout(Duration::from_secs(90));
    p.gate("prompt-gate")
        .message("Ship it?")
        .prompt()
        .timeout(Duration::from_secs(2 * 3600));
    p.task("deploy")
        .run("./deploy")
        .after(&["env-gate", "file-gate", "prompt-gate"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
