//! The local content-addressed store.
//!
//! Layout under the cache root (`$SYKLI_CACHE_DIR`, else `$XDG_CACHE_HOME/sykli`):
//! ```text
//! v1/blobs/ab/abcdef...   content, named by its BLAKE3 hex digest: output files, logs, and
//!                         the REAPI Action, Command and Directory messages of each entry
//! v1/ac/ab/abcdef....json action results, named by cache key (the REAPI Action digest);
//!                         mtime = last access (LRU, to TOUCH_GRANULARITY)
//! v1/last/<id>            "KEY\n" + the last manifest of each (project, task), to explain
//!                         misses
//! v1/last/<project>.keys  task -> KEY of each record of a project: lets a hit skip reading
//!                         its record
//! v1/tmp/                 temp files, renamed into place
//! v1/lock                 shared by writers, exclusive for clean and eviction
//! ```
//! Every file is written to a temp file, fsynced and renamed into place, so readers and
//! concurrent writers (other processes) never see a partial file. Blobs are verified on
//! read: a blob whose content does not match its name is removed and reported as
//! [`CacheError::Corrupt`], never served.
//!
//! So the store is a REAPI CAS (blobs by digest) plus an action cache (results by Action
//! digest) under BLAKE3; serving it remotely needs no change of layout.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::CacheError;
use super::digest::Digest;
use super::key::KeyManifest;

/// How stale an action result's "last used" time may be before a hit refreshes it: LRU
/// eviction orders entries to this precision, and a rerun within it writes nothing.
pub const TOUCH_GRANULARITY: Duration = Duration::from_secs(60);

/// Length of the key line ("64 hex characters\n") that starts a last-manifest record.
const LAST_KEY_LEN: usize = 65;

/// Environment variable overriding the cache location.
pub const CACHE_DIR_ENV: &str = "SYKLI_CACHE_DIR";

/// One file or symlink of a stored output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputEntry {
    /// A regular file.
    File {
        /// Content digest (a blob).
        digest: Digest,
        /// Size in bytes.
        size: u64,
        /// Unix permission bits.
        mode: u32,
    },
    /// A symbolic link, stored as its target text.
    Symlink {
        /// The link target.
        target: String,
    },
}

/// One named output of a task: every file under its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTree {
    /// The declared path, relative to the task's workdir.
    pub path: String,
    /// Digest of the whole tree (paths, kinds, modes, contents): what dependents are keyed on.
    pub digest: Digest,
    /// Path relative to the workdir -> entry.
    pub entries: BTreeMap<String, OutputEntry>,
}

/// A stored blob reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// The stored result of one successful task run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    /// Exit code of the run.
    pub exit_code: i32,
    /// Output name -> stored tree.
    pub outputs: BTreeMap<String, OutputTree>,
    /// The task's log (stdout and stderr as the sink wrote them), if captured.
    pub log: Option<BlobRef>,
    /// The host workdir of the run, relative to the project ("" for the root): where its
    /// outputs lie for dependents.
    pub workdir: String,
    /// The REAPI `Action`, `Command` and `Directory` messages of the key, stored as blobs
    /// (so the store serves as a CAS for them; empty when keyed under another function).
    #[serde(default)]
    pub messages: Vec<BlobRef>,
    /// When the entry was stored, in ms since the Unix epoch.
    pub created_unix_ms: u64,
}

impl ActionResult {
    /// Every blob this result refers to (kept while the result is).
    pub fn blobs(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.restored_blobs()
            .chain(self.messages.iter().map(|m| (&m.digest, m.size)))
    }

    /// The blobs a restore reads: output files and the log.
    pub fn restored_blobs(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.outputs
            .values()
            .flat_map(|t| t.entries.values())
            .filter_map(|e| match e {
                OutputEntry::File { digest, size, .. } => Some((digest, *size)),
                OutputEntry::Symlink { .. } => None,
            })
            .chain(self.log.iter().map(|l| (&l.digest, l.size)))
    }
}

