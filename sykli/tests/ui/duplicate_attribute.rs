#[sykli::task(cmd = "cargo test", retry = 1, retry = 2)]
fn test() {}

sykli::main!();
