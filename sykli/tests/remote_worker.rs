//! `sykli worker` against a real REAPI client (the tonic stubs of bazel-remote-apis): the
//! real binary on 127.0.0.1:0, started by `common::worker`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::bytestream::byte_stream_client::ByteStreamClient;
use bazel_remote_apis::google::bytestream::{QueryWriteStatusRequest, ReadRequest, WriteRequest};
use bazel_remote_apis::google::longrunning::{Operation, operation};
use common::worker::Worker;
use prost::Message;
use reapi::action_cache_client::ActionCacheClient;
use reapi::capabilities_client::CapabilitiesClient;
use reapi::content_addressable_storage_client::ContentAddressableStorageClient;
use reapi::execution_client::ExecutionClient;
use tonic::transport::Channel;

const BLAKE3: i32 = 9;
const SHA256: i32 = 1;

fn hash(function: i32, bytes: &[u8]) -> String {
    match function {
        BLAKE3 => blake3::hash(bytes).to_hex().to_string(),
        _ => {
            use sha2::Digest as _;
            sha2::Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        }
    }
}

fn digest(function: i32, bytes: &[u8]) -> reapi::Digest {
    reapi::Digest {
        hash: hash(function, bytes),
        size_bytes: bytes.len() as i64,
    }
}

async fn channel(w: &Worker) -> Channel {
    Channel::from_shared(w.http_url())
        .expect("url")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}; stderr:\n{}", w.url, w.stderr()))
}

/// A client of one worker under one digest function.
struct Client {
    ch: Channel,
    function: i32,
}

impl Client {
    async fn new(w: &Worker, function: i32) -> Client {
        Client {
            ch: channel(w).await,
            function,
        }
    }

    fn digest(&self, bytes: &[u8]) -> reapi::Digest {
        digest(self.function, bytes)
    }

    async fn upload(&self, blobs: &[&[u8]]) -> Vec<reapi::Digest> {
        let mut cas = ContentAddressableStorageClient::new(self.ch.clone());
        let requests = blobs
            .iter()
            .map(|b| reapi::batch_update_blobs_request::Request {
                digest: Some(self.digest(b)),
                data: b.to_vec(),
                compressor: 0,
            })
            .collect();
        let resp = cas
            .batch_update_blobs(reapi::BatchUpdateBlobsRequest {
                requests,
                digest_function: self.function,
                ..Default::default()
            })
            .await
            .expect("BatchUpdateBlobs")
            .into_inner();
        for r in &resp.responses {
            assert_eq!(r.status.as_ref().map(|s| s.code), Some(0), "{r:?}");
        }
        blobs.iter().map(|b| self.digest(b)).collect()
    }

    async fn read(&self, d: &reapi::Digest) -> Vec<u8> {
        let mut cas = ContentAddressableStorageClient::new(self.ch.clone());
        let resp = cas
            .batch_read_blobs(reapi::BatchReadBlobsRequest {
                digests: vec![d.clone()],
                digest_function: self.function,
                ..Default::default()
            })
            .await
            .expect("BatchReadBlobs")
            .into_inner();
        let r = &resp.responses[0];
        assert_eq!(r.status.as_ref().map(|s| s.code), Some(0), "{r:?}");
        r.data.clone()
    }

    /// Uploads a flat input root of `files` (name -> (content, executable)).
    async fn input_root(&self, files: &[(&str, &[u8], bool)]) -> reapi::Digest {
        let mut dir = reapi::Directory::default();
        let mut blobs: Vec<&[u8]> = Vec::new();
        let mut sorted = files.to_vec();
        sorted.sort_by_key(|f| f.0);
        for (name, content, exe) in sorted {
            dir.files.push(reapi::FileNode {
                name: name.into(),
                digest: Some(self.digest(content)),
                is_executable: exe,
                node_properties: None,
            });
            blobs.push(content);
        }
        let bytes = dir.encode_to_vec();
        blobs.push(&bytes);
        self.upload(&blobs).await;
        self.digest(&bytes)
    }