/// Figures about a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// The cache root.
    pub location: PathBuf,
    /// Number of action results.
    pub entries: u64,
    /// Number of blobs.
    pub blobs: u64,
    /// Total bytes on disk (blobs, results, manifests).
    pub total_bytes: u64,
}

/// What a clean or an eviction removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanReport {
    /// Action results removed.
    pub entries_removed: u64,
    /// Blobs removed.
    pub blobs_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// A handle on a local content-addressed store. Cheap to open; many handles (in one or many
/// processes) may use one directory at once.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    dir: PathBuf,
    /// `v1/ac` and `v1/last`, kept open: a hit's records are opened relative to them (two
    /// path components to resolve instead of the whole path).
    fds: Arc<Dirs>,
}

#[derive(Debug)]
struct Dirs {
    ac: File,
    ac_dir: PathBuf,
    last: File,
    last_dir: PathBuf,
}

/// Opens `rel` (relative to `dir_fd`, whose path is `dir`) for reading; falls back to the
/// path when it is not found there (the directory may have been removed and recreated since
/// the store was opened). `Ok(None)` when the file does not exist.
fn open_in(dir_fd: &File, dir: &Path, rel: &str) -> io::Result<Option<File>> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    match openat(
        dir_fd,
        rel,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(nix::errno::Errno::ENOENT) => match File::open(dir.join(rel)) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e.into()),
    }
}

/// Holds the store lock until dropped.
#[derive(Debug)]
pub struct StoreLock(File);

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes `bytes` to `dest` atomically: a temp file in `tmp_dir`, fsync, rename.
pub(crate) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    write_atomic_with(tmp_dir, dest, bytes, true)
}

