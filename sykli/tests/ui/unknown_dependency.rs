use sykli::TaskCtx;

#[sykli::task]
async fn lint(_ctx: &TaskCtx) -> Result<(), String> {
    Ok(())
}

#[sykli::task(cmd = "cargo test", after = [lnt])]
fn test() {}

sykli::main!();
