//! Compile errors of `#[sykli::task]`: each case in `tests/ui/` must fail to compile with
//! exactly the message in its `.stderr` file (regenerate with `TRYBUILD=overwrite`).

#[test]
fn task_macro_compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
