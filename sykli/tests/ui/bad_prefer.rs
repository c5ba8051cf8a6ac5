#[sykli::task(cmd = "cargo test", prefer = Somewhere)]
fn test() {}

sykli::main!();
