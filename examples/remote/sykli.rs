//! Tasks that run on a remote executor: start one (`sykli worker --listen 127.0.0.1:8980`),
//! then from this directory:
//!
//! ```text
//! cargo run -p remote-pipeline -- --remote grpc://127.0.0.1:8980
//! ```
//!
//! `sort` must run remotely (`.remote()`: without `--remote` it is errored, never run here);
//! `shout` (a container task) and `count` (a native Rust function, shipped as this binary
//! and run there as `remote-pipeline --sykli-exec count`) prefer a remote executor and run
//! here when none is configured or reachable; `report` always runs here. Outputs come back
//! into this directory either way, and a second run is a cache hit, locally or (with
//! `--remote-cache`) from any checkout.

use sykli::{NativeError, Pipeline, Placement, TaskCtx};

/// Counts the sorted words: a native task that prefers a remote executor.
#[sykli::task(after = ["sort"], inputs = ["words.txt"], outputs = {"count": "out/count.txt"}, prefer = Remote)]
async fn count(ctx: &TaskCtx) -> Result<(), NativeError> {
    let sorted = std::fs::read_to_string(ctx.workdir().join("out/sorted.txt"))?;
    let n = sorted.lines().count();
    std::fs::write(ctx.workdir().join("out/count.txt"), format!("{n} words\n"))?;
    ctx.log(format!("counted {n} words"));
    Ok(())
}

fn configure(p: &mut Pipeline) {
    p.task("sort")
        .run("mkdir -p out && sort words.txt > out/sorted.txt && echo sorted on $(uname -n)")
        .inputs(&["words.txt"])
        .output("sorted", "out/sorted.txt")
        .remote();
    p.task("shout")
        .container("busybox")
        .mount_cwd()
        .run("mkdir -p out && tr a-z A-Z < words.txt > out/shout.txt && cat out/shout.txt")
        .inputs(&["words.txt"])
        .output("shout", "out/shout.txt")
        .prefer(Placement::Remote);
    p.task("report")
        .run("cat out/count.txt out/shout.txt")
        .after(&["count", "shout"]);
}

sykli::main!(configure);