    /// Uploads the Command and Action of `script` and returns the Action digest.
    async fn action(&self, spec: ActionSpec<'_>) -> reapi::Digest {
        let command = reapi::Command {
            arguments: spec.argv.iter().map(|a| a.to_string()).collect(),
            environment_variables: spec
                .env
                .iter()
                .map(|(k, v)| reapi::command::EnvironmentVariable {
                    name: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            output_paths: spec.outputs.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        };
        let cmd_bytes = command.encode_to_vec();
        let action = reapi::Action {
            command_digest: Some(self.digest(&cmd_bytes)),
            input_root_digest: Some(spec.root),
            timeout: spec
                .timeout_secs
                .map(|s| bazel_remote_apis::google::protobuf::Duration {
                    seconds: s,
                    nanos: 0,
                }),
            do_not_cache: false,
            salt: spec.salt.to_vec(),
            platform: Some(reapi::Platform {
                properties: spec
                    .platform
                    .iter()
                    .map(|(n, v)| reapi::platform::Property {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            }),
        };
        let action_bytes = action.encode_to_vec();
        self.upload(&[&cmd_bytes, &action_bytes]).await;
        self.digest(&action_bytes)
    }

    async fn execute(&self, action: &reapi::Digest, skip_cache: bool) -> reapi::ExecuteResponse {
        self.execute_with(action, skip_cache, None)
            .await
            .expect("Execute")
    }

    async fn execute_with(
        &self,
        action: &reapi::Digest,
        skip_cache: bool,
        secrets: Option<&str>,
    ) -> Result<reapi::ExecuteResponse, tonic::Status> {
        let mut exec = ExecutionClient::new(self.ch.clone());
        let mut req = tonic::Request::new(reapi::ExecuteRequest {
            action_digest: Some(action.clone()),
            skip_cache_lookup: skip_cache,
            digest_function: self.function,
            ..Default::default()
        });
        if let Some(json) = secrets {
            req.metadata_mut().insert_bin(
                "x-sykli-secrets-bin",
                tonic::metadata::MetadataValue::from_bytes(json.as_bytes()),
            );
        }
        let mut stream = exec.execute(req).await?.into_inner();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last: Option<Operation> = None;
        while let Some(op) = tokio::time::timeout_at(deadline.into(), stream.message())
            .await
            .expect("the operation finished within its deadline")?
        {
            let done = op.done;
            last = Some(op);
            if done {
                break;
            }
        }
        let op = last.expect("at least one operation message");
        assert!(
            op.done,
            "the stream ended before the operation was done: {op:?}"
        );
        match op.result {
            Some(operation::Result::Response(any)) => {
                Ok(reapi::ExecuteResponse::decode(&any.value[..]).expect("an ExecuteResponse"))
            }
            other => panic!("operation without a response: {other:?}"),
        }
    }
}

struct ActionSpec<'a> {
    argv: Vec<&'a str>,
    env: Vec<(&'a str, &'a str)>,
    outputs: Vec<&'a str>,
    root: reapi::Digest,
    timeout_secs: Option<i64>,
    platform: Vec<(&'a str, &'a str)>,
    salt: &'a [u8],
}

impl<'a> ActionSpec<'a> {
    fn shell(script: &'a str, root: reapi::Digest) -> Self {
        ActionSpec {
            argv: vec!["/bin/sh", "-c", script],
            env: Vec::new(),
            outputs: Vec::new(),
            root,
            timeout_secs: None,
            platform: Vec::new(),
            salt: b"",
        }
    }
}

fn status_code(r: &reapi::ExecuteResponse) -> i32 {
    r.status.as_ref().map_or(0, |s| s.code)
}

fn store(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("store")
}

async fn run_shell_action_with_input_and_output(function: i32) {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &["--jobs", "2"]);
    let c = Client::new(&w, function).await;
    let root = c
        .input_root(&[
            ("in.txt", b"hello worker\n", false),
            ("tool.sh", b"echo tool ran\n", true),
        ])
        .await;
    let mut spec = ActionSpec::shell(
        "tr a-z A-Z < in.txt > out/up.txt && ./tool.sh && mkdir -p tree/sub && \
         echo leaf > tree/sub/leaf && printf '#!/bin/sh\\n' > tree/run && chmod +x tree/run && \
         echo to-stderr >&2",
        root,
    );
    spec.outputs = vec!["out/up.txt", "tree"];
    let action = c.action(spec).await;

    let first = c.execute(&action, false).await;
    assert_eq!(status_code(&first), 0, "{first:?}\n{}", w.stderr());
    assert!(!first.cached_result);
    let result = first.result.clone().expect("a result");
    assert_eq!(result.exit_code, 0, "{result:?}");
    let stdout = c.read(result.stdout_digest.as_ref().unwrap()).await;
    assert_eq!(stdout, b"tool ran\n");
    let stderr = c.read(result.stderr_digest.as_ref().unwrap()).await;
    assert_eq!(stderr, b"to-stderr\n");
    assert_eq!(result.output_files.len(), 1, "{result:?}");
    assert_eq!(result.output_files[0].path, "out/up.txt");
    assert_eq!(
        c.read(result.output_files[0].digest.as_ref().unwrap())
            .await,
        b"HELLO WORKER\n"
    );
    assert_eq!(result.output_directories.len(), 1, "{result:?}");
    let tree_bytes = c
        .read(result.output_directories[0].tree_digest.as_ref().unwrap())
        .await;
    let tree = reapi::Tree::decode(&tree_bytes[..]).unwrap();
    let root_dir = tree.root.unwrap();
    assert_eq!(root_dir.files.len(), 1);
    assert_eq!(root_dir.files[0].name, "run");
    assert!(
        root_dir.files[0].is_executable,
        "the executable bit is kept"
    );
    assert_eq!(root_dir.directories[0].name, "sub");
    assert_eq!(tree.children.len(), 1);
    assert_eq!(
        c.read(tree.children[0].files[0].digest.as_ref().unwrap())
            .await,
        b"leaf\n"
    );
    let meta = result.execution_metadata.as_ref().expect("metadata");
    assert!(meta.execution_start_timestamp.is_some() && meta.worker_completed_timestamp.is_some());

    // The result is cached: a second Execute is answered from the action cache...
    let second = c.execute(&action, false).await;
    assert!(second.cached_result, "{second:?}");
    assert_eq!(
        second.result.as_ref().unwrap().output_files,
        result.output_files
    );
    // ... and through GetActionResult; skip_cache_lookup runs it again.
    let mut ac = ActionCacheClient::new(c.ch.clone());
    let cached = ac
        .get_action_result(reapi::GetActionResultRequest {
            action_digest: Some(action.clone()),
            digest_function: function,
            inline_stdout: true,
            ..Default::default()
        })
        .await
        .expect("GetActionResult")
        .into_inner();
    assert_eq!(cached.stdout_raw, b"tool ran\n");
    let third = c.execute(&action, true).await;
    assert!(!third.cached_result);
    assert_eq!(third.result.unwrap().exit_code, 0);
    // Nothing of the action's directory stays behind (removed right after the answer).
    let exec = store(&dir).join("exec");
    let until = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&exec).unwrap().count() > 0 {
        assert!(Instant::now() < until, "exec/ is emptied after each action");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn shell_action_with_input_and_output_blake3() {
    run_shell_action_with_input_and_output(BLAKE3).await;
}

#[tokio::test]
async fn shell_action_with_input_and_output_sha256() {
    run_shell_action_with_input_and_output(SHA256).await;
}

#[tokio::test]
async fn a_failing_action_reports_its_exit_code_and_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, BLAKE3).await;
    let root = c.input_root(&[]).await;
    let action = c.action(ActionSpec::shell("echo nope; exit 3", root)).await;
    let r = c.execute(&action, false).await;
    assert_eq!(status_code(&r), 0, "{r:?}");
    assert_eq!(r.result.as_ref().unwrap().exit_code, 3);
    let again = c.execute(&action, false).await;
    assert!(
        !again.cached_result,
        "a failure is not served from the cache"
    );
}

#[tokio::test]
async fn a_missing_input_is_failed_precondition_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, SHA256).await;
    let gone = c.digest(b"never uploaded");
    let root_dir = reapi::Directory {
        files: vec![reapi::FileNode {
            name: "gone.txt".into(),
            digest: Some(gone.clone()),
            is_executable: false,
            node_properties: None,
        }],
        ..Default::default()
    };
    let root_bytes = root_dir.encode_to_vec();
    c.upload(&[&root_bytes]).await;
    let action = c
        .action(ActionSpec::shell("cat gone.txt", c.digest(&root_bytes)))
        .await;
    let r = c.execute(&action, false).await;
    let st = r.status.expect("a status");
    assert_eq!(st.code, tonic::Code::FailedPrecondition as i32, "{st:?}");
    assert!(st.message.contains(&gone.hash), "{}", st.message);
    assert_eq!(st.details.len(), 1, "a PreconditionFailure detail");
}

