use sykli::TaskCtx;

#[sykli::task(timout = "5m")]
async fn lint(_ctx: &TaskCtx) -> Result<(), String> {
    Ok(())
}

sykli::main!();