/// [`write_atomic`], with the fsync optional (for records whose loss after a crash only
/// costs a better explanation).
fn write_atomic_with(
    tmp_dir: &Path,
    dest: &Path,
    bytes: &[u8],
    durable: bool,
) -> Result<(), CacheError> {
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)
        .map_err(|e| CacheError::io("create temp file in", tmp_dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| {
            if durable {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .map_err(|e| CacheError::io("write", tmp.path(), e))?;
    tmp.persist(dest)
        .map_err(|e| CacheError::io("rename into place", dest, e.error))?;
    Ok(())
}

/// Suffix of a project's last-keys table under `v1/last`.
const LAST_KEYS_EXT: &str = ".keys";
const LAST_KEYS_MAGIC: &[u8; 8] = b"SYKLKEY1";

fn is_last_keys(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.ends_with(LAST_KEYS_EXT))
}

fn decode_last_keys(bytes: &[u8]) -> Option<HashMap<String, Digest>> {
    if bytes.get(..8)? != LAST_KEYS_MAGIC {
        return None;
    }
    let body = bytes.get(40..)?;
    if blake3::hash(body).as_bytes() != bytes.get(8..40)? {
        return None;
    }
    let mut pos = 0usize;
    let mut take = |n: usize| {
        let s = body.get(pos..pos.checked_add(n)?)?;
        pos += n;
        Some(s)
    };
    let n = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let mut keys = HashMap::with_capacity(usize::try_from(n).ok()?.min(body.len() / 36));
    for _ in 0..n {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let task = std::str::from_utf8(take(len)?).ok()?.to_owned();
        let key = Digest(take(32)?.try_into().ok()?);
        keys.insert(task, key);
    }
    Some(keys)
}

/// An action result's path relative to `v1/ac`.
fn ac_rel(key: &Digest) -> String {
    let hex = key.to_hex();
    format!("{}/{hex}.json", &hex[..2])
}

/// The file name of a last-manifest record under `v1/last`.
fn last_name(project: &str, task: &str) -> String {
    let mut h = blake3::Hasher::new_derive_key("sykli last manifest v1");
    h.update(project.as_bytes());
    h.update(&[0]);
    h.update(task.as_bytes());
    h.finalize().to_hex().to_string()
}

impl Store {
    /// Opens (creating) the store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, CacheError> {
        let root = root.into();
        let dir = root.join("v1");
        for sub in ["blobs", "ac", "last", "tmp"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(|e| CacheError::io("create directory", &d, e))?;
        }
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            let _ = fs::write(
                &tag,
                "Signature: 8a477f597d28d172789f06886806bc55\n# sykli cache\n",
            );
        }
        let open_dir = |sub: &str| {
            let d = dir.join(sub);
            File::open(&d).map_err(|e| CacheError::io("open directory", &d, e))
        };
        let fds = Arc::new(Dirs {
            ac: open_dir("ac")?,
            ac_dir: dir.join("ac"),
            last: open_dir("last")?,
            last_dir: dir.join("last"),
        });
        Ok(Store { root, dir, fds })
    }

    /// The default location: `$SYKLI_CACHE_DIR`, else `<user cache dir>/sykli`.
    pub fn default_root() -> Result<PathBuf, CacheError> {
        if let Some(d) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(d));
        }
        dirs::cache_dir()
            .map(|d| d.join("sykli"))
            .ok_or(CacheError::NoCacheDir)
    }

    /// Opens the store at [`Store::default_root`].
    pub fn open_default() -> Result<Store, CacheError> {
        Store::open(Store::default_root()?)
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.to_hex();
        self.dir.join("blobs").join(&hex[..2]).join(hex)
    }

    fn ac_path(&self, key: &Digest) -> PathBuf {
        self.dir.join("ac").join(ac_rel(key))
    }

    fn lock_with(&self, exclusive: bool) -> Result<StoreLock, CacheError> {
        let p = self.dir.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| CacheError::io("open lock file", &p, e))?;
        if exclusive { f.lock() } else { f.lock_shared() }
            .map_err(|e| CacheError::io("lock", &p, e))?;
        Ok(StoreLock(f))
    }

    /// Takes the writers' (shared) lock: clean and eviction wait until it is dropped.
    pub fn write_lock(&self) -> Result<StoreLock, CacheError> {
        self.lock_with(false)
    }

    /// Stores the content of the file at `path`, hashing while copying. Returns its digest
    /// and size.
    pub fn put_file(&self, path: &Path) -> Result<BlobRef, CacheError> {
        let mut src = File::open(path).map_err(|e| CacheError::io("open", path, e))?;
        let tmp_dir = self.tmp();
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir)
            .map_err(|e| CacheError::io("create temp file in", &tmp_dir, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CacheError::io("read", path, e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(|e| CacheError::io("write", tmp.path(), e))?;
            size += n as u64;
        }
        let digest: Digest = hasher.finalize().into();
        self.persist_blob(tmp, &digest)?;
        Ok(BlobRef { digest, size })
    }

    /// Stores `bytes`. Returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let digest = Digest::of_bytes(bytes);
        if self.blob_path(&digest).exists() {
            return Ok(digest);
        }
        let tmp_dir = self.tmp();
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir)
            .map_err(|e| CacheError::io("create temp file in", &tmp_dir, e))?;
        tmp.write_all(bytes)
            .map_err(|e| CacheError::io("write", tmp.path(), e))?;
        self.persist_blob(tmp, &digest)?;
        Ok(digest)
    }

    fn persist_blob(
        &self,
        tmp: tempfile::NamedTempFile,
        digest: &Digest,
    ) -> Result<(), CacheError> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(()); // same name, same content: the temp file is dropped
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| CacheError::io("sync", tmp.path(), e))?;
        let shard = dest.parent().unwrap_or(&self.dir);
        fs::create_dir_all(shard).map_err(|e| CacheError::io("create directory", shard, e))?;
        tmp.persist(&dest)
            .map_err(|e| CacheError::io("rename into place", &dest, e.error))?;
        Ok(())
    }

    /// Whether a blob is present (not verified).
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Reads and verifies a blob. A blob whose content does not match is removed.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, CacheError> {
        let p = self.blob_path(d);
        let bytes = fs::read(&p).map_err(|e| self.missing_or_io(d, &p, e))?;
        if Digest::of_bytes(&bytes) != *d {
            return Err(self.corrupt(d, &p));
        }
        Ok(bytes)
    }

    /// Copies a verified blob to `dest` (atomically, with permission bits `mode`). A blob
    /// whose content does not match is removed and `dest` is left untouched.
    pub fn copy_blob_to(&self, d: &Digest, dest: &Path, mode: u32) -> Result<(), CacheError> {
        let p = self.blob_path(d);
        let mut src = File::open(&p).map_err(|e| self.missing_or_io(d, &p, e))?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| CacheError::io("create directory", dir, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| CacheError::io("create temp file in", dir, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CacheError::io("read", &p, e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(|e| CacheError::io("write", tmp.path(), e))?;
        }
        if Digest::from(hasher.finalize()) != *d {
            return Err(self.corrupt(d, &p));
        }
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| CacheError::io("set permissions of", tmp.path(), e))?;
        tmp.persist(dest)
            .map_err(|e| CacheError::io("rename into place", dest, e.error))?;
        Ok(())
    }

    fn missing_or_io(&self, d: &Digest, p: &Path, e: io::Error) -> CacheError {
        if e.kind() == io::ErrorKind::NotFound {
            CacheError::MissingBlob { digest: *d }
        } else {
            CacheError::io("read", p, e)
        }
    }

    fn corrupt(&self, d: &Digest, p: &Path) -> CacheError {
        let _ = fs::remove_file(p);
        CacheError::Corrupt { digest: *d }
    }

    /// The action result stored under `key`, marking it used now (for LRU eviction) unless
    /// it was marked less than [`TOUCH_GRANULARITY`] ago. A damaged record is removed and
    /// reads as absent.
    pub fn get_action(&self, key: &Digest) -> Result<Option<ActionResult>, CacheError> {
        let rel = ac_rel(key);
        let read = |mut f: File| -> io::Result<(Vec<u8>, SystemTime)> {
            let meta = f.metadata()?;
            // A record is never written in place (a new one is renamed over it), so the
            // size of the one stat is its length: read that much, with no probe for the end.
            let mut b = vec![0u8; usize::try_from(meta.len()).unwrap_or(usize::MAX)];
            f.read_exact(&mut b)?;
            Ok((b, meta.modified()?))
        };
        let (bytes, used) = match open_in(&self.fds.ac, &self.fds.ac_dir, &rel)
            .and_then(|f| f.map(read).transpose())
        {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(e) => return Err(CacheError::io("read", &self.ac_path(key), e)),
        };
        let p = || self.fds.ac_dir.join(&rel);
        match serde_json::from_slice::<ActionResult>(&bytes) {
            Ok(r) => {
                // Last access is the record's mtime: independent of atime and noatime mounts.
                // A hit writes nothing it does not need to: recently marked records are left.
                let now = SystemTime::now();
                if now.duration_since(used).unwrap_or_default() >= TOUCH_GRANULARITY
                    && let Ok(f) = File::options().write(true).open(p())
                {
                    let _ = f.set_modified(now);
                }
                Ok(Some(r))
            }
            Err(_) => {
                let _ = fs::remove_file(p());
                Ok(None)
            }
        }
    }

    /// Stores an action result under `key` (atomically; the last writer wins).
    pub fn put_action(&self, key: &Digest, result: &ActionResult) -> Result<(), CacheError> {
        let p = self.ac_path(key);
        let shard = p.parent().unwrap_or(&self.dir);
        fs::create_dir_all(shard).map_err(|e| CacheError::io("create directory", shard, e))?;
        let bytes = serde_json::to_vec(result).map_err(|e| CacheError::Encode {
            what: "action result".into(),
            source: e,
        })?;
        write_atomic(&self.tmp(), &p, &bytes)
    }

    fn last_path(&self, project: &str, task: &str) -> PathBuf {
        self.dir.join("last").join(last_name(project, task))
    }

    /// The last manifest recorded for `task` of `project` (an opaque project id).
    pub fn last_manifest(
        &self,
        project: &str,
        task: &str,
    ) -> Result<Option<KeyManifest>, CacheError> {
        let p = self.last_path(project, task);
        match fs::read(&p) {
            // "KEY\n" then the manifest's JSON.
            Ok(b) => Ok(b
                .get(LAST_KEY_LEN..)
                .and_then(|json| serde_json::from_slice(json).ok())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CacheError::io("read", &p, e)),
        }
    }

    /// Records `manifest` (keyed `key`) as the last one of its task in `project`. A record
    /// that already holds `key` is left as it is, read but not rewritten: the common case of
    /// a hit.
    pub fn set_last_manifest(
        &self,
        project: &str,
        key: &Digest,
        manifest: &KeyManifest,
    ) -> Result<(), CacheError> {
        let name = last_name(project, &manifest.task);
        let head = format!("{}\n", key.to_hex());
        let mut old = [0u8; LAST_KEY_LEN];
        if let Ok(Some(mut f)) = open_in(&self.fds.last, &self.fds.last_dir, &name)
            && f.read_exact(&mut old).is_ok()
            && old[..] == *head.as_bytes()
        {
            return Ok(());
        }
        let p = self.dir.join("last").join(&name);
        let mut bytes = head.into_bytes();
        serde_json::to_writer(&mut bytes, manifest).map_err(|e| CacheError::Encode {
            what: "manifest".into(),
            source: e,
        })?;
        write_atomic_with(&self.tmp(), &p, &bytes, false)
    }

    /// The last-keys table of `project`: task name -> key of its last-manifest record, as
    /// the project's runs last saw them. A hint only, that lets a hit skip reading its record
    /// (see [`Store::set_last_keys`]); empty when missing or damaged.
    pub(crate) fn last_keys(&self, project: &str) -> HashMap<String, Digest> {
        let p = self
            .dir
            .join("last")
            .join(format!("{project}{LAST_KEYS_EXT}"));
        let Ok(bytes) = fs::read(&p) else {
            return HashMap::new();
        };
        decode_last_keys(&bytes).unwrap_or_default()
    }

    /// Replaces the last-keys table of `project` (atomically, not fsynced: losing it only
    /// costs reading each record once more). Each entry must name the key its task's record
    /// held when it was read or written; a record rewritten since by a concurrent run of the
    /// same project only makes an explanation compare against that run's manifest.
    pub(crate) fn set_last_keys(
        &self,
        project: &str,
        keys: &HashMap<String, Digest>,
    ) -> Result<(), CacheError> {
        let p = self
            .dir
            .join("last")
            .join(format!("{project}{LAST_KEYS_EXT}"));
        let mut body = Vec::with_capacity(8 + keys.len() * 64);
        body.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        for (task, key) in keys {
            body.extend_from_slice(&(task.len() as u32).to_le_bytes());
            body.extend_from_slice(task.as_bytes());
            body.extend_from_slice(&key.0);
        }
        let mut out = Vec::with_capacity(body.len() + 40);
        out.extend_from_slice(LAST_KEYS_MAGIC);
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        out.extend_from_slice(&body);
        write_atomic_with(&self.tmp(), &p, &out, false)
    }

    /// Counts entries, blobs and bytes.
    pub fn stats(&self) -> Result<CacheStats, CacheError> {
        let mut stats = CacheStats {
            location: self.root.clone(),
            entries: 0,
            blobs: 0,
            total_bytes: 0,
        };
        for (sub, is_ac) in [("ac", true), ("blobs", false), ("last", false)] {
            for (_, meta) in list_files(&self.dir.join(sub))? {
                stats.total_bytes += meta.len();
                if is_ac {
                    stats.entries += 1;
                } else if sub == "blobs" {
                    stats.blobs += 1;
                }
            }
        }
        Ok(stats)
    }

    /// Removes every entry (`older_than: None`) or those not used for `older_than`, then
    /// every blob no remaining entry refers to.
    pub fn clean(&self, older_than: Option<Duration>) -> Result<CleanReport, CacheError> {
        let _lock = self.lock_with(true)?;
        let cutoff = older_than.map(|d| SystemTime::now() - d);
        let mut report = CleanReport::default();
        let lasts = list_files(&self.dir.join("last"))?;
        let mut removed_record = false;
        for (path, meta) in &lasts {
            if cutoff.is_none_or(|c| meta.modified().is_ok_and(|m| m < c)) {
                remove(path, meta)?;
                removed_record |= !is_last_keys(path);
            }
        }
        // A last-keys table naming a removed record would let hits skip re-recording it.
        if removed_record {
            for (path, meta) in lasts.iter().filter(|(p, _)| is_last_keys(p)) {
                remove(path, meta)?;
            }
        }
        let entries = self.load_entries()?;
        let mut kept = Vec::new();
        for e in entries {
            if cutoff.is_none_or(|c| e.used < c) {
                remove(&e.path, &e.meta)?;
                report.entries_removed += 1;
                report.bytes_freed += e.meta.len();
            } else {
                kept.push(e);
            }
        }
        self.sweep(&kept, &mut report)?;
        self.clean_tmp()?;
        Ok(report)
    }

    /// Evicts least recently used entries until the store (results plus the blobs they
    /// refer to) fits in `limit_bytes`, then removes unreferenced blobs.
    pub fn evict_to(&self, limit_bytes: u64) -> Result<CleanReport, CacheError> {
        let _lock = self.lock_with(true)?;
        let mut entries = self.load_entries()?;
        entries.sort_by_key(|e| std::cmp::Reverse(e.used)); // most recent first
        let mut report = CleanReport::default();
        let mut counted: HashSet<Digest> = HashSet::new();
        let mut total = 0u64;
        let mut kept = Vec::new();
        let mut full = false;
        for e in entries {
            let extra: u64 = e
                .blobs
                .iter()
                .filter(|(d, _)| !counted.contains(d))
                .map(|(_, s)| *s)
                .sum::<u64>()
                + e.meta.len();
            if !full && total + extra <= limit_bytes {
                total += extra;
                counted.extend(e.blobs.iter().map(|(d, _)| *d));
                kept.push(e);
            } else {
                full = true;
                remove(&e.path, &e.meta)?;
                report.entries_removed += 1;
                report.bytes_freed += e.meta.len();
            }
        }
        self.sweep(&kept, &mut report)?;
        Ok(report)
    }

    fn load_entries(&self) -> Result<Vec<LoadedEntry>, CacheError> {
        let mut out = Vec::new();
        for (path, meta) in list_files(&self.dir.join("ac"))? {
            let parsed = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<ActionResult>(&b).ok());
            let used = meta.modified().unwrap_or(UNIX_EPOCH);
            let blobs = parsed
                .map(|r| r.blobs().map(|(d, s)| (*d, s)).collect())
                .unwrap_or_default();
            out.push(LoadedEntry {
                path,
                meta,
                used,
                blobs,
            });
        }
        Ok(out)
    }

    fn sweep(&self, kept: &[LoadedEntry], report: &mut CleanReport) -> Result<(), CacheError> {
        let live: HashSet<Digest> = kept
            .iter()
            .flat_map(|e| e.blobs.iter().map(|(d, _)| *d))
            .collect();
        for (path, meta) in list_files(&self.dir.join("blobs"))? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let referenced = name.parse::<Digest>().is_ok_and(|d| live.contains(&d));
            if !referenced {
                remove(&path, &meta)?;
                report.blobs_removed += 1;
                report.bytes_freed += meta.len();
            }
        }
        Ok(())
    }

    fn clean_tmp(&self) -> Result<(), CacheError> {
        for (path, meta) in list_files(&self.tmp())? {
            remove(&path, &meta)?;
        }
        Ok(())
    }
}