#[tokio::test]
async fn capabilities_advertise_both_functions_and_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(
        &store(&dir),
        &["--label", "pool=big", "--label", "gpu=true"],
    );
    let mut caps = CapabilitiesClient::new(channel(&w).await);
    let resp = caps
        .get_capabilities(reapi::GetCapabilitiesRequest::default())
        .await
        .expect("GetCapabilities");
    assert_eq!(
        resp.metadata()
            .get("x-sykli-worker")
            .map(|v| v.as_bytes().to_vec()),
        Some(b"1".to_vec())
    );
    let labels = resp
        .metadata()
        .get("x-sykli-worker-labels")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        labels.contains("pool=big") && labels.contains("gpu=true"),
        "{labels}"
    );
    assert!(labels.contains("OSFamily=linux"), "{labels}");
    let caps = resp.into_inner();
    let cache = caps.cache_capabilities.unwrap();
    assert!(cache.digest_functions.contains(&BLAKE3) && cache.digest_functions.contains(&SHA256));
    assert!(cache.max_batch_total_size_bytes > 0);
    assert!(cache.max_batch_total_size_bytes < 4 * 1024 * 1024);
    assert!(
        cache
            .action_cache_update_capabilities
            .unwrap()
            .update_enabled
    );
    let exec = caps.execution_capabilities.unwrap();
    assert!(exec.exec_enabled);
    assert!(exec.digest_functions.contains(&BLAKE3) && exec.digest_functions.contains(&SHA256));
    let (low, high) = (
        caps.low_api_version.unwrap(),
        caps.high_api_version.unwrap(),
    );
    assert_eq!((low.major, low.minor), (2, 0));
    assert!(high.major == 2 && high.minor >= 2);
}

