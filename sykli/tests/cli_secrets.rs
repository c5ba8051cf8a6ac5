//! File secrets through the real `sykli` binary: only files inside the project.

use std::process::Command;

/// The bug: `secret_refs` with `source: file` read any path, so a pipeline could read
/// `/etc/hostname` (or any file the user can read) into a task.
#[test]
fn secret_file_etc_hostname_outside_the_project_is_no_longer_readable() {
    let dir = tempfile::tempdir().unwrap();
    let graph = serde_json::json!({"version": "1", "tasks": [
        {"name": "leak", "command": "echo \"$HOST\" > got",
         "secret_refs": [{"name": "HOST", "source": "file", "key": "/etc/hostname"}]},
    ]});
    std::fs::write(dir.path().join("sykli.json"), graph.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .arg("run")
        .current_dir(dir.path())
        .env_remove("CI")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "task `leak`: secret HOST from file `/etc/hostname`: absolute paths are not allowed"
        ),
        "{text}"
    );
    assert!(!dir.path().join("got").exists(), "the task ran: {text}");
}
