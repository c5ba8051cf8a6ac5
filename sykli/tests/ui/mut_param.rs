use sykli::TaskCtx;

#[sykli::task]
async fn lint(_ctx: &mut TaskCtx) -> Result<(), String> {
    Ok(())
}

sykli::main!();
