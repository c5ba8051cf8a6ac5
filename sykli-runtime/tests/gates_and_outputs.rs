//! Gates, success criteria, outputs and `task_inputs` with containment.

mod common;

use std::time::Duration;

use common::Project;
use serde_json::json;
use sykli_runtime::TaskStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_gates_pass_when_the_variable_is_set() {
    let p = Project::new();
    // SAFETY: set once before the run; no other test in this binary touches the environment.
    unsafe { std::env::set_var("SYKLI_TEST_APPROVE_YES", "1") };
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "approve", "gate": {"strategy": "env", "env_var": "SYKLI_TEST_APPROVE_YES"}},
                {"name": "deploy", "command": "touch deployed", "depends_on": ["approve"]},
                {"name": "denied", "gate": {"strategy": "env", "env_var": "SYKLI_TEST_APPROVE_UNSET"}},
                {"name": "deploy2", "command": "touch deployed2", "depends_on": ["denied"]},
            ]}),
            {
                let mut c = p.config();
                c.keep_going = true;
                c
            },
        )
        .await;
    assert_eq!(ev.status("approve"), TaskStatus::Passed);
    assert!(p.path("deployed").exists());
    let denied = ev.report("denied");
    assert_eq!(denied.status, TaskStatus::Failed);
    assert!(
        denied
            .message
            .unwrap()
            .contains("$SYKLI_TEST_APPROVE_UNSET is not set")
    );
    assert_eq!(ev.status("deploy2"), TaskStatus::Blocked);
    assert!(!p.path("deployed2").exists());
    assert_eq!(s.failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_gates_poll_until_the_file_appears_or_time_out() {
    let p = Project::new();
    let approval = p.path("approved");
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        std::fs::write(approval, "ok").unwrap();
    });
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "wait", "gate": {"strategy": "file", "file_path": "approved", "timeout": 20}},
                {"name": "after", "command": "touch after", "depends_on": ["wait"]},
                {"name": "never", "gate": {"strategy": "file", "file_path": "never", "timeout": 1}},
                {"name": "ask", "gate": {"strategy": "prompt", "message": "ship it?"}},
            ]}),
            {
                let mut c = p.config();
                c.keep_going = true;
                // Gates do not take job slots: one job still runs the gates side by side.
                c.jobs = 1;
                c
            },
        )
        .await;
    writer.await.unwrap();
    assert_eq!(ev.status("wait"), TaskStatus::Passed);
    assert!(ev.report("wait").duration_ms >= 400);
    assert!(p.path("after").exists());
    let never = ev.report("never");
    assert_eq!(never.status, TaskStatus::Errored);
    assert!(never.message.unwrap().contains("not approved within 1s"));
    // Tests run without a terminal on stdin.
    let ask = ev.report("ask");
    assert_eq!(ask.status, TaskStatus::Errored);
    assert!(ask.message.unwrap().contains("not a terminal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_criteria_are_checked_after_the_command() {
    let p = Project::new();
    let (_, ev) = p
        .run(
            json!({"version": "3", "tasks": [
                {"name": "three", "command": "exit 3", "success_criteria": [{"type": "exit_code", "equals": 3}]},
                {"name": "zero-not-three", "command": "true", "success_criteria": [{"type": "exit_code", "equals": 3}]},
                {"name": "makes", "command": "echo x > made", "success_criteria": [{"type": "file_non_empty", "path": "made"}]},
                {"name": "missing", "command": "true", "success_criteria": [{"type": "file_exists", "path": "nothing-here"}]},
                {"name": "empty", "command": "touch empty", "success_criteria": [{"type": "file_non_empty", "path": "empty"}]},
            ]}),
            {
                let mut c = p.config();
                c.keep_going = true;
                c
            },
        )
        .await;
    assert_eq!(ev.status("three"), TaskStatus::Passed);
    let r = ev.report("zero-not-three");
    assert_eq!(r.status, TaskStatus::Failed);
    assert_eq!(r.message.as_deref(), Some("exited with code 0, expected 3"));
    assert_eq!(ev.status("makes"), TaskStatus::Passed);
    let r = ev.report("missing");
    assert_eq!(r.status, TaskStatus::Failed);
    assert_eq!(
        r.message.as_deref(),
        Some("success criterion failed: `nothing-here` does not exist")
    );
    assert_eq!(
        ev.report("empty").message.as_deref(),
        Some("success criterion failed: `empty` is empty")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_copied_into_consumers_and_contained() {
    let p = Project::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "not yours").unwrap();
    for d in ["producer", "consumer"] {
        std::fs::create_dir(p.path(d)).unwrap();
    }
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "produce", "workdir": "producer",
                 "command": "mkdir -p dist/lib && echo bin > dist/app && echo lib > dist/lib/a.so",
                 "outputs": {"app": "dist/app", "dir": "dist"}},
                {"name": "consume", "workdir": "consumer",
                 "command": "cat in/app got/lib/a.so",
                 "task_inputs": [{"from_task": "produce", "output": "app", "dest": "in/app"},
                                 {"from_task": "produce", "output": "dir", "dest": "got"}]},
                {"name": "lazy", "command": "true", "outputs": {"x": "never-made"}},
                {"name": "sneaky", "command": format!("ln -sfn {} link", outside.path().display()),
                 "outputs": {"secret": "link/passwd"}},
            ]}),
            {
                let mut c = p.config();
                c.keep_going = true;
                c
            },
        )
        .await;
    assert_eq!(ev.status("produce"), TaskStatus::Passed);
    assert_eq!(
        ev.status("consume"),
        TaskStatus::Passed,
        "{:?}",
        ev.report("consume")
    );
    assert_eq!(ev.output("consume"), ["bin", "lib"]);
    assert_eq!(p.read("consumer/in/app"), "bin\n");
    let lazy = ev.report("lazy");
    assert_eq!(lazy.status, TaskStatus::Failed);
    assert_eq!(
        lazy.message.as_deref(),
        Some("declared output `x` (`never-made`) was not produced")
    );
    let sneaky = ev.report("sneaky");
    assert_eq!(sneaky.status, TaskStatus::Failed);
    let m = sneaky.message.unwrap();
    assert!(
        m.contains("output `secret`") && m.contains("symlink") && m.contains("link/passwd"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_a_directory_output_refuses_symlinks_out_of_the_project() {
    let p = Project::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("key"), "private").unwrap();
    let (_, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "produce", "command": format!("mkdir -p dist && echo ok > dist/a && ln -s {}/key dist/key", outside.path().display()),
                 "outputs": {"dist": "dist"}},
                {"name": "consume", "command": "touch consumed", "workdir": "c",
                 "task_inputs": [{"from_task": "produce", "output": "dist", "dest": "in"}]},
            ]}),
            {
                std::fs::create_dir(p.path("c")).unwrap();
                p.config()
            },
        )
        .await;
    assert_eq!(ev.status("produce"), TaskStatus::Passed);
    let r = ev.report("consume");
    assert_eq!(r.status, TaskStatus::Errored);
    let m = r.message.unwrap();
    assert!(
        m.contains("failed to copy output `dist` of `produce` to `in`") && m.contains("symlink"),
        "{m}"
    );
    assert!(!p.path("c/in/key").exists() && !p.path("c/consumed").exists());
}
