//! `google.rpc.Status` values the worker returns inside operations, and the
//! `PreconditionFailure` detail that tells a client which blobs to upload again.

use bazel_remote_apis::google::protobuf::Any;
use bazel_remote_apis::google::rpc;
use prost::Message;
use tonic::Code;

use super::digests::BlobDigest;
use crate::cache::digest::DigestFunction;

/// `google.rpc.PreconditionFailure` (not among the generated types).
#[derive(Clone, PartialEq, Message)]
pub struct PreconditionFailure {
    /// The violations.
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<Violation>,
}

/// One `google.rpc.PreconditionFailure.Violation`.
#[derive(Clone, PartialEq, Message)]
pub struct Violation {
    /// `MISSING` for a missing blob.
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// `blobs/{hash}/{size}`.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// Human-readable.
    #[prost(string, tag = "3")]
    pub description: String,
}

const PRECONDITION_FAILURE_URL: &str = "type.googleapis.com/google.rpc.PreconditionFailure";

/// A status with a code and message.
pub fn status(code: Code, message: impl Into<String>) -> rpc::Status {
    rpc::Status {
        code: code as i32,
        message: message.into(),
        details: Vec::new(),
    }
}

/// The OK status.
pub fn ok() -> rpc::Status {
    status(Code::Ok, "")
}

/// `FAILED_PRECONDITION` listing missing blobs as REAPI asks (`MISSING`, `blobs/HASH/SIZE`).
pub fn missing_blobs(function: DigestFunction, missing: &[(String, BlobDigest)]) -> rpc::Status {
    let failure = PreconditionFailure {
        violations: missing
            .iter()
            .map(|(what, d)| Violation {
                r#type: "MISSING".into(),
                subject: format!("blobs/{}/{}", d.hash, d.size),
                description: format!("{what} {function}/{d} is not in the CAS"),
            })
            .collect(),
    };
    let names: Vec<String> = missing
        .iter()
        .take(5)
        .map(|(what, d)| format!("{what} {d}"))
        .collect();
    let more = missing.len().saturating_sub(names.len());
    let mut message = format!("missing from the CAS ({function}): {}", names.join(", "));
    if more > 0 {
        message.push_str(&format!(" and {more} more"));
    }
    rpc::Status {
        code: Code::FailedPrecondition as i32,
        message,
        details: vec![Any {
            type_url: PRECONDITION_FAILURE_URL.into(),
            value: failure.encode_to_vec(),
        }],
    }
}

/// A tonic error carrying `s` (with its details, so a client can read the violations).
pub fn to_tonic(s: &rpc::Status) -> tonic::Status {
    let code = Code::from_i32(s.code);
    if s.details.is_empty() {
        tonic::Status::new(code, s.message.clone())
    } else {
        tonic::Status::with_details(
            code,
            s.message.clone(),
            tonic::codegen::Bytes::from(s.encode_to_vec()),
        )
    }
}
