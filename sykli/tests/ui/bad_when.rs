#[sykli::task(cmd = "cargo publish", when = "branch == 'main' &&")]
fn publish() {}

sykli::main!();
