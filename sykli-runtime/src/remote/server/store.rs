//! The worker's disk store: a CAS for each digest function plus an action cache.
//!
//! Layout under the store directory (`sykli worker --store DIR`):
//! ```text
//! cas/blake3/ab/abcdef...   blobs named by their hex digest (mode 0444); the size is the
//! cas/sha256/ab/abcdef...   file's length
//! cas-x/<function>/ab/...   executable copies (0555) of blobs that input roots need
//!                           executable, made on first use, hardlinked from there
//! ac/<function>/ab/...      encoded REAPI `ActionResult`s, named by Action digest hash
//! tmp/                      temp files and partial uploads, renamed into place (cleared at
//!                           start)
//! exec/<op>/                one directory per running action: its input root, logs (removed
//!                           afterwards; cleared at start)
//! lock                      locked while a worker has the store open (one worker per store)
//! ```
//! Every blob is verified when written (content must hash to its name) and written to a
//! temp file then renamed, so no reader sees a partial blob. Whole-blob reads are verified
//! too: a blob that no longer matches its name (an action as root wrote through a hardlink)
//! is removed and reported as missing, never served. Blobs carry a fixed mtime, so one
//! written to in place is noticed from a `stat` alone (see `PRISTINE_MTIME`).
//!
//! This is a sibling of the local cache (`crate::cache::store`), not the same directory: the
//! local store's action results are sykli's own JSON records and it knows only BLAKE3; the
//! worker's action cache holds REAPI `ActionResult`s under both functions.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use prost::Message;

use super::digests::{BlobDigest, Hasher};
use crate::cache::digest::{Digest, DigestFunction};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file of the store could not be read or written.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("write", "read", "rename", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Uploaded content does not hash to the digest it was sent under.
    #[error(
        "digest mismatch: the content sent for {function} digest {expected} hashes to {actual}"
    )]
    Mismatch {
        /// The function.
        function: DigestFunction,
        /// The digest the content was sent under.
        expected: BlobDigest,
        /// The digest of the content.
        actual: BlobDigest,
    },
    /// The blob is not in the store.
    #[error("blob {function}/{digest} not found")]
    NotFound {
        /// The function.
        function: DigestFunction,
        /// The digest.
        digest: BlobDigest,
    },
    /// Another worker holds the store.
    #[error(
        "the store {} is in use by another sykli worker (one worker per store directory)",
        path.display()
    )]
    InUse {
        /// The store directory.
        path: PathBuf,
    },
    /// A stored message does not decode.
    #[error("stored {what} {digest} does not decode: {source}")]
    Decode {
        /// The message type.
        what: &'static str,
        /// The blob's digest.
        digest: BlobDigest,
        /// The decode error.
        #[source]
        source: prost::DecodeError,
    },
}

impl StoreError {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |source| StoreError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// The gRPC status for this error.
    pub fn to_status(&self) -> tonic::Status {
        match self {
            StoreError::Mismatch { .. } => tonic::Status::invalid_argument(self.to_string()),
            StoreError::NotFound { .. } => tonic::Status::not_found(self.to_string()),
            StoreError::Decode { .. } => tonic::Status::invalid_argument(self.to_string()),
            StoreError::Io { .. } | StoreError::InUse { .. } => {
                tonic::Status::internal(self.to_string())
            }
        }
    }
}

impl From<StoreError> for tonic::Status {
    fn from(e: StoreError) -> Self {
        e.to_status()
    }
}

/// The worker's CAS and action cache on disk; see the module docs for the layout.
#[derive(Debug)]
pub struct DiskStore {
    root: PathBuf,
    /// Held (locked) while the store is open: one worker per store.
    _lock: File,
}

const FUNCTIONS: [DigestFunction; 2] = [DigestFunction::Blake3, DigestFunction::Sha256];

impl DiskStore {
    /// [`DiskStore::open`] on a blocking thread, shared: how the worker's bot and join modes
    /// open their stores from async code.
    pub async fn open_shared(root: PathBuf) -> Result<std::sync::Arc<DiskStore>, StoreError> {
        let path = root.clone();
        tokio::task::spawn_blocking(move || DiskStore::open(root))
            .await
            .map_err(|e| StoreError::Io {
                action: "open",
                path,
                source: io::Error::other(e.to_string()),
            })?
            .map(std::sync::Arc::new)
    }

