//! Test vector 12-secrets: `pipeline().to_json()` must equal expected.json byte for byte.
use sykli::{Pipeline, SecretSource};

/// The pipeline of this vector.
pub fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.task("deploy")
        .run("./deploy.sh")
        .secret("API_TOKEN")
        .secrets(&["AWS_KEY", "AWS_SECRET"])
        .secret("NPM_TOKEN")
        .secret_from("DB_PASS", SecretSource::env("PROD_DB_PASSWORD"))
        .secret_from("TLS_CERT", SecretSource::file("/etc/certs/tls.pem"));
    p
}

#[allow(dead_code)]
fn main() {
    pipeline().emit_or_exit();
}
