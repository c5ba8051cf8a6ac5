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

/// Ctrl-C on `sykli run` while a container task (with a sidecar service) runs: the task's
/// container, its service and its network are all stopped and removed.
#[test]
fn ctrl_c_on_a_container_run_leaves_no_container_or_network() {
    use std::time::{Duration, Instant};

    let task = format!(
        "hang-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let label = format!("label=dev.sykli.task={task}");
    let dir = tempfile::tempdir().unwrap();
    let graph = serde_json::json!({"version": "2", "tasks": [{
        "name": task,
        "container": "sykli-test/busybox:latest",
        "command": "echo started; sleep 1000",
        "services": [{"image": "sykli-test/echo-server:latest", "name": "echo"}],
    }]});
    std::fs::write(dir.path().join("sykli.json"), graph.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .arg("run")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Both the service and the task's container are running.
    let start = Instant::now();
    while docker(&["ps", "-q", "--filter", &label]).lines().count() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the task and its service never ran together"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an interrupted run exits 1");

    assert_eq!(
        docker(&["ps", "-aq", "--filter", &label]),
        "",
        "containers left"
    );
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", &label]),
        "",
        "networks left"
    );
}
