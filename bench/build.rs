//! Generates the tasks of the `native_macro` benchmark: `SYKLI_BENCH_MACRO_TASKS` (default
//! 10,000) no-op native tasks declared with `#[sykli::task]`.

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SYKLI_BENCH_MACRO_TASKS");
    let n: usize = std::env::var("SYKLI_BENCH_MACRO_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut code =
        format!("/// Number of generated macro tasks.\npub const MACRO_TASKS: usize = {n};\n");
    for i in 0..n {
        writeln!(
            code,
            "#[sykli::task]\nasync fn m{i:05}(_ctx: &::sykli::TaskCtx) -> Result<(), ::sykli::NativeError> {{ Ok(()) }}"
        )
        .expect("writing to a String");
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("macro_tasks.rs"), code).expect("failed to write macro_tasks.rs");
}
