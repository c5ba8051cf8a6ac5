//! The stat index: fast change detection for input files, like git's index.
//!
//! For every file hashed it records the relative path, size, mtime, ctime and inode next to
//! the content digest, and persists them per project (`.sykli/cache-index`). A file whose
//! stat data is unchanged is not read again.
//!
//! **Racy files.** A file modified within the filesystem's timestamp granularity of the moment
//! it was hashed could change again without its stat data changing. Such an entry is never
//! trusted: a file whose mtime is not safely older than the time its stat was taken
//! ([`RACY_WINDOW`], or two seconds on filesystems with whole-second timestamps), or not older
//! than the index file itself (git's rule), is rehashed on every check until it settles.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::CacheError;
use super::digest::{Digest, DigestFunction, hash_symlink};

/// A file modified less than this long before its stat was taken is "racy" and rehashed.
pub const RACY_WINDOW_NS: i64 = 20_000_000;
/// The racy window on filesystems with whole-second timestamps.
const COARSE_RACY_WINDOW_NS: i64 = 2_000_000_000;

/// The index file's magic: one per digest function, so an index of another function is
/// never trusted.
fn magic(function: DigestFunction) -> &'static [u8; 8] {
    match function {
        DigestFunction::Blake3 => b"SYKIDXb3",
        DigestFunction::Sha256 => b"SYKIDXs2",
    }
}

/// The stat data compared to decide whether a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Stat {
    pub(crate) fn of(meta: &Metadata) -> Stat {
        Stat {
            size: meta.len(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
            ino: meta.ino(),
        }
    }

    pub(crate) fn of_nix(st: &nix::sys::stat::FileStat) -> Stat {
        Stat {
            size: st.st_size as u64,
            mtime_ns: st.st_mtime.saturating_mul(1_000_000_000) + st.st_mtime_nsec,
            ctime_ns: st.st_ctime.saturating_mul(1_000_000_000) + st.st_ctime_nsec,
            ino: st.st_ino,
        }
    }
}

type Map = HashMap<String, Entry, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
struct Entry {
    stat: Stat,
    /// Wall-clock time just before the stat was taken, in ns since the epoch.
    stat_taken_ns: i64,
    digest: Digest,
    /// Loaded from the index file (as opposed to hashed in this session).
    from_disk: bool,
}

impl Entry {
    fn trusted(&self, now: &Stat, index_mtime_ns: i64) -> bool {
        if self.stat != *now {
            return false;
        }
        let window = if self.stat.mtime_ns % 1_000_000_000 == 0 {
            COARSE_RACY_WINDOW_NS
        } else {
            RACY_WINDOW_NS
        };
        if self.stat.mtime_ns >= self.stat_taken_ns.saturating_sub(window) {
            return false;
        }
        !(self.from_disk && self.stat.mtime_ns >= index_mtime_ns)
    }
}

/// Stat-to-digest index of one project's files. Thread-safe: keys may be computed in
/// parallel against one index.
#[derive(Debug)]
pub struct StatIndex {
    path: Option<PathBuf>,
    function: DigestFunction,
    index_mtime_ns: i64,
    entries: RwLock<Map>,
    dirty: AtomicBool,
    hashed: AtomicU64,
    hashed_bytes: AtomicU64,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl StatIndex {
    /// An index that is never persisted (BLAKE3).
    pub fn in_memory() -> StatIndex {
        StatIndex::in_memory_with(DigestFunction::Blake3)
    }

    /// An index that is never persisted, of file digests under `function`.
    pub fn in_memory_with(function: DigestFunction) -> StatIndex {
        StatIndex {
            path: None,
            function,
            index_mtime_ns: 0,
            entries: RwLock::new(Map::default()),
            dirty: AtomicBool::new(false),
            hashed: AtomicU64::new(0),
            hashed_bytes: AtomicU64::new(0),
        }
    }

    /// Loads the index persisted at `path`. A missing file gives an empty index; so does an
    /// unreadable or damaged one (it is only a cache of digests: every file is rehashed).
    pub fn open(path: impl Into<PathBuf>) -> StatIndex {
        StatIndex::open_with(path, DigestFunction::Blake3)
    }

    /// Like [`StatIndex::open`], for file digests under `function` (an index file written
    /// under another function reads as empty).
    pub fn open_with(path: impl Into<PathBuf>, function: DigestFunction) -> StatIndex {
        let path = path.into();
        let mut index = StatIndex::in_memory_with(function);
        if let Ok((entries, mtime)) = load(&path, function) {
            index.entries = RwLock::new(entries);
            index.index_mtime_ns = mtime;
        }
        index.path = Some(path);
        index
    }

    /// For each file (relative path, `lstat` data), the recorded digest if its stat data is
    /// unchanged and not racy; `None` when the file must be hashed.
    pub(crate) fn trusted<'a>(
        &self,
        files: impl Iterator<Item = (&'a str, &'a Stat)>,
    ) -> Vec<Option<Digest>> {
        let map = self.read();
        files
            .map(|(rel, stat)| {
                map.get(rel)
                    .filter(|e| e.trusted(stat, self.index_mtime_ns))
                    .map(|e| e.digest)
            })
            .collect()
    }

