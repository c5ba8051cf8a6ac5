use sykli::TaskCtx;

#[sykli::task]
async fn lint(_ctx: &TaskCtx) -> Option<()> {
    None
}

sykli::main!();
