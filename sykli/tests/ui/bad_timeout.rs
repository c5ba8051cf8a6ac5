use sykli::TaskCtx;

#[sykli::task(timeout = "5 minuets")]
async fn lint(_ctx: &TaskCtx) -> Result<(), String> {
    Ok(())
}

sykli::main!();
