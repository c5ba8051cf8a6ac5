//! Secrets: resolved at task start, masked in every event and log, missing ones named.

mod common;

use common::Project;
use serde_json::json;
use sykli_runtime::TaskStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_never_reach_events_or_logs() {
    let p = Project::new();
    let env_value = "tok-8c1d2e3f4a5b";
    let file_value = "filesecret-77aa99";
    // SAFETY: this test binary sets this variable once, before any task runs, and no other
    // test in it reads or writes the environment concurrently.
    unsafe { std::env::set_var("SYKLI_TEST_TOKEN_A", env_value) };
    std::fs::write(p.path("secret.txt"), format!("{file_value}\n")).unwrap();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "leaky", "secrets": ["SYKLI_TEST_TOKEN_A"],
                 "secret_refs": [{"name": "FILE_SECRET", "source": "file", "key": "secret.txt"}],
                 // Whole, split across writes, on stderr, and in the failure message path.
                 "command": "echo \"token=$SYKLI_TEST_TOKEN_A\"; printf 'tok-8c1d'; sleep 0.1; printf '2e3f4a5b\\n'; echo \"$FILE_SECRET\" >&2; test \"$FILE_SECRET\" = filesecret-77aa99"},
                // A task that did not declare the secret still cannot print it.
                {"name": "snoop", "command": "env | grep SYKLI_TEST_TOKEN_A"},
            ]}),
            p.config(),
        )
        .await;
    assert!(s.ok(), "{:?}", ev.events());
    let events = ev.all_json();
    let logs = p.all_logs();
    for v in [env_value, file_value, "tok-8c1d2e3f4a5b"] {
        assert!(!events.contains(v), "secret in events: {events}");
        assert!(!logs.contains(v), "secret in logs: {logs}");
    }
    assert_eq!(ev.output("leaky"), ["token=***", "***", "***"]);
    assert_eq!(ev.output("snoop"), ["SYKLI_TEST_TOKEN_A=***"]);
    assert!(logs.contains("token=***"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_errors_the_task_by_name() {
    let p = Project::new();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "needs-env", "secrets": ["SYKLI_TEST_NOT_SET_ANYWHERE"], "command": "touch ran"},
                {"name": "needs-file", "secret_refs": [{"name": "K", "source": "file", "key": "nope.txt"}], "command": "touch ran"},
            ]}),
            {
                let mut c = p.config();
                c.keep_going = true;
                c
            },
        )
        .await;
    let r = ev.report("needs-env");
    assert_eq!(r.status, TaskStatus::Errored);
    assert!(
        r.message
            .unwrap()
            .contains("missing secret SYKLI_TEST_NOT_SET_ANYWHERE")
    );
    let r = ev.report("needs-file");
    assert_eq!(r.status, TaskStatus::Errored);
    let m = r.message.unwrap();
    assert!(
        m.contains("missing secret K") && m.contains("nope.txt"),
        "{m}"
    );
    assert!(!p.path("ran").exists());
    assert_eq!(s.errored, 2);
}
