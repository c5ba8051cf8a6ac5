//! Test vector 17-provides-needs: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::Pipeline;

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("db")
        .run("start-db")
        .provides("postgres")
        .provides_value("db_url", "postgres://localhost:5432/app");
    p.task("migrate").run("migrate").needs("db_url");
    p.task("test")
        .run("test")
        .needs("postgres")
        .needs("db_url")
        .after(&["migrate"]);
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
