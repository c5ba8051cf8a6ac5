#[sykli::task(cmd = "cargo test", tests = "junit")]
fn test() {}

sykli::main!();
