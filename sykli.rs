//! sykli's own CI, written with sykli: `cargo run --bin ci`.
//!
//! It installs what the tests need on a fresh machine (a Docker engine, run as a background
//! task for the length of the run, with locally built test images; Bazel, PostgreSQL and
//! BuildGrid for the Remote Execution API interop tests; the TypeScript SDK's dev
//! dependencies), checks formatting and lints, checks that
//! every shared test vector exists in all three SDKs, and runs every test suite: the Rust
//! workspace, the Go SDK and the TypeScript SDK, each against the shared vectors. Tasks are
//! plain functions; `sykli::main!` collects them. Pass the usual `sykli run` flags:
//! `cargo run --bin ci -- --filter go-sdk`.

use std::path::Path;

use sykli::TaskCtx;

// Prerequisites, so `cargo run --bin ci` works on a fresh machine. They act outside the
// workspace (packages, a daemon, images, node_modules), so they declare no inputs and are never
// cached.

/// Installs the Docker engine and a static busybox if missing (apt-get; needs root).
#[sykli::task(cmd = "bash .ci/docker-setup.sh install")]
fn docker_install() {}

/// The Docker engine the container tests use: a background task, so it is started only if no
/// engine answers `docker info`, kept for the rest of the run, and stopped when the run ends.
#[sykli::task(
    cmd = "dockerd --log-level warn",
    background = "docker info",
    ready_timeout = 120,
    after = [docker_install]
)]
fn docker_engine() {}

/// Builds the local test images on that engine (no registry needed).
#[sykli::task(cmd = "bash .ci/docker-setup.sh images", after = [docker_engine])]
fn docker_images() {}

/// Installs the real Remote Execution API peers the interop tests run against, if missing: Bazel
/// (`bazel-bootstrap`) and PostgreSQL from apt (needs root), and BuildGrid from PyPI in a Python
/// 3.13 venv under `${SYKLI_PEERS_DIR:-/var/cache/sykli-peers}`.
#[sykli::task(cmd = "bash .ci/reapi-peers.sh install")]
fn reapi_peers() {}

/// Installs `xmllint` (Debian's libxml2-utils) if missing: the report tests validate JUnit
/// files against the JUnit XML schema with it (apt-get; needs root).
#[sykli::task(cmd = "command -v xmllint >/dev/null || { apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxml2-utils; }")]
fn xmllint_install() {}

/// Installs Debian's headless `chromium` for the web page test (`sykli/tests/observe_web.rs`), if
/// missing (apt-get; needs root).
#[sykli::task(cmd = "bash .ci/chromium-setup.sh")]
fn chromium() {}

/// Installs the TypeScript SDK's dev dependencies.
#[sykli::task(cmd = "cd sdk-ts && npm ci --no-audit --no-fund")]
fn ts_deps() {}

// Rust: format, lints, then every test (unit, integration, Docker, CLI, vectors).

/// Formatting.
#[sykli::task(cmd = "cargo fmt --all -- --check")]
fn fmt() {}

/// Lints, warnings as errors.
#[sykli::task(
    cmd = "cargo clippy --workspace --all-targets --quiet -- -D warnings",
    after = [fmt]
)]
fn clippy() {}

/// Every Rust test of the workspace; one failing test binary does not hide the others.
#[sykli::task(
    cmd = "cargo test --workspace --no-fail-fast --quiet",
    after = [clippy, docker_images, reapi_peers, ts_deps, vectors_complete, xmllint_install, chromium]
)]
fn test() {}

// The Go and TypeScript SDKs, each checked against the shared vectors.

/// gofmt, go vet and the Go SDK's tests.
#[sykli::task(cmd = "cd sdk-go && unformatted=$(gofmt -l . ../tests/vectors) && \
    { [ -z \"$unformatted\" ] || { echo \"gofmt needed: $unformatted\"; exit 1; }; } && \
    go vet ./... && go test ./...")]
fn go_sdk() {}

/// Type checks and the TypeScript SDK's tests.
#[sykli::task(cmd = "cd sdk-ts && npm run lint && npm test", after = [ts_deps])]
fn ts_sdk() {}

/// A new field cannot land in one SDK only: every shared vector has its expected output and
/// the same pipeline in Rust, Go and TypeScript (an error case may lack the Rust program only
/// when Rust's types cannot express the mistake, which its `rust-skip.txt` says).
#[sykli::task]
async fn vectors_complete(ctx: &TaskCtx) -> Result<(), String> {
    let root = ctx.workdir().join("tests/vectors");
    let mut missing = Vec::new();
    let mut cases = 0;
    for (dir, expected) in [
        (root.clone(), "expected.json"),
        (root.join("errors"), "expected_error.txt"),
    ] {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("failed to read {}: {e}", dir.display()))?;
        let mut names: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        names.sort();
        for case in names.into_iter().filter(|p| !p.ends_with("errors")) {
            cases += 1;
            let rust_exempt = case.join("rust-skip.txt").is_file();
            for file in [expected, "sykli.go", "sykli.ts", "sykli.rs"] {
                if file == "sykli.rs" && rust_exempt {
                    continue;
                }
                if !case.join(file).is_file() {
                    missing.push(relative(&case.join(file), ctx.workdir()));
                }
            }
        }
    }
    if missing.is_empty() {
        ctx.log(format!("{cases} vectors, each in Rust, Go and TypeScript"));
        Ok(())
    } else {
        Err(format!("vector files missing: {}", missing.join(", ")))
    }
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

sykli::main!();