    /// Opens (creating) the store at `root`, clearing what a previous worker left in `tmp/`
    /// and `exec/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<DiskStore, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(StoreError::io("create", &root))?;
        let lock_path = root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(StoreError::io("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::InUse { path: root }),
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io("lock", &lock_path)(e)),
        }
        for dir in ["tmp", "exec"] {
            let path = root.join(dir);
            if path.exists() {
                remove_tree(&path).map_err(StoreError::io("clear", &path))?;
            }
        }
        for f in FUNCTIONS {
            for top in ["cas", "cas-x", "ac"] {
                let path = root.join(top).join(f.to_string());
                fs::create_dir_all(&path).map_err(StoreError::io("create", &path))?;
            }
        }
        for dir in ["tmp", "exec"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(StoreError::io("create", &path))?;
        }
        Ok(DiskStore { root, _lock: lock })
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_in(&self, top: &str, function: DigestFunction, hash: &Digest) -> PathBuf {
        let hex = hash.to_hex();
        self.root
            .join(top)
            .join(function.to_string())
            .join(&hex[..2])
            .join(hex)
    }

    /// Where the blob `d` lives (whether or not it is there).
    pub fn blob_path(&self, function: DigestFunction, d: &BlobDigest) -> PathBuf {
        self.path_in("cas", function, &d.hash)
    }

