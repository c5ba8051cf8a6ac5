//! Secrets: resolved at task start, masked in every event and log, missing ones named;
//! file secrets only from regular files inside the project, size-capped, never blocking.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Project, within};
use serde_json::{Value, json};
use sykli_runtime::TaskStatus;
use sykli_runtime::secrets::{FileProblem, MAX_SECRET_FILE_BYTES, read_secret_file};

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
            .starts_with("task `needs-env`: missing secret SYKLI_TEST_NOT_SET_ANYWHERE")
    );
    let r = ev.report("needs-file");
    assert_eq!(r.status, TaskStatus::Errored);
    let m = r.message.unwrap();
    assert!(
        m == "task `needs-file`: secret K from file `nope.txt`: no such file in the project",
        "{m}"
    );
    assert!(!p.path("ran").exists());
    assert_eq!(s.errored, 2);
}

/// Runs one task reading secret `S` from file `key`, bounded so a blocking read fails the
/// test instead of hanging it; returns the task's error message (the task must not run).
fn refused(p: &Project, key: &str) -> String {
    let graph = json!({"version": "1", "tasks": [
        {"name": "reader", "secret_refs": [{"name": "S", "source": "file", "key": key}],
         "command": "touch ran"},
    ]});
    let (s, ev) = within(
        Duration::from_secs(20),
        &format!("a run reading secret file `{key}`"),
        p.run(graph, p.config()),
    );
    let r = ev.report("reader");
    assert_eq!(r.status, TaskStatus::Errored, "{r:?}");
    assert_eq!(s.errored, 1);
    assert!(
        !p.path("ran").exists(),
        "the task ran despite a refused secret"
    );
    let m = r.message.unwrap();
    let prefix = format!("task `reader`: secret S from file `{key}`: ");
    assert!(m.starts_with(&prefix), "{m}");
    m[prefix.len()..].to_owned()
}

#[test]
fn an_absolute_secret_path_is_refused() {
    let p = Project::new();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "outside-value").unwrap();
    let key = outside.path().to_str().unwrap();
    assert_eq!(
        refused(&p, key),
        "absolute paths are not allowed: secret files are relative to the project"
    );
}

#[test]
fn a_secret_path_with_dot_dot_is_refused_even_when_it_stays_inside() {
    let p = Project::new();
    std::fs::create_dir(p.path("sub")).unwrap();
    std::fs::write(p.path("secret.txt"), "v").unwrap();
    // A real file one level above the project.
    let parent = p.root().parent().unwrap();
    let name = p.root().file_name().unwrap().to_str().unwrap();
    std::fs::write(parent.join(format!("{name}-outside")), "outside-value").unwrap();
    let msg = "`..` is not allowed in secret file paths";
    assert_eq!(refused(&p, &format!("../{name}-outside")), msg);
    assert_eq!(refused(&p, "sub/../secret.txt"), msg);
    std::fs::remove_file(parent.join(format!("{name}-outside"))).unwrap();
}