struct LoadedEntry {
    path: PathBuf,
    meta: fs::Metadata,
    used: SystemTime,
    blobs: Vec<(Digest, u64)>,
}

fn remove(path: &Path, _meta: &fs::Metadata) -> Result<(), CacheError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CacheError::io("remove", path, e)),
    }
}

/// Every regular file under `dir` (one level of shard directories deep or flat).
fn list_files(dir: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>, CacheError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CacheError::io("list", &d, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| CacheError::io("list", &d, e))?;
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                out.push((entry.path(), meta));
            }
        }
    }
    Ok(out)
}

/// Output trees of a task run, read from its workdir and stored as blobs.
pub(crate) fn store_outputs(
    store: &Store,
    workdir: &Path,
    outputs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, OutputTree>, CacheError> {
    let mut trees = BTreeMap::new();
    for (name, rel) in outputs {
        let rel_path = super::check_relative(name, rel)?;
        let abs = workdir.join(&rel_path);
        let meta = fs::symlink_metadata(&abs).map_err(|e| CacheError::MissingOutput {
            name: name.clone(),
            path: rel.clone(),
            source: e,
        })?;
        let mut entries = BTreeMap::new();
        let mut files: Vec<(PathBuf, fs::Metadata)> = Vec::new();
        if meta.is_dir() {
            for entry in walk_all(&abs)? {
                files.push(entry);
            }
        } else {
            files.push((abs.clone(), meta));
        }
        for (path, meta) in files {
            let rel_in_workdir = path
                .strip_prefix(workdir)
                .ok()
                .and_then(|p| p.to_str())
                .ok_or_else(|| CacheError::InvalidOutput {
                    name: name.clone(),
                    path: rel.clone(),
                    reason: format!("{} is not a UTF-8 path inside the workdir", path.display()),
                })?
                .to_owned();
            if let Some(kind) = crate::paths::special_kind(meta.file_type()) {
                return Err(CacheError::InvalidOutput {
                    name: name.clone(),
                    path: rel.clone(),
                    reason: format!("{} is a {kind}, not a regular file", path.display()),
                });
            }
            let entry = if meta.file_type().is_symlink() {
                let target =
                    fs::read_link(&path).map_err(|e| CacheError::io("read link", &path, e))?;
                OutputEntry::Symlink {
                    target: target.to_string_lossy().into_owned(),
                }
            } else {
                let blob = store.put_file(&path)?;
                OutputEntry::File {
                    digest: blob.digest,
                    size: blob.size,
                    mode: meta.permissions().mode() & 0o7777,
                }
            };
            entries.insert(rel_in_workdir, entry);
        }
        let digest = tree_digest(&entries);
        trees.insert(
            name.clone(),
            OutputTree {
                path: rel.clone(),
                digest,
                entries,
            },
        );
    }
    Ok(trees)
}

/// The digest of an output tree: what dependents are keyed on.
pub(crate) fn tree_digest(entries: &BTreeMap<String, OutputEntry>) -> Digest {
    let mut h = blake3::Hasher::new_derive_key("sykli output tree v1");
    h.update(&(entries.len() as u64).to_le_bytes());
    for (path, e) in entries {
        h.update(&(path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        match e {
            OutputEntry::File { digest, mode, .. } => {
                h.update(b"f");
                h.update(&mode.to_le_bytes());
                h.update(&digest.0);
            }
            OutputEntry::Symlink { target } => {
                h.update(b"l");
                h.update(&(target.len() as u64).to_le_bytes());
                h.update(target.as_bytes());
            }
        }
    }
    h.finalize().into()
}

/// Every file and symlink under `dir`, recursively (not following links).
fn walk_all(dir: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>, CacheError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = fs::read_dir(&d).map_err(|e| CacheError::io("list", &d, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| CacheError::io("list", &d, e))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(|e| CacheError::io("stat", &path, e))?;
            if meta.is_dir() {
                stack.push(path);
            } else {
                out.push((path, meta));
            }
        }
    }
    Ok(out)
}
