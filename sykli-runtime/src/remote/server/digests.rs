//! Digests as requests carry them: the digest function of a request and a validated
//! `(hash, size)` pair, with errors that name the field at fault.

use std::fmt;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use tonic::Status;

use crate::cache::digest::{Digest, DigestFunction};

/// REAPI `DigestFunction.Value.UNKNOWN`: what clients that predate the field (Bazel 4.2)
/// send; it means SHA-256.
const UNKNOWN: i32 = 0;

/// The digest function a request names: BLAKE3 (9) or SHA-256 (1, or unset).
pub fn function_of(value: i32) -> Result<DigestFunction, Status> {
    match value {
        UNKNOWN => Ok(DigestFunction::Sha256),
        v if v == DigestFunction::Sha256.reapi_value() => Ok(DigestFunction::Sha256),
        v if v == DigestFunction::Blake3.reapi_value() => Ok(DigestFunction::Blake3),
        other => Err(Status::invalid_argument(format!(
            "digest_function {other} is not supported by this worker (supported: SHA256 = 1, \
             BLAKE3 = 9)"
        ))),
    }
}

/// A validated blob digest: 32 bytes of hash and a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobDigest {
    /// The content hash.
    pub hash: Digest,
    /// The content size in bytes.
    pub size: u64,
}

impl BlobDigest {
    /// Validates a REAPI digest; `field` names it in the error (`blob_digests[3]`, ...).
    pub fn parse(d: &reapi::Digest, field: &str) -> Result<BlobDigest, Status> {
        Self::from_parts(&d.hash, d.size_bytes, field)
    }

    /// Validates an optional REAPI digest that the request must carry.
    pub fn required(d: Option<&reapi::Digest>, field: &str) -> Result<BlobDigest, Status> {
        match d {
            Some(d) => Self::parse(d, field),
            None => Err(Status::invalid_argument(format!("{field} is missing"))),
        }
    }

    /// Validates a hash text and a size.
    pub fn from_parts(hash: &str, size: i64, field: &str) -> Result<BlobDigest, Status> {
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Status::invalid_argument(format!(
                "{field}: invalid hash \"{}\": expected 64 lowercase hex characters",
                hash.escape_default()
            )));
        }
        let size = u64::try_from(size).map_err(|_| {
            Status::invalid_argument(format!("{field}: size_bytes {size} is negative"))
        })?;
        let hash = hash
            .parse::<Digest>()
            .map_err(|e| Status::invalid_argument(format!("{field}: {e}")))?;
        Ok(BlobDigest { hash, size })
    }

    /// The digest of `bytes` under `function`.
    pub fn of(function: DigestFunction, bytes: &[u8]) -> BlobDigest {
        BlobDigest {
            hash: function.of_bytes(bytes),
            size: bytes.len() as u64,
        }
    }

    /// Whether this is the digest of empty content under `function` (always present).
    pub fn is_empty_blob(&self, function: DigestFunction) -> bool {
        self.size == 0 && self.hash == function.of_bytes(&[])
    }

    /// As a REAPI message.
    pub fn to_reapi(self) -> reapi::Digest {
        reapi::Digest {
            hash: self.hash.to_hex(),
            size_bytes: i64::try_from(self.size).unwrap_or(i64::MAX),
        }
    }
}

impl fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.hash, self.size)
    }
}

/// An incremental hasher under either digest function.
#[derive(Clone)]
pub enum Hasher {
    /// BLAKE3.
    Blake3(Box<blake3::Hasher>),
    /// SHA-256.
    Sha256(sha2::Sha256),
}

impl Hasher {
    /// A fresh hasher for `function`.
    pub fn new(function: DigestFunction) -> Hasher {
        match function {
            DigestFunction::Blake3 => Hasher::Blake3(Box::default()),
            DigestFunction::Sha256 => {
                use sha2::Digest as _;
                Hasher::Sha256(sha2::Sha256::new())
            }
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Blake3(h) => {
                h.update(bytes);
            }
            Hasher::Sha256(h) => {
                use sha2::Digest as _;
                h.update(bytes);
            }
        }
    }

    /// The digest of everything added.
    pub fn finish(&self) -> Digest {
        match self {
            Hasher::Blake3(h) => Digest::from(h.finalize()),
            Hasher::Sha256(h) => {
                use sha2::Digest as _;
                Digest(h.clone().finalize().into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_function_means_sha256_and_unknown_values_are_refused() {
        assert_eq!(function_of(0).ok(), Some(DigestFunction::Sha256));
        assert_eq!(function_of(1).ok(), Some(DigestFunction::Sha256));
        assert_eq!(function_of(9).ok(), Some(DigestFunction::Blake3));
        let err = function_of(3).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message().contains("digest_function 3"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn bad_digests_are_refused_naming_the_field() {
        let bad = reapi::Digest {
            hash: "ABC".into(),
            size_bytes: 1,
        };
        let err = BlobDigest::parse(&bad, "blob_digests[2]").unwrap_err();
        assert!(
            err.message().starts_with("blob_digests[2]"),
            "{}",
            err.message()
        );
        let neg = reapi::Digest {
            hash: "0".repeat(64),
            size_bytes: -1,
        };
        let err = BlobDigest::parse(&neg, "action_digest").unwrap_err();
        assert!(err.message().contains("negative"), "{}", err.message());
        assert!(BlobDigest::required(None, "root_digest").is_err());
    }

    #[test]
    fn incremental_hash_equals_one_shot() {
        for f in [DigestFunction::Blake3, DigestFunction::Sha256] {
            let mut h = Hasher::new(f);
            h.update(b"hello ");
            h.update(b"world");
            assert_eq!(h.finish(), f.of_bytes(b"hello world"));
        }
    }
}
