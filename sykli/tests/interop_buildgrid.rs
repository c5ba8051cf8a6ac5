//! Interop with BuildGrid (PyPI), a real Remote Execution API server: the harness itself
//! (capabilities, a blob round trip, an Execute through the test bot), then sykli using it as
//! its remote cache and executor. Needs `bash .ci/reapi-peers.sh install`.

mod common;

use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2::{
    Action, ActionResult, BatchReadBlobsRequest, BatchUpdateBlobsRequest, Command, Digest,
    Directory, ExecuteRequest, ExecuteResponse, FileNode, FindMissingBlobsRequest,
    GetActionResultRequest, action_cache_client::ActionCacheClient, batch_update_blobs_request,
    command::EnvironmentVariable,
    content_addressable_storage_client::ContentAddressableStorageClient, digest_function,
    execution_client::ExecutionClient,
};
use bazel_remote_apis::google::longrunning::operation;
use common::peers::{BuildGrid, BuildGridExecution};
use prost::Message;
use sha2::{Digest as _, Sha256};
use tonic::transport::Channel;

const SHA256: i32 = digest_function::Value::Sha256 as i32;

fn digest(data: &[u8]) -> Digest {
    Digest {
        hash: format!("{:x}", Sha256::digest(data)),
        size_bytes: data.len() as i64,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn channel(grid: &BuildGrid) -> Channel {
    Channel::from_shared(format!("http://{}", grid.addr()))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .expect("connect to BuildGrid")
}

/// Uploads `blobs` with one BatchUpdateBlobs, asserting each was accepted.
async fn upload(channel: Channel, blobs: &[&[u8]]) {
    let mut cas = ContentAddressableStorageClient::new(channel);
    let request = BatchUpdateBlobsRequest {
        requests: blobs
            .iter()
            .map(|data| batch_update_blobs_request::Request {
                digest: Some(digest(data)),
                data: data.to_vec(),
                ..Default::default()
            })
            .collect(),
        digest_function: SHA256,
        ..Default::default()
    };
    let answers = cas
        .batch_update_blobs(request)
        .await
        .expect("BatchUpdateBlobs");
    for answer in answers.into_inner().responses {
        let code = answer.status.map_or(0, |s| s.code);
        assert_eq!(code, 0, "BuildGrid refused blob {:?}", answer.digest);
    }
}

async fn read(channel: Channel, wanted: &Digest) -> Vec<u8> {
    let mut cas = ContentAddressableStorageClient::new(channel);
    let request = BatchReadBlobsRequest {
        digests: vec![wanted.clone()],
        digest_function: SHA256,
        ..Default::default()
    };
    let mut answers = cas
        .batch_read_blobs(request)
        .await
        .expect("BatchReadBlobs")
        .into_inner();
    assert_eq!(answers.responses.len(), 1, "one answer per digest");
    let answer = answers.responses.remove(0);
    assert_eq!(answer.status.map_or(0, |s| s.code), 0, "reading {wanted:?}");
    answer.data
}

/// No silent skip: a machine without the peers fails the interop tests, naming the fix.
#[test]
#[should_panic(expected = "install the interop peers with `bash .ci/reapi-peers.sh install`")]
fn a_missing_buildgrid_fails_the_test_naming_the_install_command() {
    let empty = tempfile::tempdir().expect("temp dir");
    common::peers::bgd_in(empty.path());
}

#[test]
fn buildgrid_cache_only_advertises_sha256_only_and_round_trips_a_blob() {
    let grid = BuildGrid::cache_only();
    let cache = grid
        .capabilities()
        .cache_capabilities
        .clone()
        .expect("cache capabilities");
    assert_eq!(
        cache.digest_functions,
        vec![SHA256],
        "BuildGrid advertises SHA-256 only (so a client must not pick BLAKE3)"
    );
    assert!(
        cache
            .action_cache_update_capabilities
            .is_some_and(|c| c.update_enabled),
        "the action cache accepts updates"
    );
    assert!(
        cache.max_batch_total_size_bytes > 0,
        "a batch limit is advertised"
    );

    runtime().block_on(async {
        let blob = b"a blob from sykli's interop test".as_slice();
        let ch = channel(&grid).await;
        let mut cas = ContentAddressableStorageClient::new(ch.clone());
        let find = |digests: Vec<Digest>| FindMissingBlobsRequest {
            blob_digests: digests,
            digest_function: SHA256,
            ..Default::default()
        };
        let missing = cas
            .find_missing_blobs(find(vec![digest(blob)]))
            .await
            .unwrap();
        assert_eq!(
            missing.into_inner().missing_blob_digests,
            vec![digest(blob)]
        );
        upload(ch.clone(), &[blob]).await;
        let missing = cas
            .find_missing_blobs(find(vec![digest(blob)]))
            .await
            .unwrap();
        assert!(
            missing.into_inner().missing_blob_digests.is_empty(),
            "stored"
        );
        assert_eq!(read(ch, &digest(blob)).await, blob);
    });
}

#[test]
fn buildgrid_executes_an_action_through_the_test_bot_and_caches_its_result() {
    let mut peers = BuildGridExecution::start();
    let execution = peers
        .grid()
        .capabilities()
        .execution_capabilities
        .clone()
        .expect("execution capabilities");
    assert!(execution.exec_enabled, "execution is enabled");
    assert_eq!(execution.digest_functions, vec![SHA256]);

    let salt = format!("{:?}", std::time::SystemTime::now());
    let input = format!("hello buildgrid {salt}\n");
    let input_root = Directory {
        files: vec![FileNode {
            name: "in.txt".into(),
            digest: Some(digest(input.as_bytes())),
            ..Default::default()
        }],
        ..Default::default()
    };
    let command = Command {
        arguments: vec![
            "/bin/sh".into(),
            "-c".into(),
            "tr a-z A-Z < in.txt > out/upper.txt && echo made it".into(),
        ],
        environment_variables: vec![EnvironmentVariable {
            name: "PATH".into(),
            value: "/usr/bin:/bin".into(),
        }],
        output_paths: vec!["out/upper.txt".into()],
        ..Default::default()
    };
    let (root_bytes, command_bytes) = (input_root.encode_to_vec(), command.encode_to_vec());
    let action = Action {
        command_digest: Some(digest(&command_bytes)),
        input_root_digest: Some(digest(&root_bytes)),
        ..Default::default()
    };
    let action_bytes = action.encode_to_vec();
    let action_digest = digest(&action_bytes);

    let result: ActionResult = runtime().block_on(async {
        let ch = channel(peers.grid()).await;
        upload(
            ch.clone(),
            &[input.as_bytes(), &root_bytes, &command_bytes, &action_bytes],
        )
        .await;
        let mut exec = ExecutionClient::new(ch.clone());
        let request = ExecuteRequest {
            action_digest: Some(action_digest.clone()),
            digest_function: SHA256,
            ..Default::default()
        };
        let mut stream = exec.execute(request).await.expect("Execute").into_inner();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let response = loop {
            let next = tokio::time::timeout_at(deadline, stream.message())
                .await
                .unwrap_or_else(|_| panic!("no result within 60 s; bot log:\n{}", peers.bot_log()))
                .expect("operation stream");
            let op = next.expect("the stream ended before the operation was done");
            if !op.done {
                continue;
            }
            match op.result {
                Some(operation::Result::Response(any)) => {
                    break ExecuteResponse::decode(any.value.as_slice()).expect("ExecuteResponse");
                }
                other => panic!("operation failed: {other:?}"),
            }
        };
        assert_eq!(
            response.status.as_ref().map_or(0, |s| s.code),
            0,
            "{response:?}"
        );
        let result = response.result.expect("an ActionResult");
        assert_eq!(result.exit_code, 0, "{result:?}");
        let stdout = read(ch.clone(), result.stdout_digest.as_ref().expect("stdout")).await;
        assert_eq!(String::from_utf8_lossy(&stdout), "made it\n");
        let [file] = result.output_files.as_slice() else {
            panic!("one output file expected: {result:?}");
        };
        assert_eq!(file.path, "out/upper.txt");
        let upper = read(ch.clone(), file.digest.as_ref().expect("digest")).await;
        assert_eq!(String::from_utf8_lossy(&upper), input.to_uppercase());

        let mut ac = ActionCacheClient::new(ch);
        let cached = ac
            .get_action_result(GetActionResultRequest {
                action_digest: Some(action_digest.clone()),
                digest_function: SHA256,
                ..Default::default()
            })
            .await
            .expect("the result is in BuildGrid's action cache")
            .into_inner();
        assert_eq!(cached.output_files, result.output_files);
        result
    });
    let worker = result
        .execution_metadata
        .map(|m| m.worker)
        .unwrap_or_default();
    assert!(
        worker.starts_with("sykli-test-bot-"),
        "run by the test bot, not {worker:?}"
    );
    let (status, log) = peers.stop_bot();
    assert!(log.contains("rwapi-bot: ran "), "the bot ran it:\n{log}");
    assert!(
        status.success(),
        "the bot exits cleanly on SIGTERM ({status}):\n{log}"
    );
    assert!(
        log.contains("rwapi-bot: left session"),
        "the bot left its session:\n{log}"
    );
}

/// A project whose `build` task upper-cases `src/a.txt` (holding `text`) into `out.txt` and
/// appends a line to `runs.log` each time it really runs; `remote: true` when `remote`.
fn project(text: &str, remote: bool) -> tempfile::TempDir {
    let dir = common::project(serde_json::json!({
        "version": "1",
        "tasks": [{
            "name": "build",
            "command": "echo ran >> runs.log; tr a-z A-Z < src/a.txt > out.txt; echo built it",
            "inputs": ["src/**"],
            "outputs": {"upper": "out.txt"},
            "remote": remote,
        }]
    }));
    std::fs::create_dir(dir.path().join("src")).expect("src folder");
    std::fs::write(dir.path().join("src/a.txt"), text).expect("src/a.txt");
    dir
}

/// Runs the real `sykli` in `dir` (bounded); on failure shows `peer_logs` too.
fn run_sykli(dir: &std::path::Path, args: &[&str], peer_logs: &dyn Fn() -> String) -> String {
    let mut cmd = common::command(dir, args);
    cmd.env_remove("SYKLI_REMOTE")
        .env_remove("SYKLI_REMOTE_CACHE")
        .env_remove("SYKLI_TOKEN");
    let (status, output) = common::peers::run_bounded("sykli run", cmd, Duration::from_secs(120));
    assert!(
        status.success(),
        "sykli {args:?} failed ({status}):\n{output}\n--- peer logs:\n{}",
        peer_logs()
    );
    output
}

/// Whether BuildGrid's CAS holds `data` under its SHA-256 digest.
fn buildgrid_holds(grid: &BuildGrid, data: &[u8]) -> bool {
    runtime().block_on(async {
        let mut cas = ContentAddressableStorageClient::new(channel(grid).await);
        let request = FindMissingBlobsRequest {
            blob_digests: vec![digest(data)],
            digest_function: SHA256,
            ..Default::default()
        };
        let missing = cas
            .find_missing_blobs(request)
            .await
            .expect("FindMissingBlobs");
        missing.into_inner().missing_blob_digests.is_empty()
    })
}

#[test]
fn sykli_uses_buildgrid_as_its_remote_cache_with_sha256_across_checkouts() {
    let grid = BuildGrid::cache_only();
    let endpoint = grid.endpoint();
    let text = format!("shared cache {:?}\n", std::time::SystemTime::now());
    let first = project(&text, false);
    let output = run_sykli(first.path(), &["run", "--remote-cache", &endpoint], &|| {
        grid.log()
    });
    assert!(
        !output.contains("remote cache hit"),
        "nothing to hit yet:\n{output}"
    );
    let upper = text.to_uppercase();
    assert_eq!(
        std::fs::read_to_string(first.path().join("out.txt")).unwrap(),
        upper
    );
    // BuildGrid advertises SHA-256 only and silently accepts other functions: what it stored
    // shows which one sykli negotiated.
    assert!(
        buildgrid_holds(&grid, upper.as_bytes()),
        "BuildGrid's CAS holds the output under its SHA-256 digest"
    );
    let blake3_named = Digest {
        hash: blake3::hash(upper.as_bytes()).to_hex().to_string(),
        size_bytes: upper.len() as i64,
    };
    let found_blake3 = runtime().block_on(async {
        let mut cas = ContentAddressableStorageClient::new(channel(&grid).await);
        let request = FindMissingBlobsRequest {
            blob_digests: vec![blake3_named.clone()],
            digest_function: SHA256,
            ..Default::default()
        };
        let missing = cas
            .find_missing_blobs(request)
            .await
            .expect("FindMissingBlobs");
        missing.into_inner().missing_blob_digests.is_empty()
    });
    assert!(!found_blake3, "nothing was stored under a BLAKE3 digest");

    // A second checkout with its own local cache, in a second process.
    let second = project(&text, false);
    let output = run_sykli(
        second.path(),
        &["run", "--remote-cache", &endpoint],
        &|| grid.log(),
    );
    assert!(output.contains("remote cache hit"), "{output}");
    assert_eq!(
        std::fs::read_to_string(second.path().join("out.txt")).unwrap(),
        upper
    );
    assert!(
        !second.path().join("runs.log").exists(),
        "the second checkout did not run the task"
    );
}

#[test]
fn sykli_executes_a_task_through_buildgrid_and_the_test_bot() {
    let peers = BuildGridExecution::start();
    let text = format!("remote run {:?}\n", std::time::SystemTime::now());
    let dir = project(&text, true);
    // A short queue timeout: an action no bot takes fails with sykli's own message.
    let endpoint = peers.endpoint();
    let args = [
        "run",
        "--remote",
        &endpoint,
        "--remote-queue-timeout",
        "60s",
    ];
    let output = run_sykli(dir.path(), &args, &|| {
        let grid = common::peers::tail_text(&peers.grid().log(), 60);
        format!("{grid}\n--- bot:\n{}", peers.bot_log())
    });
    assert!(output.contains("1 passed"), "{output}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        text.to_uppercase(),
        "the output came back"
    );
    assert!(
        !dir.path().join("runs.log").exists(),
        "the task ran remotely, not here:\n{output}"
    );
    let bot = peers.bot_log();
    assert_eq!(
        bot.matches("rwapi-bot: ran ").count(),
        1,
        "the bot ran it:\n{bot}"
    );
}

/// `sykli worker --bot-of` as BuildGrid's bot: sykli sends a task through BuildGrid's
/// Execution service, BuildGrid leases it to the worker over the Remote Workers API, the
/// worker runs it with its own executors and hands the result back through BuildGrid.
#[test]
fn sykli_worker_as_buildgrid_bot_runs_a_task_sykli_sent_through_buildgrid() {
    let mut peers = BuildGridExecution::start_with_sykli_worker();
    let text = format!("worker as bot {:?}\n", std::time::SystemTime::now());
    let dir = project(&text, true);
    let endpoint = peers.endpoint();
    let args = [
        "run",
        "--remote",
        &endpoint,
        "--remote-queue-timeout",
        "60s",
    ];
    let output = run_sykli(dir.path(), &args, &|| {
        let grid = common::peers::tail_text(&peers.grid().log(), 60);
        format!("{grid}\n--- worker:\n{}", peers.bot_log())
    });
    assert!(output.contains("1 passed"), "{output}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        text.to_uppercase(),
        "the output came back through BuildGrid"
    );
    assert!(
        !dir.path().join("runs.log").exists(),
        "it ran remotely:\n{output}"
    );
    let log = peers.bot_log();
    assert_eq!(
        log.matches("ran, exit 0").count(),
        1,
        "the worker ran it:\n{log}"
    );
    let (status, log) = peers.stop_bot();
    assert!(
        status.success(),
        "the worker stops cleanly on SIGTERM ({status}):\n{log}"
    );
    assert!(
        log.contains("bot: left session"),
        "it left its session:\n{log}"
    );
}