#[test]
fn symlinks_out_of_the_project_are_refused() {
    let p = Project::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("key"), "outside-value").unwrap();
    let real_outside = outside.path().canonicalize().unwrap();
    // A link to a file outside, and a link to a directory outside with the file behind it.
    std::os::unix::fs::symlink(outside.path().join("key"), p.path("file-link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), p.path("dir-link")).unwrap();
    for (key, target) in [
        ("file-link", real_outside.join("key")),
        ("dir-link/key", real_outside.join("key")),
    ] {
        let m = refused(&p, key);
        assert!(
            m.starts_with(&format!(
                "it resolves through a symlink to {}, outside the project",
                target.display()
            )),
            "{m}"
        );
    }
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let p = Project::new();
    // Nobody ever writes it: opening it for reading the ordinary way would block forever.
    nix::unistd::mkfifo(&p.path("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_eq!(refused(&p, "pipe"), "it is a FIFO, not a regular file");
    // Behind a symlink inside the project too.
    std::os::unix::fs::symlink("pipe", p.path("pipe-link")).unwrap();
    assert_eq!(refused(&p, "pipe-link"), "it is a FIFO, not a regular file");
}

#[test]
fn directories_and_sockets_are_refused() {
    let p = Project::new();
    std::fs::create_dir(p.path("dir")).unwrap();
    assert_eq!(refused(&p, "dir"), "it is a directory, not a regular file");
    let _listener = std::os::unix::net::UnixListener::bind(p.path("sock")).unwrap();
    assert_eq!(refused(&p, "sock"), "it is a socket, not a regular file");
}

#[test]
fn devices_are_refused_without_reading_them() {
    // Devices live in /dev; taking /dev as the project puts real ones inside it (creating a
    // device node in a temporary project would need privileges). `zero` never ends.
    for name in ["null", "zero"] {
        let e = read_secret_file(Path::new("/dev"), name).unwrap_err();
        assert!(
            matches!(
                e,
                FileProblem::NotRegular {
                    kind: "character device"
                }
            ),
            "{name}: {e}"
        );
    }
}

#[test]
fn secret_files_are_capped_at_64_kib() {
    assert_eq!(MAX_SECRET_FILE_BYTES, 64 * 1024);
    let p = Project::new();
    let at_limit = "k".repeat(MAX_SECRET_FILE_BYTES as usize);
    std::fs::write(p.path("big"), format!("{at_limit}x")).unwrap();
    assert_eq!(
        refused(&p, "big"),
        "it is larger than the 65536-byte limit for secret files"
    );
    std::fs::write(p.path("ok"), &at_limit).unwrap();
    assert_eq!(read_secret_file(p.root(), "ok").unwrap().expose(), at_limit);
    std::fs::write(p.path("binary"), [0xff, 0xfe, 0x00]).unwrap();
    assert_eq!(refused(&p, "binary"), "it is not UTF-8 text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_inside_the_project_are_followed() {
    let p = Project::new();
    std::fs::create_dir_all(p.path("conf/keys")).unwrap();
    std::fs::write(p.path("conf/keys/token"), "inside-7f3a\n").unwrap();
    std::os::unix::fs::symlink("conf/keys/token", p.path("token-link")).unwrap();
    std::os::unix::fs::symlink("conf", p.path("conf-link")).unwrap();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [{"name": "t", "secret_refs": [
                {"name": "A", "source": "file", "key": "token-link"},
                {"name": "B", "source": "file", "key": "./conf-link/keys/token"},
            ], "command": "test \"$A\" = inside-7f3a && test \"$B\" = inside-7f3a"}]}),
            p.config(),
        )
        .await;
    assert!(s.ok(), "{:?}", ev.events());
}

/// A project where `seen` prints the literal value of `value.txt` and `holder` declares that
/// file as a secret: `seen`'s output shows `***` only if `holder`'s secret was read.
fn holder_graph(holder: Value) -> Value {
    json!({"version": "1", "tasks": [
        {"name": "seen", "command": "cat value.txt"},
        holder,
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_files_of_tasks_left_out_by_the_filter_are_not_read() {
    let p = Project::new();
    std::fs::write(p.path("value.txt"), "plain-41c9\n").unwrap();
    let graph = holder_graph(json!({"name": "holder", "command": "true",
        "secret_refs": [{"name": "S", "source": "file", "key": "value.txt"}]}));
    let mut c = p.config();
    c.filter = vec!["seen".into()];
    let (s, ev) = p.run(graph.clone(), c).await;
    assert!(s.ok(), "{:?}", ev.events());
    assert_eq!(ev.output("seen"), ["plain-41c9"]);
    // Nor those of a task its condition skips.
    let mut skipped = graph.clone();
    skipped["tasks"][1]["when"] = json!("branch == 'never-this-branch'");
    let (s, ev) = p.run(skipped, p.config()).await;
    assert!(s.ok(), "{:?}", ev.events());
    assert_eq!(ev.status("holder"), TaskStatus::Skipped);
    assert_eq!(ev.output("seen"), ["plain-41c9"]);
    // The control: when `holder` runs, the value is a secret from then on. `seen` runs after
    // it, so its output is masked.
    let mut graph = graph;
    graph["tasks"][0]["depends_on"] = json!(["holder"]);
    let (s, ev) = p.run(graph, p.config()).await;
    assert!(s.ok(), "{:?}", ev.events());
    assert_eq!(ev.output("seen"), ["***"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_file_written_by_a_dependency_is_read_when_its_task_starts() {
    let p = Project::new();
    let (s, ev) = p
        .run(
            json!({"version": "1", "tasks": [
                {"name": "mint", "command": "echo minted-5d2e > token"},
                {"name": "use", "depends_on": ["mint"],
                 "secret_refs": [{"name": "T", "source": "file", "key": "token"}],
                 "command": "test \"$T\" = minted-5d2e && echo \"$T\""},
            ]}),
            p.config(),
        )
        .await;
    assert!(s.ok(), "{:?}", ev.events());
    assert_eq!(ev.output("use"), ["***"]);
}