/// A blob over gRPC's 4 MiB limit through ByteStream (BLAKE3 names), an interrupted upload
/// resumed at the offset QueryWriteStatus gives, and reads with an offset.
#[tokio::test]
async fn large_blobs_travel_by_bytestream_with_resumable_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, BLAKE3).await;
    let big: Vec<u8> = (0..5 * 1024 * 1024 + 7)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let d = c.digest(&big);
    let name = format!(
        "inst/uploads/6d1c0f1e-0000-4000-8000-000000000001/blobs/blake3/{}/{}",
        d.hash, d.size_bytes
    );
    let chunk = 1024 * 1024;
    let mut bs = ByteStreamClient::new(c.ch.clone());

    // First two chunks, then the stream ends without finish_write.
    let first: Vec<WriteRequest> = (0..2)
        .map(|i| WriteRequest {
            resource_name: if i == 0 { name.clone() } else { String::new() },
            write_offset: (i * chunk) as i64,
            finish_write: false,
            data: big[i * chunk..(i + 1) * chunk].to_vec(),
        })
        .collect();
    let err = bs
        .write(futures::stream::iter(first))
        .await
        .expect_err("an unfinished write is not a success");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let status = bs
        .query_write_status(QueryWriteStatusRequest {
            resource_name: name.clone(),
        })
        .await
        .expect("QueryWriteStatus")
        .into_inner();
    assert_eq!(status.committed_size, 2 * chunk as i64);
    assert!(!status.complete);

    // Resume at the committed offset.
    let offset = status.committed_size as usize;
    let rest: Vec<WriteRequest> = big[offset..]
        .chunks(chunk)
        .enumerate()
        .map(|(i, data)| WriteRequest {
            resource_name: if i == 0 { name.clone() } else { String::new() },
            write_offset: (offset + i * chunk) as i64,
            finish_write: offset + (i + 1) * chunk >= big.len(),
            data: data.to_vec(),
        })
        .collect();
    let done = bs
        .write(futures::stream::iter(rest))
        .await
        .expect("the resumed write")
        .into_inner();
    assert_eq!(done.committed_size, big.len() as i64);

    let mut cas = ContentAddressableStorageClient::new(c.ch.clone());
    let missing = cas
        .find_missing_blobs(reapi::FindMissingBlobsRequest {
            blob_digests: vec![d.clone(), c.digest(b"absent")],
            digest_function: BLAKE3,
            ..Default::default()
        })
        .await
        .expect("FindMissingBlobs")
        .into_inner()
        .missing_blob_digests;
    assert_eq!(missing, vec![c.digest(b"absent")]);

    // Read it all back, then from an offset with a limit.
    let read_name = format!("inst/blobs/blake3/{}/{}", d.hash, d.size_bytes);
    let mut stream = bs
        .read(ReadRequest {
            resource_name: read_name.clone(),
            read_offset: 0,
            read_limit: 0,
        })
        .await
        .expect("Read")
        .into_inner();
    let mut back = Vec::new();
    while let Some(msg) = stream.message().await.expect("a read chunk") {
        assert!(msg.data.len() <= 4 * 1024 * 1024 - 1024);
        back.extend_from_slice(&msg.data);
    }
    assert!(back == big, "the blob reads back as written");
    let mut part = bs
        .read(ReadRequest {
            resource_name: read_name,
            read_offset: 10,
            read_limit: 5,
        })
        .await
        .expect("Read")
        .into_inner();
    let msg = part.message().await.unwrap().unwrap();
    assert_eq!(msg.data, big[10..15]);

    // The same blob under SHA-256 is a different blob: missing until uploaded.
    let sha = Client::new(&w, SHA256).await;
    let sha_missing = ContentAddressableStorageClient::new(sha.ch.clone())
        .find_missing_blobs(reapi::FindMissingBlobsRequest {
            blob_digests: vec![sha.digest(&big)],
            digest_function: SHA256,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .missing_blob_digests;
    assert_eq!(sha_missing.len(), 1);
}

#[tokio::test]
async fn a_digest_mismatch_is_refused_by_batch_and_bytestream() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, SHA256).await;
    let claimed = c.digest(b"the real content");
    let mut cas = ContentAddressableStorageClient::new(c.ch.clone());
    let resp = cas
        .batch_update_blobs(reapi::BatchUpdateBlobsRequest {
            requests: vec![reapi::batch_update_blobs_request::Request {
                digest: Some(claimed.clone()),
                data: b"the fake content".to_vec(),
                compressor: 0,
            }],
            digest_function: SHA256,
            ..Default::default()
        })
        .await
        .expect("BatchUpdateBlobs answers per blob")
        .into_inner();
    let st = resp.responses[0].status.clone().unwrap();
    assert_eq!(st.code, tonic::Code::InvalidArgument as i32, "{st:?}");
    assert!(
        st.message.contains("mismatch") && st.message.contains(&claimed.hash),
        "{}",
        st.message
    );

    let mut bs = ByteStreamClient::new(c.ch.clone());
    let name = format!("uploads/u1/blobs/{}/{}", claimed.hash, claimed.size_bytes);
    let err = bs
        .write(futures::stream::iter(vec![WriteRequest {
            resource_name: name,
            write_offset: 0,
            finish_write: true,
            data: b"the fake content".to_vec(),
        }]))
        .await
        .expect_err("a mismatching upload is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("mismatch"), "{}", err.message());

    let missing = cas
        .find_missing_blobs(reapi::FindMissingBlobsRequest {
            blob_digests: vec![claimed.clone()],
            digest_function: SHA256,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .missing_blob_digests;
    assert_eq!(missing, vec![claimed], "nothing was stored");
    // An unsupported function is refused, naming it.
    let err = cas
        .find_missing_blobs(reapi::FindMissingBlobsRequest {
            digest_function: 3,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("digest_function 3"),
        "{}",
        err.message()
    );
}

fn pid_alive(pid: i32) -> bool {
    // Zombies do not count: they are gone, only not yet reaped.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn wait_dead(pid: i32, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !pid_alive(pid)
}

fn read_pid(path: &Path, deadline: Duration) -> i32 {
    let until = Instant::now() + deadline;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(
            Instant::now() < until,
            "no pid in {} within {deadline:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An action that starts a grandchild (`sleep 1000`), writes its pid to `pidfile` on the host
/// (the worker must not sandbox), prints `started` and waits; `timeout_secs` its timeout.
async fn grandchild_action(c: &Client, pidfile: &Path, timeout_secs: Option<i64>) -> reapi::Digest {
    let root = c.input_root(&[]).await;
    let pidfile_s = pidfile.to_string_lossy().into_owned();
    let mut spec = ActionSpec::shell(
        "sleep 1000 & echo $! > \"$PIDFILE\"; echo started; wait",
        root,
    );
    spec.env = vec![("PIDFILE", &pidfile_s)];
    spec.timeout_secs = timeout_secs;
    c.action(spec).await
}

#[tokio::test]
async fn a_timed_out_action_is_deadline_exceeded_and_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    // The action writes a pid or counter file on the host: no sandbox.
    let w = Worker::start(&store(&dir), &["--no-sandbox"]);
    let c = Client::new(&w, BLAKE3).await;
    let pidfile = dir.path().join("grandchild.pid");
    let action = grandchild_action(&c, &pidfile, Some(1)).await;
    let started = Instant::now();
    let r = c.execute(&action, false).await;
    let st = r.status.clone().unwrap();
    assert_eq!(st.code, tonic::Code::DeadlineExceeded as i32, "{st:?}");
    assert!(st.message.contains("timed out"), "{}", st.message);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped promptly"
    );
    let stdout = c
        .read(r.result.as_ref().unwrap().stdout_digest.as_ref().unwrap())
        .await;
    assert_eq!(stdout, b"started\n", "the output up to the timeout is kept");
    let pid = read_pid(&pidfile, Duration::from_secs(5));
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "grandchild {pid} was left running"
    );
    // A timed-out action is not cached.
    let again = c.execute(&action, false).await;
    assert!(!again.cached_result);
}

/// Regression: a client holding an Execute stream open without reading it (here: this
/// single-threaded test, blocked waiting for the worker) kept the worker's graceful
/// shutdown waiting forever.
#[tokio::test]
async fn sigterm_stops_the_worker_and_its_running_actions() {
    let dir = tempfile::tempdir().unwrap();
    // The action writes a pid or counter file on the host: no sandbox.
    let mut w = Worker::start(&store(&dir), &["--no-sandbox"]);
    let c = Client::new(&w, BLAKE3).await;
    let root = c.input_root(&[]).await;
    let pidfile = dir.path().join("sleeper.pid");
    let pidfile_s = pidfile.to_string_lossy().into_owned();
    let mut spec = ActionSpec::shell("sleep 1000 & echo $! > \"$PIDFILE\"; wait", root);
    spec.env = vec![("PIDFILE", &pidfile_s)];
    let action = c.action(spec).await;
    let mut exec = ExecutionClient::new(c.ch.clone());
    let _stream = exec
        .execute(reapi::ExecuteRequest {
            action_digest: Some(action),
            digest_function: BLAKE3,
            ..Default::default()
        })
        .await
        .expect("Execute");
    let pid = read_pid(&pidfile, Duration::from_secs(30));
    assert!(pid_alive(pid));
    let stopping = Instant::now();
    let status = w.terminate(Duration::from_secs(30));
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "stopped in {:?}",
        stopping.elapsed()
    );
    assert!(
        status.success(),
        "a clean stop: {status:?}; stderr:\n{}",
        w.stderr()
    );
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "action process {pid} outlived the worker"
    );
}

