#[sykli::task]
async fn lint(_ctx: &String) -> Result<(), String> {
    Ok(())
}

sykli::main!();
