//! The Remote Workers API messages and client a bot needs (`google.devtools.remoteworkers.
//! v1test2`: `bots.proto`, `worker.proto`), derived with prost. Field numbers and enum values
//! are those of the protos (BuildGrid ships the same ones); fields a bot never uses are left
//! out, which protobuf's wire format allows.

use std::time::Duration;

use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use bazel_remote_apis::google::rpc::Status;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

/// A bot's session with the Bots service: its identity, health, worker description and
/// leases.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BotSession {
    /// The session's name, given by the server.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The bot's own identifier.
    #[prost(string, tag = "2")]
    pub bot_id: String,
    /// Its health ([`BotStatus`]).
    #[prost(enumeration = "BotStatus", tag = "3")]
    pub status: i32,
    /// What it offers.
    #[prost(message, optional, tag = "4")]
    pub worker: Option<Worker>,
    /// Work assigned to it, and what became of it.
    #[prost(message, repeated, tag = "5")]
    pub leases: Vec<Lease>,
    /// When the server forgets the session unless the bot calls again.
    #[prost(message, optional, tag = "6")]
    pub expire_time: Option<Timestamp>,
    /// The server's version of the session.
    #[prost(string, tag = "7")]
    pub version: String,
}

/// One unit of work assigned to a bot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    /// Its identifier.
    #[prost(string, tag = "7")]
    pub id: String,
    /// The work: a REAPI `Action`, or the `Digest` of one.
    #[prost(message, optional, tag = "8")]
    pub payload: Option<Any>,
    /// The outcome: a REAPI `ActionResult`.
    #[prost(message, optional, tag = "9")]
    pub result: Option<Any>,
    /// Its state ([`LeaseState`]).
    #[prost(enumeration = "LeaseState", tag = "2")]
    pub state: i32,
    /// Why it failed, when it did.
    #[prost(message, optional, tag = "3")]
    pub status: Option<Status>,
}

/// What a bot offers: its devices, the first being the one that runs the work.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Worker {
    /// Devices; the first is the primary device.
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<Device>,
    /// Worker-wide properties.
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<KeyValue>,
    /// Configuration (`capacity`: leases at once).
    #[prost(message, repeated, tag = "3")]
    pub configs: Vec<KeyValue>,
}

/// A device of a worker and its properties (the platform properties it matches).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Device {
    /// Its handle.
    #[prost(string, tag = "1")]
    pub handle: String,
    /// Its properties.
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<KeyValue>,
}

/// A key and a value (`Worker.Property`, `Worker.Config` and `Device.Property` share this
/// shape on the wire).
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `CreateBotSession`'s request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateBotSessionRequest {
    /// The instance.
    #[prost(string, tag = "1")]
    pub parent: String,
    /// The new session.
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
}

/// `UpdateBotSession`'s request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateBotSessionRequest {
    /// The session's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The session as the bot sees it.
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
}

/// A bot's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BotStatus {
    /// Unset.
    Unspecified = 0,
    /// Healthy: give it work.
    Ok = 1,
    /// Unhealthy.
    Unhealthy = 2,
    /// Rebooting.
    HostRebooting = 3,
    /// Going away: give it no more work.
    BotTerminating = 4,
}

/// A lease's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LeaseState {
    /// Unset.
    Unspecified = 0,
    /// Offered, not yet accepted.
    Pending = 1,
    /// To run now.
    Active = 2,
    /// Done (its `result` or `status` says how).
    Completed = 4,
    /// Withdrawn by the server.
    Cancelled = 5,
}

/// A client of the `Bots` service.
#[derive(Debug, Clone)]
pub struct BotsClient {
    inner: tonic::client::Grpc<Channel>,
}

impl BotsClient {
    /// A client over `channel`.
    pub fn new(channel: Channel) -> BotsClient {
        BotsClient {
            inner: tonic::client::Grpc::new(channel),
        }
    }

    async fn unary<Req, Resp>(
        &mut self,
        path: &'static str,
        mut request: tonic::Request<Req>,
        timeout: Duration,
    ) -> Result<Resp, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.inner
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("the channel is not ready: {e}")))?;
        request.set_timeout(timeout);
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        let response = self
            .inner
            .unary(request, PathAndQuery::from_static(path), codec)
            .await?;
        Ok(response.into_inner())
    }

    /// `CreateBotSession`, with a deadline of `timeout` (the server may long-poll for work
    /// within it).
    pub async fn create_bot_session(
        &mut self,
        request: tonic::Request<CreateBotSessionRequest>,
        timeout: Duration,
    ) -> Result<BotSession, tonic::Status> {
        let path = "/google.devtools.remoteworkers.v1test2.Bots/CreateBotSession";
        self.unary(path, request, timeout).await
    }

    /// `UpdateBotSession`, with a deadline of `timeout` (the server long-polls for work
    /// within it).
    pub async fn update_bot_session(
        &mut self,
        request: tonic::Request<UpdateBotSessionRequest>,
        timeout: Duration,
    ) -> Result<BotSession, tonic::Status> {
        let path = "/google.devtools.remoteworkers.v1test2.Bots/UpdateBotSession";
        self.unary(path, request, timeout).await
    }
}
