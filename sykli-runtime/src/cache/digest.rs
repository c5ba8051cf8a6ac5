//! BLAKE3 content digests and file hashing.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Files at least this large are hashed memory-mapped on several threads
/// (`blake3::Hasher::update_mmap_rayon`); smaller ones with a plain read.
pub const MMAP_THRESHOLD: u64 = 1 << 20;

/// A BLAKE3 digest (32 bytes), written as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The plain BLAKE3 hash of `bytes` (what `b3sum` prints for a file with these bytes).
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Self {
        Digest(*h.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

/// The error of parsing a [`Digest`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest \"{0}\": expected 64 hex characters")]
pub struct ParseDigestError(String);

impl FromStr for Digest {
    type Err = ParseDigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        blake3::Hash::from_hex(s)
            .map(Digest::from)
            .map_err(|_| ParseDigestError(s.to_owned()))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Hashes a file's content: memory-mapped and multithreaded from [`MMAP_THRESHOLD`] bytes,
/// a plain read below. `size` is the size from a prior stat, used only to pick the method.
pub fn hash_file(path: &Path, size: u64) -> io::Result<Digest> {
    if size >= MMAP_THRESHOLD {
        let mut h = blake3::Hasher::new();
        h.update_mmap_rayon(path)?;
        Ok(h.finalize().into())
    } else {
        let bytes = fs::read(path)?;
        Ok(Digest::of_bytes(&bytes))
    }
}

/// Hashes a symlink by its target text (symlinks are not followed).
pub fn hash_symlink(path: &Path) -> io::Result<Digest> {
    let target = fs::read_link(path)?;
    let mut h = blake3::Hasher::new_derive_key("sykli symlink v1");
    h.update(target.as_os_str().as_encoded_bytes());
    Ok(h.finalize().into())
}
