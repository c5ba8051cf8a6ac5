//! Interop with Bazel (Debian's `bazel-bootstrap` 4.2, a real Remote Execution API client,
//! SHA-256 only): it builds a genrule workspace remotely, then gets remote cache hits after
//! `bazel clean`. Needs `bash .ci/reapi-peers.sh install`.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::peers::{Bazel, BuildGridExecution};
use common::worker::Worker;

const BUILD_WITHIN: Duration = Duration::from_secs(240);

/// A value no earlier run used, so the actions are new to the server.
fn fresh_salt() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("salt-{nanos}-{}", std::process::id())
}

/// Builds `//:report` with `--remote_executor=endpoint`, checks the outputs, then `bazel
/// clean` and a build with `--remote_cache=endpoint` only: every action is a remote cache hit.
/// `server_log` is shown when Bazel fails.
fn build_remotely_then_hit_the_cache(endpoint: &str, server_log: &dyn Fn() -> String) {
    let salt = fresh_salt();
    let bazel = Bazel::genrule_workspace(&salt);
    let executed = bazel.run(
        &[
            "build",
            "//:report",
            &format!("--remote_executor={endpoint}"),
            "--remote_timeout=60",
            "--nosandbox_debug",
        ],
        BUILD_WITHIN,
    );
    assert!(
        executed.status.success(),
        "bazel --remote_executor failed ({}):\n{}\n--- server log:\n{}",
        executed.status,
        executed.output,
        server_log()
    );
    assert_eq!(
        executed.count("remote"),
        2,
        "both genrules run remotely; Bazel said:\n{}",
        executed.output
    );
    let expected_upper = format!("HELLO FROM BAZEL\n{salt}\n");
    assert_eq!(bazel.output_file("upper.txt"), expected_upper);
    assert_eq!(
        bazel.output_file("report/summary.txt"),
        format!("2\n{expected_upper}")
    );
    eprintln!("bazel remote execution build took {:?}", executed.took);

    bazel.run(&["clean"], BUILD_WITHIN).assert_success();
    let cached = bazel.run(
        &[
            "build",
            "//:report",
            &format!("--remote_cache={endpoint}"),
            "--nosandbox_debug",
        ],
        BUILD_WITHIN,
    );
    assert!(
        cached.status.success(),
        "bazel --remote_cache failed ({}):\n{}\n--- server log:\n{}",
        cached.status,
        cached.output,
        server_log()
    );
    assert_eq!(
        cached.count("remote cache hit"),
        2,
        "after bazel clean both genrules are remote cache hits; Bazel said:\n{}",
        cached.output
    );
    assert_eq!(cached.count("linux-sandbox") + cached.count("local"), 0);
    assert_eq!(
        bazel.output_file("report/summary.txt"),
        format!("2\n{expected_upper}")
    );
    eprintln!(
        "bazel remote cache build after clean took {:?}",
        cached.took
    );
}

/// Bazel's own remote execution against `sykli worker` (SHA-256; Bazel 4.2 sends no platform
/// properties and the deprecated output_files/output_directories).
#[test]
fn bazel_builds_through_sykli_worker_and_hits_its_cache_after_clean() {
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&dir.path().join("store"), &[]);
    build_remotely_then_hit_the_cache(&worker.url, &|| worker.stderr());
}

/// The harness against a known-good pair: Bazel and BuildGrid with the test bot.
#[test]
fn bazel_builds_through_buildgrid_and_hits_its_cache_after_clean() {
    let peers = BuildGridExecution::start();
    build_remotely_then_hit_the_cache(&peers.endpoint(), &|| peers.grid().log());
    assert_eq!(
        peers.bot_log().matches("rwapi-bot: ran ").count(),
        2,
        "the bot ran both genrules:\n{}",
        peers.bot_log()
    );
}

/// Bazel through BuildGrid, whose bot is a real `sykli worker --bot-of`.
#[test]
fn bazel_builds_through_buildgrid_with_sykli_worker_as_its_bot() {
    let peers = BuildGridExecution::start_with_sykli_worker();
    build_remotely_then_hit_the_cache(&peers.endpoint(), &|| {
        format!("{}\n--- worker:\n{}", peers.grid().log(), peers.bot_log())
    });
    let log = peers.bot_log();
    assert_eq!(
        log.matches("ran, exit 0").count(),
        2,
        "the worker ran both genrules:\n{log}"
    );
}