#[tokio::test]
async fn concurrent_executions_of_one_action_share_an_operation() {
    let dir = tempfile::tempdir().unwrap();
    // The action writes a pid or counter file on the host: no sandbox.
    let w = Worker::start(&store(&dir), &["--no-sandbox"]);
    let c = Client::new(&w, SHA256).await;
    let root = c.input_root(&[]).await;
    let counter = dir.path().join("runs");
    let counter_s = counter.to_string_lossy().into_owned();
    let mut spec = ActionSpec::shell("echo run >> \"$COUNTER\"; sleep 1", root);
    spec.env = vec![("COUNTER", &counter_s)];
    let action = c.action(spec).await;
    let (a, b) = tokio::join!(c.execute(&action, true), c.execute(&action, true));
    assert_eq!(a.result.unwrap().exit_code, 0);
    assert_eq!(b.result.unwrap().exit_code, 0);
    let runs = std::fs::read_to_string(&counter).unwrap();
    assert_eq!(
        runs.lines().count(),
        1,
        "in-flight executions were deduplicated"
    );
}

#[tokio::test]
async fn a_platform_property_the_worker_lacks_is_failed_precondition_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &["--label", "pool=small"]);
    let c = Client::new(&w, BLAKE3).await;
    let root = c.input_root(&[]).await;
    let mut spec = ActionSpec::shell("true", root.clone());
    spec.platform = vec![("pool", "big")];
    let action = c.action(spec).await;
    let err = c.execute_with(&action, false, None).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains("pool=big"), "{}", err.message());
    // What it has matches, the host's OSFamily included.
    let mut ok = ActionSpec::shell("true", root);
    ok.platform = vec![("OSFamily", "Linux"), ("pool", "small")];
    let action = c.action(ok).await;
    assert_eq!(c.execute(&action, false).await.result.unwrap().exit_code, 0);
}

#[tokio::test]
async fn an_unauthenticated_call_is_refused_when_a_token_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "worker-token-123\n").unwrap();
    let w = Worker::start(
        &store(&dir),
        &["--token-file", token_file.to_str().unwrap()],
    );
    let ch = channel(&w).await;
    let err = CapabilitiesClient::new(ch.clone())
        .get_capabilities(reapi::GetCapabilitiesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = ContentAddressableStorageClient::new(ch.clone())
        .find_missing_blobs(reapi::FindMissingBlobsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    use sykli::runtime::remote::auth::{ClientAuth, Token};
    let wrong = ClientAuth::new(Some(Token::new("worker-token-12").unwrap()));
    let err = CapabilitiesClient::with_interceptor(ch.clone(), wrong)
        .get_capabilities(reapi::GetCapabilitiesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let right = ClientAuth::new(Some(Token::new("worker-token-123").unwrap()));
    CapabilitiesClient::with_interceptor(ch.clone(), right)
        .get_capabilities(reapi::GetCapabilitiesRequest::default())
        .await
        .expect("the right token is accepted");

    // SYKLI_TOKEN works the same way.
    let dir2 = tempfile::tempdir().unwrap();
    let w2 = Worker::start_with_env(&store(&dir2), &[], &[("SYKLI_TOKEN", "env-token")]);
    let err = CapabilitiesClient::new(channel(&w2).await)
        .get_capabilities(reapi::GetCapabilitiesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn tls_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let w = Worker::start(
        &store(&dir),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(w.url.starts_with("grpcs://127.0.0.1:"), "{}", w.url);
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let ch = Channel::from_shared(w.http_url())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("a TLS connection");
    let caps = CapabilitiesClient::new(ch)
        .get_capabilities(reapi::GetCapabilitiesRequest::default())
        .await
        .expect("GetCapabilities over TLS")
        .into_inner();
    assert!(caps.execution_capabilities.unwrap().exec_enabled);
    // Plaintext to a TLS port fails.
    let plain = Channel::from_shared(w.http_url().replacen(
        "https://localhost",
        "http://127.0.0.1",
        1,
    ))
    .unwrap()
    .connect()
    .await;
    if let Ok(ch) = plain {
        assert!(
            CapabilitiesClient::new(ch)
                .get_capabilities(reapi::GetCapabilitiesRequest::default())
                .await
                .is_err()
        );
    }
}

fn files_containing(root: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    hits
}

#[tokio::test]
async fn secrets_from_metadata_are_masked_and_stored_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, BLAKE3).await;
    let root = c.input_root(&[]).await;
    let action = c
        .action(ActionSpec::shell(
            // The script must not hold the value itself: it would be in the Command blob.
            "echo \"key=$API_KEY\"; echo \"err $API_KEY\" >&2; test \"${#API_KEY}\" = 15",
            root,
        ))
        .await;
    let r = c
        .execute_with(&action, false, Some(r#"{"API_KEY": "s3cr3t-VALUE-93"}"#))
        .await
        .expect("Execute with secrets");
    let result = r.result.expect("a result");
    assert_eq!(result.exit_code, 0, "the action saw the secret's value");
    let stdout = c.read(result.stdout_digest.as_ref().unwrap()).await;
    assert_eq!(stdout, b"key=***\n");
    let stderr = c.read(result.stderr_digest.as_ref().unwrap()).await;
    assert_eq!(stderr, b"err ***\n");
    let hits = files_containing(&store(&dir), b"s3cr3t-VALUE-93");
    assert!(hits.is_empty(), "the secret value is stored in {hits:?}");
    // Malformed secrets metadata is refused without echoing it.
    let err = c
        .execute_with(&action, true, Some("not json s3cr3t"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(!err.message().contains("s3cr3t"), "{}", err.message());
}

#[tokio::test]
async fn a_killed_worker_restarted_on_its_store_keeps_blobs_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, SHA256).await;
    let root = c.input_root(&[("a.txt", b"persist me", false)]).await;
    let mut spec = ActionSpec::shell("cat a.txt > b.txt", root);
    spec.outputs = vec!["b.txt"];
    let action = c.action(spec).await;
    assert_eq!(c.execute(&action, false).await.result.unwrap().exit_code, 0);
    w.restart();
    let c = Client::new(&w, SHA256).await;
    let again = c.execute(&action, false).await;
    assert!(again.cached_result, "{again:?}");
    let out = &again.result.unwrap().output_files[0];
    assert_eq!(c.read(out.digest.as_ref().unwrap()).await, b"persist me");
}

#[tokio::test]
async fn a_container_action_runs_in_its_image() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let mut caps = CapabilitiesClient::new(channel(&w).await);
    let labels = caps
        .get_capabilities(reapi::GetCapabilitiesRequest::default())
        .await
        .unwrap()
        .metadata()
        .get("x-sykli-worker-labels")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        labels.contains("container-image="),
        "a Docker engine runs here (.ci/docker-setup.sh), so the worker offers containers: {labels}"
    );
    let c = Client::new(&w, BLAKE3).await;
    let root = c
        .input_root(&[("in.txt", b"from the input root\n", false)])
        .await;
    let mut spec = ActionSpec::shell(
        "cat in.txt > out.txt && cat /etc/os-release > os.txt; echo in-container",
        root,
    );
    spec.outputs = vec!["out.txt", "os.txt"];
    spec.platform = vec![("container-image", "docker://sykli-test/busybox")];
    let action = c.action(spec).await;
    let r = c.execute(&action, false).await;
    assert_eq!(status_code(&r), 0, "{r:?}\n{}", w.stderr());
    let result = r.result.unwrap();
    assert_eq!(result.exit_code, 0);
    let by_path: BTreeMap<String, reapi::Digest> = result
        .output_files
        .iter()
        .map(|f| (f.path.clone(), f.digest.clone().unwrap()))
        .collect();
    assert_eq!(c.read(&by_path["out.txt"]).await, b"from the input root\n");
    let stdout = c.read(result.stdout_digest.as_ref().unwrap()).await;
    assert_eq!(stdout, b"in-container\n");
}

/// Regression: the worker's sockets lacked TCP_NODELAY, so each streamed answer waited out
/// the client's delayed ACK (about 40 ms per Execute, 45 ms per no-op action). Every Execute
/// paid it, so even the fastest of 15 stayed above 40 ms; the fastest is what is asserted, so
/// a loaded machine slowing some of them does not fail the test.
#[tokio::test]
async fn streamed_answers_are_not_held_back_by_delayed_acks() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &["--no-sandbox"]);
    let c = Client::new(&w, BLAKE3).await;
    let root = c.input_root(&[]).await;
    let action = c.action(ActionSpec::shell("true", root)).await;
    assert_eq!(c.execute(&action, false).await.result.unwrap().exit_code, 0);
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..15 {
        // Run each time: the operation streams QUEUED, EXECUTING and done as separate writes.
        let t = Instant::now();
        assert!(!c.execute(&action, true).await.cached_result);
        times.push(t.elapsed());
    }
    times.sort();
    assert!(
        times[0] < Duration::from_millis(30),
        "the fastest no-op Execute took {:?}: {times:?}",
        times[0]
    );
}

