#[sykli::task(cmd = "dockerd", ready_timeout = 30)]
fn engine() {}

fn main() {}
