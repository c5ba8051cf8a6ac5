fn helper() {}

#[sykli::task(cmd = "cargo test", after = [helper])]
fn test() {}

fn main() {
    helper();
}