#[tokio::test]
async fn a_dropped_execute_stream_is_picked_up_by_wait_execution() {
    use bazel_remote_apis::google::longrunning::GetOperationRequest;
    use bazel_remote_apis::google::longrunning::operations_client::OperationsClient;
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, SHA256).await;
    let root = c.input_root(&[]).await;
    let action = c
        .action(ActionSpec::shell("sleep 1; echo waited", root))
        .await;
    let mut exec = ExecutionClient::new(c.ch.clone());
    let mut stream = exec
        .execute(reapi::ExecuteRequest {
            action_digest: Some(action.clone()),
            digest_function: SHA256,
            ..Default::default()
        })
        .await
        .expect("Execute")
        .into_inner();
    let first = stream.message().await.unwrap().expect("a first operation");
    assert!(!first.done);
    assert!(first.name.starts_with("operations/"), "{}", first.name);
    drop(stream);

    let mut wait = exec
        .wait_execution(reapi::WaitExecutionRequest {
            name: first.name.clone(),
        })
        .await
        .expect("WaitExecution")
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = None;
    while let Some(op) = tokio::time::timeout_at(deadline.into(), wait.message())
        .await
        .expect("done within the deadline")
        .unwrap()
    {
        if op.done {
            done = Some(op);
            break;
        }
    }
    let done = done.expect("WaitExecution ends with the done operation");
    let Some(operation::Result::Response(any)) = done.result else {
        panic!("no response in {done:?}");
    };
    let response = reapi::ExecuteResponse::decode(&any.value[..]).unwrap();
    let stdout = c
        .read(response.result.unwrap().stdout_digest.as_ref().unwrap())
        .await;
    assert_eq!(stdout, b"waited\n");

    let mut ops = OperationsClient::new(c.ch.clone());
    let got = ops
        .get_operation(GetOperationRequest {
            name: first.name.clone(),
        })
        .await
        .expect("GetOperation")
        .into_inner();
    assert!(got.done);
    let err = exec
        .wait_execution(reapi::WaitExecutionRequest {
            name: "operations/unknown".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

/// While an action runs its output can be followed through the stream names the operation
/// gives (ByteStream Read), secrets masked; the read ends when the action does.
#[tokio::test]
async fn live_output_is_readable_while_the_action_runs() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, BLAKE3).await;
    let root = c.input_root(&[]).await;
    let go = dir.path().join("go");
    let go_s = go.to_string_lossy().into_owned();
    let mut spec = ActionSpec::shell(
        "echo \"first $TOKEN\"; i=0; while [ ! -e \"$GO\" ] && [ $i -lt 600 ]; do sleep 0.05; \
         i=$((i+1)); done; echo second",
        root,
    );
    spec.env = vec![("GO", &go_s)];
    let action = c.action(spec).await;
    let mut exec = ExecutionClient::new(c.ch.clone());
    let mut req = tonic::Request::new(reapi::ExecuteRequest {
        action_digest: Some(action),
        digest_function: BLAKE3,
        ..Default::default()
    });
    req.metadata_mut().insert_bin(
        "x-sykli-secrets-bin",
        tonic::metadata::MetadataValue::from_bytes(br#"{"TOKEN": "live-secret-77"}"#),
    );
    let mut ops = exec.execute(req).await.expect("Execute").into_inner();
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream_name = loop {
        let op = tokio::time::timeout_at(deadline.into(), ops.message())
            .await
            .expect("EXECUTING within the deadline")
            .unwrap()
            .expect("the operation is not done yet");
        let meta =
            reapi::ExecuteOperationMetadata::decode(&op.metadata.unwrap().value[..]).unwrap();
        if !meta.stdout_stream_name.is_empty() {
            assert!(!meta.stderr_stream_name.is_empty());
            break meta.stdout_stream_name;
        }
    };
    let mut bs = ByteStreamClient::new(c.ch.clone());
    let mut live = bs
        .read(ReadRequest {
            resource_name: stream_name,
            read_offset: 0,
            read_limit: 0,
        })
        .await
        .expect("Read of the live stdout")
        .into_inner();
    let mut seen = Vec::new();
    while !seen.ends_with(b"first ***\n") {
        let msg = tokio::time::timeout_at(deadline.into(), live.message())
            .await
            .expect("the first line arrives while the action still runs")
            .unwrap()
            .expect("more output");
        seen.extend_from_slice(&msg.data);
    }
    assert!(!go.exists(), "the action is still waiting");
    std::fs::write(&go, "").unwrap();
    while let Some(msg) = tokio::time::timeout_at(deadline.into(), live.message())
        .await
        .expect("the live read ends with the action")
        .unwrap()
    {
        seen.extend_from_slice(&msg.data);
    }
    assert_eq!(seen, b"first ***\nsecond\n");
}

/// The action cache holds only complete results: an update naming blobs not uploaded is
/// refused, and a result whose output directory lost a file is a miss.
#[tokio::test]
async fn the_action_cache_holds_only_complete_results() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, SHA256).await;
    let mut ac = ActionCacheClient::new(c.ch.clone());
    let action = c.digest(b"some action");
    let missing = c.digest(b"never uploaded output");
    let err = ac
        .update_action_result(reapi::UpdateActionResultRequest {
            action_digest: Some(action.clone()),
            action_result: Some(reapi::ActionResult {
                output_files: vec![reapi::OutputFile {
                    path: "out".into(),
                    digest: Some(missing.clone()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            digest_function: SHA256,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains(&missing.hash), "{}", err.message());

    // A complete result is stored and served...
    let file = c.upload(&[b"inside the tree"]).await.remove(0);
    let tree = reapi::Tree {
        root: Some(reapi::Directory {
            files: vec![reapi::FileNode {
                name: "f".into(),
                digest: Some(file.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        children: Vec::new(),
    };
    let tree_bytes = tree.encode_to_vec();
    let tree_digest = c.upload(&[&tree_bytes]).await.remove(0);
    let result = reapi::ActionResult {
        output_directories: vec![reapi::OutputDirectory {
            path: "d".into(),
            tree_digest: Some(tree_digest),
            ..Default::default()
        }],
        ..Default::default()
    };
    ac.update_action_result(reapi::UpdateActionResultRequest {
        action_digest: Some(action.clone()),
        action_result: Some(result),
        digest_function: SHA256,
        ..Default::default()
    })
    .await
    .expect("a complete result is accepted");
    let get = || reapi::GetActionResultRequest {
        action_digest: Some(action.clone()),
        digest_function: SHA256,
        ..Default::default()
    };
    ac.get_action_result(get()).await.expect("served");
    // ... until a file of its tree disappears from the CAS.
    let blob = store(&dir)
        .join("cas/sha256")
        .join(&file.hash[..2])
        .join(&file.hash);
    std::fs::remove_file(&blob).unwrap();
    let err = ac.get_action_result(get()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(
        err.message().contains("output directory"),
        "{}",
        err.message()
    );
}

/// A second SIGTERM kills running actions at once, even one that ignores SIGTERM (which
/// would otherwise hold the worker for the whole grace period).
#[tokio::test]
async fn a_second_sigterm_kills_actions_without_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    // The action writes a pid or counter file on the host: no sandbox.
    let mut w = Worker::start(&store(&dir), &["--no-sandbox"]);
    let c = Client::new(&w, BLAKE3).await;
    let root = c.input_root(&[]).await;
    let pidfile = dir.path().join("stubborn.pid");
    let pidfile_s = pidfile.to_string_lossy().into_owned();
    let mut spec = ActionSpec::shell(
        "trap '' TERM; sleep 1000 & echo $! > \"$PIDFILE\"; wait",
        root,
    );
    spec.env = vec![("PIDFILE", &pidfile_s)];
    let action = c.action(spec).await;
    let mut exec = ExecutionClient::new(c.ch.clone());
    let _stream = exec
        .execute(reapi::ExecuteRequest {
            action_digest: Some(action),
            digest_function: BLAKE3,
            ..Default::default()
        })
        .await
        .expect("Execute");
    let pid = read_pid(&pidfile, Duration::from_secs(30));
    let stopping = Instant::now();
    w.sigterm();
    // Once the worker stops listening it has taken the first signal (the action ignores
    // its SIGTERM); then escalate.
    let addr = w.url.trim_start_matches("grpc://").to_owned();
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < until,
            "the worker kept listening after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    w.sigterm();
    let status = w.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}; stderr:\n{}", w.stderr());
    assert!(
        stopping.elapsed() < Duration::from_millis(4500),
        "took {:?}: the 5 s grace was waited out",
        stopping.elapsed()
    );
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "action process {pid} survived"
    );
}

/// `Command.arguments[0]` as REAPI defines it: a path with a slash is relative to the
/// working directory (how native tasks name the shipped pipeline binary), a bare name is
/// looked up on the action's PATH.
#[tokio::test]
async fn the_program_is_found_relative_to_the_working_directory_or_on_path() {
    let dir = tempfile::tempdir().unwrap();
    let w = Worker::start(&store(&dir), &[]);
    let c = Client::new(&w, SHA256).await;
    let tool = b"#!/bin/sh\necho \"tool got $1 in $(basename \"$PWD\")\"\n";
    let sub = reapi::Directory {
        files: vec![reapi::FileNode {
            name: "tool".into(),
            digest: Some(c.digest(tool)),
            is_executable: true,
            node_properties: None,
        }],
        ..Default::default()
    };
    let sub_bytes = sub.encode_to_vec();
    let root_dir = reapi::Directory {
        directories: vec![reapi::DirectoryNode {
            name: "work".into(),
            digest: Some(c.digest(&sub_bytes)),
        }],
        ..Default::default()
    };
    let root_bytes = root_dir.encode_to_vec();
    c.upload(&[tool, &sub_bytes, &root_bytes]).await;
    let root = c.digest(&root_bytes);

    let command = reapi::Command {
        arguments: vec!["./tool".into(), "an-arg".into()],
        working_directory: "work".into(),
        ..Default::default()
    };
    let command_bytes = command.encode_to_vec();
    let action = reapi::Action {
        command_digest: Some(c.digest(&command_bytes)),
        input_root_digest: Some(root.clone()),
        ..Default::default()
    };
    let action_bytes = action.encode_to_vec();
    c.upload(&[&command_bytes, &action_bytes]).await;
    let r = c.execute(&c.digest(&action_bytes), false).await;
    let result = r.result.expect("a result");
    assert_eq!(result.exit_code, 0, "{:?}", r.status);
    let stdout = c.read(result.stdout_digest.as_ref().unwrap()).await;
    assert_eq!(stdout, b"tool got an-arg in work\n");

    let mut spec = ActionSpec::shell("", root);
    spec.argv = vec!["echo", "bare", "name"];
    let action = c.action(spec).await;
    let r = c.execute(&action, false).await;
    let stdout = c
        .read(r.result.unwrap().stdout_digest.as_ref().unwrap())
        .await;
    assert_eq!(stdout, b"bare name\n");
}

/// Regression: with an unreadable TLS file the worker printed its listen line (promising to
/// serve) before failing.
#[test]
fn a_bad_tls_file_fails_the_start_before_the_listen_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not a key").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sykli"))
        .args(["worker", "--listen", "127.0.0.1:0", "--store"])
        .arg(store(&dir))
        .arg("--tls-cert")
        .arg(&missing)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-cert.pem"), "{stderr}");

    // Readable but not PEM: refused at start too, naming the files.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sykli"))
        .args(["worker", "--listen", "127.0.0.1:0", "--store"])
        .arg(store(&dir))
        .arg("--tls-cert")
        .arg(&key)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("key.pem") && stderr.contains("not usable"),
        "{stderr}"
    );
}

/// REAPI `Operations.CancelOperation` stops a running action: its process group (a
/// grandchild included) is killed and the operation finishes CANCELLED naming the worker;
/// cancelling it again, or an unknown operation, changes nothing / is NOT_FOUND.
#[tokio::test]
async fn cancel_operation_kills_the_running_action_and_finishes_it_cancelled() {
    use bazel_remote_apis::google::longrunning::CancelOperationRequest;
    use bazel_remote_apis::google::longrunning::operations_client::OperationsClient;
    let dir = tempfile::tempdir().unwrap();
    // The action writes a pid file on the host: no sandbox.
    let w = Worker::start(&store(&dir), &["--no-sandbox"]);
    let c = Client::new(&w, BLAKE3).await;
    let pidfile = dir.path().join("grandchild.pid");
    let action = grandchild_action(&c, &pidfile, None).await;
    let mut exec = ExecutionClient::new(c.ch.clone());
    let mut stream = exec
        .execute(reapi::ExecuteRequest {
            action_digest: Some(action.clone()),
            digest_function: BLAKE3,
            ..Default::default()
        })
        .await
        .expect("Execute")
        .into_inner();
    let first = stream.message().await.unwrap().expect("a first operation");
    let pid = read_pid(&pidfile, Duration::from_secs(30));
    let mut ops = OperationsClient::new(c.ch.clone());
    ops.cancel_operation(CancelOperationRequest {
        name: first.name.clone(),
    })
    .await
    .expect("CancelOperation");
    assert!(
        wait_dead(pid, Duration::from_secs(10)),
        "grandchild {pid} was left running"
    );
    // Bounded by the stream: it ends with the done operation.
    let mut last = first;
    while let Some(op) = stream.message().await.expect("the operation stream") {
        last = op;
    }
    assert!(last.done);
    let Some(operation::Result::Response(any)) = last.result else {
        panic!("no response: {last:?}")
    };
    let r = reapi::ExecuteResponse::decode(&any.value[..]).unwrap();
    let st = r.status.clone().unwrap();
    assert_eq!(st.code, tonic::Code::Cancelled as i32, "{st:?}");
    assert!(
        st.message.contains("cancelled on sykli-worker@") && st.message.contains("CancelOperation"),
        "{}",
        st.message
    );
    let stdout = c
        .read(r.result.as_ref().unwrap().stdout_digest.as_ref().unwrap())
        .await;
    assert_eq!(stdout, b"started\n", "the output up to the cancel is kept");
    // Done already: nothing to do, still OK (best effort, as google.longrunning says).
    ops.cancel_operation(CancelOperationRequest {
        name: last.name.clone(),
    })
    .await
    .expect("a second CancelOperation");
    let err = ops
        .cancel_operation(CancelOperationRequest {
            name: "operations/unknown".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    // A cancelled action is not cached.
    let err = ActionCacheClient::new(c.ch.clone())
        .get_action_result(reapi::GetActionResultRequest {
            action_digest: Some(action),
            digest_function: BLAKE3,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
}