    /// A fresh temp path under `tmp/`.
    pub fn temp_path(&self) -> PathBuf {
        self.root.join("tmp").join(format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        ))
    }

    /// A fresh, empty directory under `exec/` for one action.
    pub fn exec_dir(&self, name: &str) -> Result<PathBuf, StoreError> {
        let path = self.root.join("exec").join(name);
        fs::create_dir_all(&path).map_err(StoreError::io("create", &path))?;
        Ok(path)
    }

    /// Whether the blob is stored (the empty blob always is).
    pub fn has(&self, function: DigestFunction, d: &BlobDigest) -> bool {
        if d.is_empty_blob(function) {
            return true;
        }
        fs::metadata(self.blob_path(function, d)).is_ok_and(|m| is_pristine(&m, d.size))
    }

    /// Stores `bytes` under `d` after checking they hash to it.
    pub fn put_bytes(
        &self,
        function: DigestFunction,
        d: &BlobDigest,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let actual = BlobDigest::of(function, bytes);
        if actual != *d {
            return Err(StoreError::Mismatch {
                function,
                expected: *d,
                actual,
            });
        }
        if self.has(function, d) {
            return Ok(());
        }
        let tmp = self.temp_path();
        let mut f = File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
        f.write_all(bytes).map_err(StoreError::io("write", &tmp))?;
        drop(f);
        self.commit_temp(function, d, &tmp)
    }

    /// Stores bytes under their own digest.
    pub fn insert_bytes(
        &self,
        function: DigestFunction,
        bytes: &[u8],
    ) -> Result<BlobDigest, StoreError> {
        let d = BlobDigest::of(function, bytes);
        self.put_bytes(function, &d, bytes)?;
        Ok(d)
    }

    /// Copies the file at `src` into the store (hashing the copy) and returns its digest.
    pub fn insert_file(
        &self,
        function: DigestFunction,
        src: &Path,
    ) -> Result<BlobDigest, StoreError> {
        let mut input = File::open(src).map_err(StoreError::io("open", src))?;
        if input.metadata().is_ok_and(|m| m.len() == 0) {
            // The empty blob is always present (an action without output: most logs).
            return Ok(BlobDigest::of(function, &[]));
        }
        let tmp = self.temp_path();
        let mut out = File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
        let mut hasher = Hasher::new(function);
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        let copied = (|| -> Result<(), StoreError> {
            loop {
                let n = input.read(&mut buf).map_err(StoreError::io("read", src))?;
                if n == 0 {
                    return Ok(());
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(StoreError::io("write", &tmp))?;
                size += n as u64;
            }
        })();
        drop(out);
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let d = BlobDigest {
            hash: hasher.finish(),
            size,
        };
        if self.has(function, &d) {
            let _ = fs::remove_file(&tmp);
            return Ok(d);
        }
        self.commit_temp(function, &d, &tmp)?;
        Ok(d)
    }

    /// Moves a temp file whose content the caller verified to hash to `d` into place.
    pub fn commit_temp(
        &self,
        function: DigestFunction,
        d: &BlobDigest,
        tmp: &Path,
    ) -> Result<(), StoreError> {
        let dest = self.blob_path(function, d);
        let result = (|| {
            mark_pristine(tmp)?;
            fs::set_permissions(tmp, fs::Permissions::from_mode(0o444))
                .map_err(StoreError::io("chmod", tmp))?;
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(StoreError::io("create", parent))?;
            }
            fs::rename(tmp, &dest).map_err(StoreError::io("rename into", &dest))
        })();
        if result.is_err() {
            let _ = fs::remove_file(tmp);
        }
        result
    }

    /// The whole content of a blob, verified against its digest (a blob that does not match
    /// is removed and reported [`StoreError::NotFound`]).
    pub fn read(&self, function: DigestFunction, d: &BlobDigest) -> Result<Vec<u8>, StoreError> {
        if d.is_empty_blob(function) {
            return Ok(Vec::new());
        }
        let path = self.blob_path(function, d);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    function,
                    digest: *d,
                });
            }
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        if BlobDigest::of(function, &bytes) != *d {
            self.discard(function, d);
            return Err(StoreError::NotFound {
                function,
                digest: *d,
            });
        }
        Ok(bytes)
    }

    /// Removes a blob found corrupt.
    pub fn discard(&self, function: DigestFunction, d: &BlobDigest) {
        let _ = fs::remove_file(self.blob_path(function, d));
        let _ = fs::remove_file(self.path_in("cas-x", function, &d.hash));
    }

    /// A stored message, decoded.
    pub fn read_message<M: Message + Default>(
        &self,
        function: DigestFunction,
        d: &BlobDigest,
        what: &'static str,
    ) -> Result<M, StoreError> {
        let bytes = self.read(function, d)?;
        M::decode(&bytes[..]).map_err(|source| StoreError::Decode {
            what,
            digest: *d,
            source,
        })
    }

    /// Makes `dest` a file with the blob's content: a hardlink into the store (to a 0555
    /// copy when `executable`), or a copy where linking fails (another filesystem, too
    /// many links).
    pub fn link_into(
        &self,
        function: DigestFunction,
        d: &BlobDigest,
        executable: bool,
        dest: &Path,
    ) -> Result<(), StoreError> {
        let not_found = || StoreError::NotFound {
            function,
            digest: *d,
        };
        if d.is_empty_blob(function) {
            File::create(dest).map_err(StoreError::io("create", dest))?;
            let mode = if executable { 0o555 } else { 0o444 };
            return fs::set_permissions(dest, fs::Permissions::from_mode(mode))
                .map_err(StoreError::io("chmod", dest));
        }
        let plain = self.blob_path(function, d);
        match fs::metadata(&plain) {
            Ok(m) if is_pristine(&m, d.size) => {}
            Ok(_) => {
                // Changed through a hardlink (an action running as root wrote to an input):
                // never hand it out again.
                self.discard(function, d);
                return Err(not_found());
            }
            Err(_) => return Err(not_found()),
        }
        let source = if executable {
            let x = self.path_in("cas-x", function, &d.hash);
            let intact = fs::metadata(&x).is_ok_and(|m| is_pristine(&m, d.size));
            if !intact {
                let tmp = self.temp_path();
                fs::copy(&plain, &tmp).map_err(StoreError::io("copy", &plain))?;
                mark_pristine(&tmp)?;
                fs::set_permissions(&tmp, fs::Permissions::from_mode(0o555))
                    .map_err(StoreError::io("chmod", &tmp))?;
                if let Some(parent) = x.parent() {
                    fs::create_dir_all(parent).map_err(StoreError::io("create", parent))?;
                }
                fs::rename(&tmp, &x).map_err(StoreError::io("rename into", &x))?;
            }
            x
        } else {
            plain
        };
        if fs::hard_link(&source, dest).is_err() {
            fs::copy(&source, dest).map_err(StoreError::io("copy into", dest))?;
        }
        Ok(())
    }

    /// The cached result of an action, if any.
    pub fn get_action(
        &self,
        function: DigestFunction,
        action: &BlobDigest,
    ) -> Result<Option<reapi::ActionResult>, StoreError> {
        let path = self.path_in("ac", function, &action.hash);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        match reapi::ActionResult::decode(&bytes[..]) {
            Ok(r) => Ok(Some(r)),
            Err(_) => {
                // A damaged entry is a miss, and goes.
                let _ = fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    /// Records the result of an action.
    pub fn put_action(
        &self,
        function: DigestFunction,
        action: &BlobDigest,
        result: &reapi::ActionResult,
    ) -> Result<(), StoreError> {
        let path = self.path_in("ac", function, &action.hash);
        let tmp = self.temp_path();
        fs::write(&tmp, result.encode_to_vec()).map_err(StoreError::io("write", &tmp))?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(StoreError::io("create", parent))?;
        }
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StoreError::io("rename into", &path)(e)
        })
    }
}

/// The modification time of every stored blob (2000-01-01, as deterministic as Bazel's).
/// A blob is written once and never again, so a later time means something wrote to it
/// through a hardlink of an input root: such a blob is no longer trusted.
const PRISTINE_MTIME: Duration = Duration::from_secs(946_684_800);

fn mark_pristine(path: &Path) -> Result<(), StoreError> {
    let f = File::options()
        .write(true)
        .open(path)
        .map_err(StoreError::io("open", path))?;
    f.set_modified(UNIX_EPOCH + PRISTINE_MTIME)
        .map_err(StoreError::io("set the modification time of", path))
}

fn is_pristine(meta: &fs::Metadata, size: u64) -> bool {
    meta.is_file()
        && meta.len() == size
        && meta
            .modified()
            .is_ok_and(|t| t == UNIX_EPOCH + PRISTINE_MTIME)
}

