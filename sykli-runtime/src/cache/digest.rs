//! Content digests and file hashing, under a [`DigestFunction`]: BLAKE3 (the local store's,
//! REAPI digest function 9) or SHA-256 (REAPI 1, for servers without BLAKE3). Both give 32
//! bytes, so one [`Digest`] type holds either; which function made it is the caller's context.

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
        // Every action result read holds several digests: decoded by table, two at a time.
        const fn nibbles() -> [u8; 256] {
            let mut t = [0xffu8; 256];
            let mut i = 0;
            while i < 10 {
                t[b'0' as usize + i] = i as u8;
                i += 1;
            }
            let mut i = 0;
            while i < 6 {
                t[b'a' as usize + i] = 10 + i as u8;
                t[b'A' as usize + i] = 10 + i as u8;
                i += 1;
            }
            t
        }
        static NIBBLE: [u8; 256] = nibbles();
        let bad = || ParseDigestError(s.to_owned());
        let hex = s.as_bytes();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let (hi, lo) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
            if (hi | lo) & 0xf0 != 0 {
                return Err(bad());
            }
            *o = hi << 4 | lo;
        }
        Ok(Digest(out))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed from the borrowed text: no string allocated per digest.
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest as 64 hex characters")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Hex)
    }
}

/// A digest function of the Remote Execution API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestFunction {
    /// BLAKE3 (REAPI `DigestFunction.Value.BLAKE3` = 9): the local store's.
    #[default]
    Blake3,
    /// SHA-256 (REAPI `DigestFunction.Value.SHA256` = 1), for servers without BLAKE3.
    Sha256,
}

impl DigestFunction {
    /// The REAPI `DigestFunction.Value` number.
    pub fn reapi_value(self) -> i32 {
        match self {
            DigestFunction::Blake3 => 9,
            DigestFunction::Sha256 => 1,
        }
    }

    /// The digest of `bytes`.
    pub fn of_bytes(self, bytes: &[u8]) -> Digest {
        match self {
            DigestFunction::Blake3 => Digest::of_bytes(bytes),
            DigestFunction::Sha256 => {
                use sha2::Digest as _;
                Digest(sha2::Sha256::digest(bytes).into())
            }
        }
    }

    /// The digest of a file's content (see [`hash_file`] for BLAKE3's method).
    pub fn of_file(self, path: &Path, size: u64) -> io::Result<Digest> {
        match self {
            DigestFunction::Blake3 => hash_file(path, size),
            DigestFunction::Sha256 => {
                use sha2::Digest as _;
                let mut h = sha2::Sha256::new();
                let mut f = fs::File::open(path)?;
                io::copy(&mut f, &mut h)?;
                Ok(Digest(h.finalize().into()))
            }
        }
    }
}

impl fmt::Display for DigestFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestFunction::Blake3 => "blake3",
            DigestFunction::Sha256 => "sha256",
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_hex_round_trips_and_bad_text_is_refused() {
        let d = Digest::of_bytes(b"x");
        assert_eq!(d.to_hex().parse::<Digest>(), Ok(d));
        assert_eq!(d.to_hex().to_uppercase().parse::<Digest>(), Ok(d));
        let good = d.to_hex();
        for bad in [
            String::new(),
            good[..63].to_owned(),
            format!("{good}0"),
            format!("g{}", &good[1..]),
            format!("{}/", &good[..63]),
            format!("{}é", &good[..62]),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&d).expect("encode");
        assert_eq!(serde_json::from_str::<Digest>(&json).expect("decode"), d);
        assert!(serde_json::from_str::<Digest>("\"zz\"").is_err());
    }
}
