//! sykli's own CI, written with sykli: `cargo run --bin ci`.
//!
//! It installs what the tests need on a fresh machine (a Docker engine with locally built test
//! images, the TypeScript SDK's dev dependencies), then checks formatting and lints, and runs
//! every test suite: the Rust workspace, the Go SDK and the TypeScript SDK, each against the
//! shared test vectors. Pass the usual `sykli run` flags: `cargo run --bin ci -- --filter go-sdk`.

use std::process::ExitCode;

use sykli::Pipeline;

fn main() -> ExitCode {
    let p = Pipeline::new();

    // Prerequisites, so `cargo run --bin ci` works on a fresh machine. They act outside the
    // workspace (a daemon, node_modules), so they declare no inputs: never cached.
    p.task("docker-engine").run("bash .ci/docker-setup.sh");
    p.task("ts-deps")
        .run("cd sdk-ts && npm ci --no-audit --no-fund");

    // Rust: format, lints, then every test (unit, integration, Docker, CLI, vectors).
    p.task("fmt").run("cargo fmt --all -- --check");
    p.task("clippy")
        .run("cargo clippy --workspace --all-targets --quiet -- -D warnings")
        .after(&["fmt"]);
    p.task("test")
        .run("cargo test --workspace --quiet")
        .after(&["clippy", "docker-engine", "ts-deps"]);

    // The Go and TypeScript SDKs, each checked against the shared vectors.
    p.task("go-sdk").run(
        "cd sdk-go && unformatted=$(gofmt -l . ../tests/vectors) && \
         { [ -z \"$unformatted\" ] || { echo \"gofmt needed: $unformatted\"; exit 1; }; } && \
         go vet ./... && go test ./...",
    );
    p.task("ts-sdk")
        .run("cd sdk-ts && npm run lint && npm test")
        .after(&["ts-deps"]);

    sykli::run(p)
}
