#[sykli::task(cmd = "cargo test")]
fn test() {
    println!("this would never run");
}

sykli::main!();
