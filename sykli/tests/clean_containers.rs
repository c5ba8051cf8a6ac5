//! `sykli clean --containers` against a real engine (run `.ci/docker-setup.sh` first).
#![cfg(feature = "docker")]

use std::process::Command;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker CLI not runnable ({e}): run .ci/docker-setup.sh"));
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}\nrun .ci/docker-setup.sh",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn clean_containers_removes_labelled_leftovers_of_one_run() {
    let run = format!("clean-test-{}", std::process::id());
    let run_label = format!("dev.sykli.run={run}");
    docker(&[
        "network",
        "create",
        "--label",
        "dev.sykli.managed=true",
        "--label",
        &run_label,
        &format!("sykli-{run}"),
    ]);
    docker(&[
        "run",
        "-d",
        "--label",
        "dev.sykli.managed=true",
        "--label",
        &run_label,
        "sykli-test/busybox:latest",
        "sleep",
        "60",
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .args(["clean", "--containers", "--run", &run])
        .output()
        .expect("run sykli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(&format!("removed 1 container and 1 network of run {run}")),
        "{stdout}"
    );
    let filter = format!("label={run_label}");
    assert_eq!(docker(&["ps", "-aq", "--filter", &filter]), "");
    assert_eq!(docker(&["network", "ls", "-q", "--filter", &filter]), "");
}

#[test]
fn clean_without_a_target_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .arg("clean")
        .output()
        .expect("run sykli");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --containers"));
}
