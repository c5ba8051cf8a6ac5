#[sykli::task]
async fn lint() -> Result<(), String> {
    Ok(())
}

sykli::main!();
