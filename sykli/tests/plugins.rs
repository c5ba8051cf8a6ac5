//! Target plugins end to end: the guests in `examples/plugins/` built from C source by the
//! test support (tests/common/plugins.rs), loaded by the real `sykli` binary.

mod common;

use common::plugins;

/// The bindings generator runs on the repository's WIT (a quick check without clang).
#[test]
fn wit_bindings_generate_for_the_target_world() {
    let out = tempfile::tempdir().unwrap();
    plugins::generate_bindings(&plugins::wit_dir(), out.path()).unwrap();
    for file in ["target.h", "target.c", "target_component_type.o"] {
        assert!(out.path().join(file).is_file(), "{file} missing");
    }
    if let Ok(dump) = std::env::var("SYKLI_DUMP_BINDINGS") {
        for file in ["target.h", "target.c"] {
            std::fs::copy(
                out.path().join(file),
                std::path::Path::new(&dump).join(file),
            )
            .unwrap();
        }
    }
}

/// Every guest in examples/plugins/ compiles from C into a valid component exporting the
/// world's `describe` and `run` (no host needed), and the digest cache hands back the same file.
#[test]
fn every_guest_builds_into_a_valid_component() {
    for (name, defines) in [
        ("spawn", &[("VERSION", "1.0.0")][..]),
        ("spawn", &[("VERSION", "2.0.0")][..]),
        ("http-runner", &[][..]),
        ("spin", &[][..]),
        ("hog", &[][..]),
        ("snoop", &[][..]),
    ] {
        let path = plugins::build_plugin(name, defines);
        let bytes = std::fs::read(&path).unwrap();
        plugins::validate_component(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            plugins::build_plugin(name, defines),
            path,
            "{name}: not cached"
        );
    }
    let v1 = plugins::build_plugin("spawn", &[("VERSION", "1.0.0")]);
    let v2 = plugins::build_plugin("spawn", &[("VERSION", "2.0.0")]);
    assert_ne!(v1, v2, "two versions share one cache entry");
    assert_ne!(std::fs::read(&v1).unwrap(), std::fs::read(&v2).unwrap());
}

/// The runner service the http-runner plugin talks to runs the posted command with exactly the
/// posted environment, in the posted directory, and answers its output and exit code.
#[test]
fn the_runner_service_runs_posted_commands() {
    use std::io::{Read, Write};
    let runner = common::runner_service::RunnerService::start();
    let dir = tempfile::tempdir().unwrap();
    let post = |body: &str| {
        let mut conn = std::net::TcpStream::connect(&runner.addr).unwrap();
        write!(
            conn,
            "POST /run HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n{body}",
            runner.addr,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    };
    let task = serde_json::json!({
        "command": "echo \"$GREETING from $(pwd)\"; echo oops >&2; echo ${HOME:-no-home}; exit 7",
        "env": {"GREETING": "hello"},
        "workdir": dir.path(),
    });
    let answer = post(&task.to_string());
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\r\nx-exit-code: 7\r\n"), "{answer}");
    let canonical = dir.path().canonicalize().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(
        body,
        format!("hello from {}\nno-home\noops\n", canonical.display()),
        "{answer}"
    );
    let bad = post("{\"command\": 1}");
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    assert!(!bad.contains("x-exit-code"), "{bad}");
    assert_eq!(runner.served(), 2);
}
