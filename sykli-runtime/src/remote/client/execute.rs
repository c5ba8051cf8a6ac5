//! Execute: the operation stream, WaitExecution after a broken stream, Execute again when
//! the server lost the operation (NOT_FOUND), backoff with jitter on UNAVAILABLE and
//! RESOURCE_EXHAUSTED, and a queue timeout for actions no worker starts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::longrunning::{self, operation};
use prost::Message;
use reapi::execution_client::ExecutionClient;
use tokio_util::sync::CancellationToken;

use super::{MAX_DECODE, RemoteClient, RemoteError, retry};
use crate::exec::{OperationJournal, OutputSink, OutputStream};

use crate::remote::{ATTEMPT_METADATA, SECRETS_METADATA};

/// Broken streams, unavailable servers and lost operations retried before giving up.
pub const MAX_RECOVERIES: u32 = 30;

/// How to execute one action.
#[derive(Clone)]
pub struct ExecuteOptions {
    /// Skip the server's action cache.
    pub skip_cache_lookup: bool,
    /// Secrets as a JSON object, sent as [`SECRETS_METADATA`] metadata (a sykli worker only).
    pub secrets: Option<Vec<u8>>,
    /// Which attempt of its task this is (from 1), sent as [`ATTEMPT_METADATA`].
    pub attempt: u32,
    /// How long the action may stay queued before no worker taking it is an error.
    pub queue_timeout: Duration,
    /// Stop waiting when cancelled.
    pub cancel: CancellationToken,
    /// Where live output goes when the server offers `stdout_stream_name`, and the resource
    /// samples a sykli server puts in the operation ([`crate::remote::resources`]).
    pub live: Option<Arc<dyn OutputSink>>,
    /// The action's platform, for the queue-timeout message.
    pub platform: String,
    /// Where the operation's name is journalled, and the one to re-attach to on a resume.
    pub operations: Option<Arc<dyn OperationJournal>>,
    /// Sent as REAPI `RequestMetadata` on `Execute`: which run (`tool_invocation_id`) and
    /// task (`target_id`) the action belongs to, so a server groups actions into runs.
    pub metadata: Option<reapi::RequestMetadata>,
}

/// The header REAPI clients send their `RequestMetadata` in.
pub const REQUEST_METADATA: &str = "build.bazel.remote.execution.v2.requestmetadata-bin";

/// The `RequestMetadata` of task `task` of run `run_id` executing action `action` (its hash).
pub fn request_metadata(run_id: &str, task: &str, action: &str) -> reapi::RequestMetadata {
    reapi::RequestMetadata {
        tool_details: Some(reapi::ToolDetails {
            tool_name: "sykli".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
        }),
        action_id: action.to_owned(),
        tool_invocation_id: run_id.to_owned(),
        correlated_invocations_id: String::new(),
        action_mnemonic: "sykli".into(),
        target_id: task.to_owned(),
        configuration_id: String::new(),
    }
}

/// How an Execute ended.
#[derive(Debug)]
pub enum Execution {
    /// The server answered.
    Done {
        /// Its response.
        response: Box<reapi::ExecuteResponse>,
        /// Bytes of stdout and stderr already written live.
        live: (u64, u64),
    },
    /// The run was cancelled.
    Cancelled,
}

