use sykli::TaskCtx;

#[sykli::task]
async fn lint(_ctx: &TaskCtx) -> Result<(), i32> {
    Err(3)
}

sykli::main!();
