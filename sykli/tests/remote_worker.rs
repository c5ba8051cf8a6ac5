//! `sykli worker` against a real REAPI client (the tonic stubs of bazel-remote-apis): the
//! real binary on 127.0.0.1:0, started by `common::worker`.

mod common;

use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::longrunning::{Operation, operation};
use common::worker::Worker;
use prost::Message;
use reapi::action_cache_client::ActionCacheClient;
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
    // Nothing of the action's directory stays behind.
    let exec = std::fs::read_dir(store(&dir).join("exec")).unwrap().count();
    assert_eq!(exec, 0, "exec/ is emptied after each action");
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
