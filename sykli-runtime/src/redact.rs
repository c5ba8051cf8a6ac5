//! Streaming secret redaction.
//!
//! A [`SecretSet`] holds the secret values of a run; a [`StreamRedactor`] masks them in a byte
//! stream that arrives in arbitrary chunks. The streaming result is identical to redacting the
//! whole text at once, whatever the chunking: at each position the redactor decides only once
//! it has seen enough bytes to know whether a secret starts there, holding back at most the
//! length of the longest secret minus one. Memory stays bounded however long the stream.

use std::sync::Arc;

/// What a masked secret is replaced with.
pub const MASK: &str = "***";

/// The secret values to mask, longest first.
pub struct SecretSet {
    secrets: Vec<Vec<u8>>,
    first: [bool; 256],
    max_len: usize,
}

impl Default for SecretSet {
    fn default() -> Self {
        SecretSet::new(std::iter::empty::<&[u8]>())
    }
}

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the values themselves.
        f.debug_struct("SecretSet")
            .field("count", &self.secrets.len())
            .finish()
    }
}

impl SecretSet {
    /// A set of the given values; empty values are ignored, duplicates merged.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut secrets: Vec<Vec<u8>> = values
            .into_iter()
            .map(|v| v.as_ref().to_vec())
            .filter(|v| !v.is_empty())
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let mut first = [false; 256];
        for s in &secrets {
            first[s[0] as usize] = true;
        }
        let max_len = secrets.first().map_or(0, Vec::len);
        SecretSet {
            secrets,
            first,
            max_len,
        }
    }

    /// This set plus more values.
    pub fn with<I, S>(&self, more: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let all: Vec<Vec<u8>> = self
            .secrets
            .iter()
            .cloned()
            .chain(more.into_iter().map(|v| v.as_ref().to_vec()))
            .collect();
        SecretSet::new(all)
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Masks every secret in a complete text.
    pub fn redact_str(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_owned();
        }
        let mut out = Vec::with_capacity(text.len());
        scan(self, text.as_bytes(), true, &mut out);
        // Secrets are valid UTF-8, so matches fall on character boundaries.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Scans `buf`, appending the redacted bytes to `out`. Returns how many bytes of `buf` were
/// consumed; the rest must be kept until more data (or the end) arrives.
fn scan(set: &SecretSet, buf: &[u8], at_end: bool, out: &mut Vec<u8>) -> usize {
    let mut i = 0;
    let mut emitted = 0;
    while i < buf.len() {
        if !set.first[buf[i] as usize] {
            i += 1;
            continue;
        }
        let rest = &buf[i..];
        let full = set
            .secrets
            .iter()
            .find(|s| rest.starts_with(s))
            .map(Vec::len);
        let longer_possible = !at_end
            && set
                .secrets
                .iter()
                .any(|s| s.len() > rest.len() && s.starts_with(rest));
        if longer_possible {
            out.extend_from_slice(&buf[emitted..i]);
            return i;
        }
        match full {
            Some(len) => {
                out.extend_from_slice(&buf[emitted..i]);
                out.extend_from_slice(MASK.as_bytes());
                i += len;
                emitted = i;
            }
            None => i += 1,
        }
    }
    out.extend_from_slice(&buf[emitted..]);
    buf.len()
}

/// Masks secrets in one stream that arrives in chunks.
pub struct StreamRedactor {
    set: Arc<SecretSet>,
    pending: Vec<u8>,
}

impl StreamRedactor {
    /// A redactor for one stream.
    pub fn new(set: Arc<SecretSet>) -> Self {
        StreamRedactor {
            set,
            pending: Vec::new(),
        }
    }

    /// Feeds a chunk, appending whatever is safe to release to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.set.is_empty() {
            out.extend_from_slice(chunk);
            return;
        }
        if self.pending.is_empty() {
            let used = scan(&self.set, chunk, false, out);
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            self.pending.extend_from_slice(chunk);
            let used = scan(&self.set, &self.pending, false, out);
            self.pending.drain(..used);
        }
        debug_assert!(self.pending.len() < self.set.max_len.max(1));
    }

    /// Ends the stream, releasing what was held back.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            scan(&self.set, &self.pending, true, out);
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(set: &Arc<SecretSet>, chunks: &[&[u8]]) -> Vec<u8> {
        let mut r = StreamRedactor::new(set.clone());
        let mut out = Vec::new();
        for c in chunks {
            r.push(c, &mut out);
        }
        r.finish(&mut out);
        out
    }

    #[test]
    fn masks_a_secret_split_across_reads() {
        let set = Arc::new(SecretSet::new(["hunter2"]));
        let out = stream(&set, &[b"pass=hun", b"te", b"r2 done"]);
        assert_eq!(out, b"pass=*** done");
    }

    #[test]
    fn prefers_the_longest_secret_and_keeps_partial_prefixes() {
        let set = Arc::new(SecretSet::new(["abc", "abcdef"]));
        assert_eq!(stream(&set, &[b"xabcdefy"]), b"x***y");
        assert_eq!(stream(&set, &[b"xab", b"cde"]), b"x***de");
        assert_eq!(stream(&set, &[b"ab"]), b"ab");
    }

    #[test]
    fn debug_never_shows_values() {
        let set = SecretSet::new(["topsecret"]);
        assert!(!format!("{set:?}").contains("topsecret"));
    }

    /// The obvious, non-streaming definition: at each position mask the longest secret that
    /// starts there, else keep the character.
    fn reference(secrets: &[String], text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            let best = secrets
                .iter()
                .filter(|s| rest.starts_with(s.as_str()))
                .map(String::len)
                .max();
            match best {
                Some(len) => {
                    out.push_str(MASK);
                    rest = &rest[len..];
                }
                None => {
                    let c = rest.chars().next().unwrap();
                    out.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        out
    }

    fn text_with_secrets() -> impl Strategy<Value = (Vec<String>, String, Vec<usize>)> {
        let secrets = proptest::collection::vec("[a-z0-9]{3,12}", 1..4);
        secrets.prop_flat_map(|secrets| {
            let n = secrets.len();
            let piece = prop_oneof![
                "[a-z0-9 \n]{0,20}".prop_map(|s| (None, s)),
                (0..n).prop_map(|i| (Some(i), String::new())),
            ];
            let pieces = proptest::collection::vec(piece, 0..20);
            let cuts = proptest::collection::vec(1usize..40, 0..30);
            (Just(secrets), pieces, cuts).prop_map(|(secrets, pieces, cuts)| {
                let text: String = pieces
                    .into_iter()
                    .map(|(i, s)| match i {
                        Some(i) => secrets[i].clone(),
                        None => s,
                    })
                    .collect();
                (secrets, text, cuts)
            })
        })
    }

    proptest! {
        #[test]
        fn chunking_never_leaks_and_matches_one_shot((secrets, text, cuts) in text_with_secrets()) {
            let set = Arc::new(SecretSet::new(&secrets));
            let bytes = text.as_bytes();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts {
                if at >= bytes.len() { break; }
                let end = (at + c).min(bytes.len());
                chunks.push(&bytes[at..end]);
                at = end;
            }
            chunks.push(&bytes[at..]);
            let out = String::from_utf8(stream(&set, &chunks)).unwrap();
            for s in &secrets {
                prop_assert!(!out.contains(s.as_str()), "secret {s:?} leaked in {out:?}");
            }
            prop_assert_eq!(&out, &set.redact_str(&text));
            // Non-secret text is preserved: the output is exactly the naive reference.
            prop_assert_eq!(out, reference(&secrets, &text));
        }

        #[test]
        fn text_without_secrets_is_unchanged(text in "[a-z \n]{0,200}", cut in 1usize..50) {
            let set = Arc::new(SecretSet::new(["S3CR3T"]));
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(cut).collect();
            prop_assert_eq!(stream(&set, &chunks), text.as_bytes());
        }
    }
}