/// Live output streams being read.
#[derive(Default)]
struct Live {
    started: [bool; 2],
    written: Arc<Mutex<(u64, u64)>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Live {
    fn start(
        &mut self,
        client: &RemoteClient,
        sink: &Arc<dyn OutputSink>,
        name: &str,
        stream: OutputStream,
    ) {
        let i = match stream {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        };
        if name.is_empty() || self.started[i] {
            return;
        }
        self.started[i] = true;
        let (client, sink, name, written) = (
            client.clone(),
            sink.clone(),
            name.to_owned(),
            self.written.clone(),
        );
        self.tasks.push(tokio::spawn(async move {
            // Best effort: the full output is fetched from the result anyway.
            let _ = client
                .read_stream(&name, |chunk| {
                    let mut w = written.lock().unwrap_or_else(|p| p.into_inner());
                    sink.write(stream, chunk);
                    if i == 0 {
                        w.0 += chunk.len() as u64;
                    } else {
                        w.1 += chunk.len() as u64;
                    }
                    Ok(())
                })
                .await;
        }));
    }

    async fn stop(self) -> (u64, u64) {
        // Stopped now: whatever they did not deliver is written from the result.
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        *self.written.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Which operation names were journalled.
struct Tracked {
    /// The last one journalled (`OperationJournal::attached`).
    announced: Option<String>,
    /// The one a resume re-attaches to, until it is lost.
    resumed: Option<String>,
}

enum StreamEnd {
    Done(Box<reapi::ExecuteResponse>),
    /// The stream broke (or ended without a result): wait on the operation again.
    Broken(tonic::Status),
    /// The server does not know the operation: execute again.
    Lost,
    /// The server answered that the action could not run for now: execute again later.
    Retry(tonic::Status),
    Failed(RemoteError),
    Cancelled,
}

impl RemoteClient {
    /// Asks the server to stop the operation `name` (REAPI `Operations.CancelOperation`):
    /// a sykli worker kills the action and finishes it `CANCELLED`.
    pub async fn cancel_operation(&self, name: &str) -> Result<(), RemoteError> {
        let mut ops = longrunning::operations_client::OperationsClient::new(self.channel());
        ops.cancel_operation(self.request(longrunning::CancelOperationRequest {
            name: name.to_owned(),
        }))
        .await
        .map(|_| ())
        .map_err(|s| self.rpc_error("CancelOperation", s))
    }

    /// Executes `action` (its blobs must be in the CAS) until the server answers,
    /// recovering from broken streams and restarts of the server.
    pub async fn execute(
        &self,
        action: &reapi::Digest,
        opts: &ExecuteOptions,
    ) -> Result<Execution, RemoteError> {
        // A resumed run waits on the operation a killed process journalled.
        let mut resumed = opts.operations.as_ref().and_then(|o| o.reattach());
        let mut track = Tracked {
            announced: None,
            resumed: resumed.clone(),
        };
        let mut operation: Option<String> = resumed.clone();
        let mut recoveries = 0u32;
        let mut live = Live::default();
        let mut last_error: Option<tonic::Status> = None;
        loop {
            if recoveries > MAX_RECOVERIES {
                let s = last_error.unwrap_or_else(|| tonic::Status::unavailable("gave up"));
                live.stop().await;
                return Err(RemoteError::Rpc {
                    endpoint: self.endpoint().to_string(),
                    call: "Execute",
                    code: s.code(),
                    message: format!("{} (after {MAX_RECOVERIES} retries)", s.message()),
                });
            }
            let mut client =
                ExecutionClient::new(self.channel()).max_decoding_message_size(MAX_DECODE);
            let started = match &operation {
                None => {
                    let mut req = self.request(reapi::ExecuteRequest {
                        instance_name: self.instance().to_owned(),
                        skip_cache_lookup: opts.skip_cache_lookup,
                        action_digest: Some(action.clone()),
                        execution_policy: None,
                        results_cache_policy: None,
                        digest_function: self.fn_value(),
                        inline_stdout: true,
                        inline_stderr: true,
                        inline_output_files: Vec::new(),
                    });
                    if let Some(m) = &opts.metadata {
                        req.metadata_mut().insert_bin(
                            REQUEST_METADATA,
                            tonic::metadata::MetadataValue::from_bytes(&m.encode_to_vec()),
                        );
                    }
                    req.metadata_mut().insert(
                        ATTEMPT_METADATA,
                        tonic::metadata::MetadataValue::from(opts.attempt.max(1)),
                    );
                    if let Some(secrets) = &opts.secrets {
                        req.metadata_mut().insert_bin(
                            SECRETS_METADATA,
                            tonic::metadata::MetadataValue::from_bytes(secrets),
                        );
                    }
                    tokio::select! {
                        r = client.execute(req) => r,
                        () = opts.cancel.cancelled() => { live.stop().await; return Ok(Execution::Cancelled) }
                    }
                }
                Some(name) => {
                    let req = self.request(reapi::WaitExecutionRequest { name: name.clone() });
                    tokio::select! {
                        r = client.wait_execution(req) => r,
                        () = opts.cancel.cancelled() => { live.stop().await; return Ok(Execution::Cancelled) }
                    }
                }
            };
            let stream = match started {
                Ok(s) => s.into_inner(),
                Err(s) if s.code() == tonic::Code::NotFound && operation.is_some() => {
                    if let Some(name) = resumed.take()
                        && operation.as_deref() == Some(name.as_str())
                        && let Some(o) = &opts.operations
                    {
                        o.reattach_failed(&name, s.message());
                    }
                    track.resumed = None;
                    operation = None;
                    recoveries += 1;
                    continue;
                }
                Err(s) if retry::transient(s.code()) || broken(&s) => {
                    recoveries += 1;
                    tokio::time::sleep(retry::delay(recoveries)).await;
                    last_error = Some(s);
                    continue;
                }
                Err(s) => {
                    live.stop().await;
                    return Err(self.rpc_error(
                        if operation.is_some() {
                            "WaitExecution"
                        } else {
                            "Execute"
                        },
                        s,
                    ));
                }
            };
            match self
                .follow(stream, &mut operation, &mut track, &mut live, opts)
                .await
            {
                StreamEnd::Done(response) => {
                    let live = live.stop().await;
                    return Ok(Execution::Done { response, live });
                }
                StreamEnd::Broken(s) => {
                    recoveries += 1;
                    tokio::time::sleep(retry::delay(recoveries)).await;
                    last_error = Some(s);
                }
                StreamEnd::Lost => {
                    if let Some(name) = resumed.take()
                        && track.announced.as_deref() == Some(name.as_str())
                        && let Some(o) = &opts.operations
                    {
                        o.reattach_failed(&name, "the server lost the operation");
                    }
                    track.resumed = None;
                    operation = None;
                    recoveries += 1;
                }
                StreamEnd::Retry(s) => {
                    operation = None;
                    recoveries += 1;
                    tokio::time::sleep(retry::delay(recoveries)).await;
                    last_error = Some(s);
                }
                StreamEnd::Failed(e) => {
                    live.stop().await;
                    return Err(e);
                }
                StreamEnd::Cancelled => {
                    live.stop().await;
                    return Ok(Execution::Cancelled);
                }
            }
        }
    }

    /// Reads one operation stream to its end.
    async fn follow(
        &self,
        mut stream: tonic::Streaming<longrunning::Operation>,
        operation: &mut Option<String>,
        track: &mut Tracked,
        live: &mut Live,
        opts: &ExecuteOptions,
    ) -> StreamEnd {
        let queued_since = Instant::now();
        let mut executing = false;
        loop {
            let deadline = queued_since + opts.queue_timeout;
            let next = tokio::select! {
                m = stream.message() => m,
                () = opts.cancel.cancelled() => return StreamEnd::Cancelled,
                () = tokio::time::sleep_until(deadline.into()), if !executing => {
                    return StreamEnd::Failed(RemoteError::QueueTimeout {
                        endpoint: self.endpoint().to_string(),
                        after: opts.queue_timeout,
                        platform: opts.platform.clone(),
                    });
                }
            };
            let op = match next {
                Ok(Some(op)) => op,
                Ok(None) => {
                    return StreamEnd::Broken(tonic::Status::unavailable(
                        "the operation stream ended before the result",
                    ));
                }
                Err(s) if s.code() == tonic::Code::NotFound && operation.is_some() => {
                    return StreamEnd::Lost;
                }
                Err(s) if retry::transient(s.code()) || broken(&s) => return StreamEnd::Broken(s),
                Err(s) => {
                    return StreamEnd::Failed(self.rpc_error(
                        if operation.is_some() {
                            "WaitExecution"
                        } else {
                            "Execute"
                        },
                        s,
                    ));
                }
            };
            if !op.name.is_empty() {
                *operation = Some(op.name.clone());
                if track.announced.as_deref() != Some(op.name.as_str()) {
                    if let Some(o) = &opts.operations {
                        o.attached(&op.name, track.resumed.as_deref() == Some(op.name.as_str()));
                    }
                    track.announced = Some(op.name.clone());
                }
            }
            if let Some(meta) = &op.metadata
                && let Ok(meta) = reapi::ExecuteOperationMetadata::decode(&meta.value[..])
            {
                use reapi::execution_stage::Value;
                if meta.stage == Value::Executing as i32 || meta.stage == Value::Completed as i32 {
                    executing = true;
                }
                if let Some(sink) = &opts.live {
                    live.start(self, sink, &meta.stdout_stream_name, OutputStream::Stdout);
                    live.start(self, sink, &meta.stderr_stream_name, OutputStream::Stderr);
                    // A sykli server's sample of the action's processes: the task's own.
                    if let Some(s) = crate::remote::resources::read(&meta) {
                        sink.resource_sample(s.cpu_percent, s.rss_bytes);
                    }
                }
            }
            if !op.done {
                continue;
            }
            return match op.result {
                Some(operation::Result::Response(any)) => {
                    match reapi::ExecuteResponse::decode(&any.value[..]) {
                        // The server gave up on the action for a while (its worker
                        // stopped): run it again.
                        Ok(r)
                            if r.status.as_ref().is_some_and(|st| {
                                retry::transient(tonic::Code::from_i32(st.code))
                            }) =>
                        {
                            let st = r.status.unwrap_or_default();
                            StreamEnd::Retry(tonic::Status::new(
                                tonic::Code::from_i32(st.code),
                                st.message,
                            ))
                        }
                        Ok(r) => StreamEnd::Done(Box::new(r)),
                        Err(e) => StreamEnd::Failed(self.protocol(format!(
                            "the operation's response is not an ExecuteResponse: {e}"
                        ))),
                    }
                }
                Some(operation::Result::Error(st)) => {
                    let code = tonic::Code::from_i32(st.code);
                    if code == tonic::Code::Cancelled {
                        // Cancelled on the server (CancelOperation there): an answer, as a
                        // response with that status is (never executed again).
                        StreamEnd::Done(Box::new(reapi::ExecuteResponse {
                            status: Some(st),
                            ..Default::default()
                        }))
                    } else if code == tonic::Code::NotFound {
                        StreamEnd::Lost
                    } else if retry::transient(code) {
                        StreamEnd::Broken(tonic::Status::new(code, st.message))
                    } else {
                        StreamEnd::Failed(RemoteError::Rpc {
                            endpoint: self.endpoint().to_string(),
                            call: "Execute",
                            code,
                            message: st.message,
                        })
                    }
                }
                None => StreamEnd::Failed(self.protocol("the operation is done without a result")),
            };
        }
    }
}

/// Whether a status is the connection breaking rather than the server's answer (a worker
/// killed mid-action, a reset stream).
fn broken(s: &tonic::Status) -> bool {
    use std::error::Error;
    match s.code() {
        tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Cancelled => {
            // Transport failures carry a source error; a server's own status does not.
            s.source().is_some()
                || s.message().contains("transport")
                || s.message().contains("h2 protocol")
                || s.message().contains("connection")
        }
        tonic::Code::Aborted => true,
        _ => false,
    }
}
