//! Runs one action on a REAPI server (a `sykli worker`) the way any REAPI client would, with
//! the platform properties the test picks (`sykli-target=NAME` runs it through a plugin), and
//! returns its status, exit code and output. Synchronous: each call has its own small tokio
//! runtime, so tests can run several at once from plain threads.
#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::longrunning::operation;
use prost::Message;
use reapi::content_addressable_storage_client::ContentAddressableStorageClient;

/// REAPI's `DigestFunction.BLAKE3`.
const BLAKE3: i32 = 9;
/// The longest an action may take before the call gives up.
const ACTION_DEADLINE: Duration = Duration::from_secs(180);

/// How one action ended.
#[derive(Debug)]
pub struct ActionRun {
    /// The `ExecuteResponse` status code (0 OK; 9 FAILED_PRECONDITION for an errored task).
    pub code: i32,
    /// Its message (for an errored plugin task: the stage and the message naming the plugin).
    pub message: String,
    /// The action's exit code.
    pub exit_code: i32,
    /// Its stdout (the task log's stdout: plugin log lines and the spawned command's stdout).
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl ActionRun {
    /// Stdout, stderr and the status message, for assertions and failure messages.
    pub fn all(&self) -> String {
        format!(
            "status {}: {}\nexit code {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.message, self.exit_code, self.stdout, self.stderr
        )
    }
}

fn digest(bytes: &[u8]) -> reapi::Digest {
    reapi::Digest {
        hash: blake3::hash(bytes).to_hex().to_string(),
        size_bytes: bytes.len() as i64,
    }
}

/// Runs `sh -c script` with `env` and platform `props` on the server at `url`
/// (`grpc://HOST:PORT`), never cached; panics if the server fails the call itself.
pub fn run_action(
    url: &str,
    script: &str,
    env: &[(&str, &str)],
    props: &[(&str, &str)],
) -> ActionRun {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        tokio::time::timeout(ACTION_DEADLINE, run(url, script, env, props))
            .await
            .unwrap_or_else(|_| {
                panic!("the action `{script}` did not finish within {ACTION_DEADLINE:?}")
            })
    })
}

async fn run(url: &str, script: &str, env: &[(&str, &str)], props: &[(&str, &str)]) -> ActionRun {
    let channel = tonic::transport::Channel::from_shared(url.replacen("grpc://", "http://", 1))
        .expect("a valid URL")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    let root = reapi::Directory::default().encode_to_vec();
    let mut environment_variables: Vec<_> = env
        .iter()
        .map(|(name, value)| reapi::command::EnvironmentVariable {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect();
    environment_variables.sort_by(|a, b| a.name.cmp(&b.name));
    let command = reapi::Command {
        arguments: vec!["/bin/sh".into(), "-c".into(), script.into()],
        environment_variables,
        ..Default::default()
    }
    .encode_to_vec();
    let mut properties: Vec<_> = props
        .iter()
        .map(|(name, value)| reapi::platform::Property {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect();
    properties.sort_by(|a, b| a.name.cmp(&b.name));
    let action = reapi::Action {
        command_digest: Some(digest(&command)),
        input_root_digest: Some(digest(&root)),
        do_not_cache: true,
        platform: Some(reapi::Platform { properties }),
        ..Default::default()
    }
    .encode_to_vec();
    let requests = [&root, &command, &action]
        .iter()
        .map(|b| reapi::batch_update_blobs_request::Request {
            digest: Some(digest(b)),
            data: b.to_vec(),
            compressor: 0,
        })
        .collect();
    ContentAddressableStorageClient::new(channel.clone())
        .batch_update_blobs(reapi::BatchUpdateBlobsRequest {
            requests,
            digest_function: BLAKE3,
            ..Default::default()
        })
        .await
        .expect("BatchUpdateBlobs");
    let mut stream = reapi::execution_client::ExecutionClient::new(channel.clone())
        .execute(reapi::ExecuteRequest {
            action_digest: Some(digest(&action)),
            skip_cache_lookup: true,
            digest_function: BLAKE3,
            ..Default::default()
        })
        .await
        .expect("Execute")
        .into_inner();
    let mut last = None;
    while let Some(op) = stream.message().await.expect("the Execute stream") {
        let done = op.done;
        last = Some(op);
        if done {
            break;
        }
    }
    let response = match last.and_then(|o| o.result) {
        Some(operation::Result::Response(any)) => {
            reapi::ExecuteResponse::decode(&any.value[..]).expect("an ExecuteResponse")
        }
        other => panic!("the operation ended without a response: {other:?}"),
    };
    let status = response.status.clone().unwrap_or_default();
    let result = response.result.unwrap_or_default();
    ActionRun {
        code: status.code,
        message: status.message,
        exit_code: result.exit_code,
        stdout: read_blob(&channel, result.stdout_digest).await,
        stderr: read_blob(&channel, result.stderr_digest).await,
    }
}

/// The blob `d` from the CAS as text ("" for none).
async fn read_blob(channel: &tonic::transport::Channel, d: Option<reapi::Digest>) -> String {
    let Some(d) = d.filter(|d| d.size_bytes > 0) else {
        return String::new();
    };
    let reply = ContentAddressableStorageClient::new(channel.clone())
        .batch_read_blobs(reapi::BatchReadBlobsRequest {
            digests: vec![d],
            digest_function: BLAKE3,
            ..Default::default()
        })
        .await
        .expect("BatchReadBlobs")
        .into_inner();
    reply
        .responses
        .first()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .unwrap_or_default()
}