/// Removes a directory tree, making read-only directories writable first (input roots are
/// hardlinks to read-only blobs, in directories an action may have made read-only).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(path);
            fs::remove_dir_all(path)
        }
    }
}

fn make_writable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
        if let Ok(entries) = fs::read_dir(path) {
            for e in entries.flatten() {
                make_writable(&e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verifies_and_read_round_trips_under_both_functions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DiskStore::open(dir.path()).expect("open");
        for f in FUNCTIONS {
            let d = BlobDigest::of(f, b"hello");
            assert!(!store.has(f, &d));
            store.put_bytes(f, &d, b"hello").expect("put");
            assert!(store.has(f, &d));
            assert_eq!(store.read(f, &d).expect("read"), b"hello");
            let err = store.put_bytes(f, &d, b"hellO").unwrap_err();
            assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
            assert!(err.to_string().contains(&d.to_string()), "{err}");
        }
        assert!(
            store
                .blob_path(
                    DigestFunction::Blake3,
                    &BlobDigest::of(DigestFunction::Blake3, b"hello")
                )
                .starts_with(dir.path().join("cas/blake3"))
        );
    }

    #[test]
    fn a_store_held_by_one_worker_is_refused_to_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DiskStore::open(dir.path()).expect("open");
        let err = DiskStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("in use"), "{err}");
        drop(first);
        DiskStore::open(dir.path()).expect("free again once the first is closed");
    }

    #[test]
    fn a_blob_changed_on_disk_is_removed_not_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DiskStore::open(dir.path()).expect("open");
        let f = DigestFunction::Sha256;
        let d = store.insert_bytes(f, b"original").expect("put");
        let path = store.blob_path(f, &d);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::write(&path, b"tampered").expect("tamper");
        assert!(matches!(
            store.read(f, &d),
            Err(StoreError::NotFound { .. })
        ));
        assert!(!path.exists());
    }

    /// Regression: an action running as root could overwrite an input in place (same size)
    /// through its hardlink, and the changed blob was handed to later actions.
    #[test]
    fn a_blob_written_through_a_hardlink_is_no_longer_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DiskStore::open(dir.path()).expect("open");
        let f = DigestFunction::Blake3;
        let d = store.insert_bytes(f, b"input v1").expect("put");
        let out = tempfile::tempdir_in(dir.path()).expect("out");
        let linked = out.path().join("in.txt");
        store.link_into(f, &d, false, &linked).expect("link");
        // What root can do despite 0444: write the same number of bytes in place.
        fs::set_permissions(&linked, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::write(&linked, b"input v2").expect("write through the link");
        assert!(!store.has(f, &d), "FindMissingBlobs must report it missing");
        assert!(matches!(
            store.link_into(f, &d, false, &out.path().join("again")),
            Err(StoreError::NotFound { .. })
        ));
        // Uploaded again, it is trusted again.
        store.put_bytes(f, &d, b"input v1").expect("re-upload");
        assert!(store.has(f, &d));
        assert_eq!(store.read(f, &d).expect("read"), b"input v1");
    }

    #[test]
    fn link_into_makes_read_only_and_executable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DiskStore::open(dir.path()).expect("open");
        let f = DigestFunction::Blake3;
        let d = store.insert_bytes(f, b"#!/bin/sh\necho hi\n").expect("put");
        let out = tempfile::tempdir_in(dir.path()).expect("out");
        store
            .link_into(f, &d, false, &out.path().join("plain"))
            .expect("link");
        store
            .link_into(f, &d, true, &out.path().join("exe"))
            .expect("link x");
        let mode = |p: &str| {
            fs::metadata(out.path().join(p))
                .expect("stat")
                .permissions()
                .mode()
        };
        assert_eq!(mode("plain") & 0o777, 0o444);
        assert_eq!(mode("exe") & 0o777, 0o555);
        assert_eq!(
            fs::read(out.path().join("exe")).expect("read"),
            b"#!/bin/sh\necho hi\n"
        );
        let missing = BlobDigest::of(f, b"nope");
        assert!(matches!(
            store.link_into(f, &missing, false, &out.path().join("x")),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn action_results_round_trip_per_function() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DiskStore::open(dir.path()).expect("open");
        let key = BlobDigest::of(DigestFunction::Blake3, b"action");
        let result = reapi::ActionResult {
            exit_code: 3,
            ..Default::default()
        };
        store
            .put_action(DigestFunction::Blake3, &key, &result)
            .expect("put");
        assert_eq!(
            store.get_action(DigestFunction::Blake3, &key).expect("get"),
            Some(result)
        );
        assert_eq!(
            store.get_action(DigestFunction::Sha256, &key).expect("get"),
            None
        );
    }
}
