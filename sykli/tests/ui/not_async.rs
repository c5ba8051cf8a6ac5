use sykli::TaskCtx;

#[sykli::task]
fn lint(_ctx: &TaskCtx) -> Result<(), String> {
    Ok(())
}

sykli::main!();
