//! A pipeline whose tasks live in three modules. `sykli::main!` collects them all, then
//! `builder_tasks` adds one with the builder that depends on a declared task.
//!
//! ```text
//! cargo run -p sykli-example-multi-module --bin pipeline -- --emit
//! cargo run -p sykli-example-multi-module --bin pipeline -- --sykli-exec lint
//! ```

mod build;
mod checks;
mod release;

/// Tasks added with the builder, after the declared ones.
fn builder_tasks(p: &mut sykli::Pipeline) {
    p.task("docs")
        .run("echo docs for $(cat target/manifest.txt | head -n 1)")
        .after(&["build-manifest"])
        .inputs(&["src/**"]);
}

sykli::main!(builder_tasks);
