//! Test vector 15-retry-timeout: `pipeline().to_json()` must equal expected.json byte for byte.
use std::time::Duration;

use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("zero").run("true").retry(0);
    p.task("retry-and-timeout")
        .run("true")
        .retry(3)
        .timeout(Duration::from_secs(5 * 60));
    p.task("round-up")
        .run("true")
        .timeout(Duration::from_millis(1500));
    p.task("tiny").run("true").timeout(Duration::from_millis(1));
    p.task("zero-timeout").run("true").timeout(Duration::ZERO);
    p.task("replaced").run("true").retry(2).retry(1);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