    /// The digest of the file at `root/rel`, whose `lstat` is `stat`: from the index when the
    /// stat data is unchanged and not racy, else by hashing the file (and recording it).
    pub(crate) fn digest(&self, root: &Path, rel: &str, stat: &Stat) -> io::Result<Digest> {
        if let Some(e) = self.read().get(rel)
            && e.trusted(stat, self.index_mtime_ns)
        {
            return Ok(e.digest);
        }
        // The stat we compare against next time must be taken before reading the content.
        let stat_taken_ns = now_ns();
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path)?;
        let stat = Stat::of(&meta);
        if let Some(kind) = crate::paths::special_kind(meta.file_type()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("it is a {kind}, not a regular file (never read as an input)"),
            ));
        }
        let digest = if meta.file_type().is_symlink() {
            hash_symlink(&path)?
        } else {
            self.function.of_file(&path, stat.size)?
        };
        self.hashed.fetch_add(1, Ordering::Relaxed);
        self.hashed_bytes.fetch_add(stat.size, Ordering::Relaxed);
        self.write().insert(
            rel.to_owned(),
            Entry {
                stat,
                stat_taken_ns,
                digest,
                from_disk: false,
            },
        );
        self.dirty.store(true, Ordering::Relaxed);
        Ok(digest)
    }

    /// The digest function of this index's file digests.
    pub fn function(&self) -> DigestFunction {
        self.function
    }

    /// How many files this index has hashed (rather than trusted) since it was opened.
    pub fn hashed_files(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    /// How many bytes this index has hashed since it was opened.
    pub fn hashed_bytes(&self) -> u64 {
        self.hashed_bytes.load(Ordering::Relaxed)
    }

    /// Number of files recorded.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no file is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the index atomically (temp file + rename) if anything changed. Does nothing
    /// for an in-memory index.
    pub fn save(&self) -> Result<(), CacheError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut body = Vec::new();
        {
            let entries = self.read();
            body.reserve(entries.len() * 96);
            body.extend_from_slice(&(entries.len() as u64).to_le_bytes());
            for (rel, e) in entries.iter() {
                body.extend_from_slice(&(rel.len() as u32).to_le_bytes());
                body.extend_from_slice(rel.as_bytes());
                body.extend_from_slice(&e.stat.size.to_le_bytes());
                body.extend_from_slice(&e.stat.mtime_ns.to_le_bytes());
                body.extend_from_slice(&e.stat.ctime_ns.to_le_bytes());
                body.extend_from_slice(&e.stat.ino.to_le_bytes());
                body.extend_from_slice(&e.stat_taken_ns.to_le_bytes());
                body.extend_from_slice(&e.digest.0);
            }
        }
        let mut out = Vec::with_capacity(body.len() + 40);
        out.extend_from_slice(magic(self.function));
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        out.extend_from_slice(&body);
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| CacheError::io("create directory", dir, e))?;
        super::store::write_atomic(dir, path, &out)?;
        self.dirty.store(false, Ordering::Relaxed);
        Ok(())
    }

    // A panic while holding the lock leaves a consistent map (single inserts only).
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Map> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Map> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn load(path: &Path, function: DigestFunction) -> io::Result<(Map, i64)> {
    let bytes = fs::read(path)?;
    let meta = fs::metadata(path)?;
    let mtime = Stat::of(&meta).mtime_ns;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "damaged cache index");
    if bytes.len() < 48 || &bytes[..8] != magic(function) {
        return Err(bad());
    }
    let body = &bytes[40..];
    if blake3::hash(body).as_bytes() != &bytes[8..40] {
        return Err(bad());
    }
    let mut r = Reader { buf: body, pos: 0 };
    let n = r.u64().ok_or_else(bad)? as usize;
    let mut map = Map::with_capacity_and_hasher(n.min(body.len() / 80 + 1), Default::default());
    for _ in 0..n {
        let len = r.u32().ok_or_else(bad)? as usize;
        let rel = std::str::from_utf8(r.take(len).ok_or_else(bad)?)
            .map_err(|_| bad())?
            .to_owned();
        let stat = Stat {
            size: r.u64().ok_or_else(bad)?,
            mtime_ns: r.u64().ok_or_else(bad)? as i64,
            ctime_ns: r.u64().ok_or_else(bad)? as i64,
            ino: r.u64().ok_or_else(bad)?,
        };
        let stat_taken_ns = r.u64().ok_or_else(bad)? as i64;
        let mut d = [0u8; 32];
        d.copy_from_slice(r.take(32).ok_or_else(bad)?);
        map.insert(
            rel,
            Entry {
                stat,
                stat_taken_ns,
                digest: Digest(d),
                from_disk: true,
            },
        );
    }
    Ok((map, mtime))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}
