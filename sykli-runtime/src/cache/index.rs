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
    /// The entries of the index file as loaded, never changed: read in place.
    disk: Disk,
    /// Entries hashed in this session: they supersede `disk`.
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
            disk: Disk::default(),
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
        if let Ok((disk, mtime)) = load(&path, function) {
            // An index written unsorted (by an older sykli) is rewritten sorted once.
            index.dirty = AtomicBool::new(!disk.was_sorted);
            index.disk = disk;
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
        // Files come sorted by path, as the disk entries are: each is usually the entry
        // right after the previous one's.
        let mut hint = 0;
        files
            .map(|(rel, stat)| {
                let e = match map.get(rel) {
                    Some(e) => Some(e.clone()),
                    None => self.disk.find(rel, hint).map(|slot| {
                        hint = slot + 1;
                        self.disk.entry(slot)
                    }),
                };
                e.filter(|e| e.trusted(stat, self.index_mtime_ns))
                    .map(|e| e.digest)
            })
            .collect()
    }

    /// The entry recorded for `rel`: hashed in this session, else loaded.
    fn get(&self, rel: &str) -> Option<Entry> {
        if let Some(e) = self.read().get(rel) {
            return Some(e.clone());
        }
        self.disk.find(rel, 0).map(|slot| self.disk.entry(slot))
    }

    /// The digest of the file at `root/rel`, whose `lstat` is `stat`: from the index when the
    /// stat data is unchanged and not racy, else by hashing the file (and recording it).
    pub(crate) fn digest(&self, root: &Path, rel: &str, stat: &Stat) -> io::Result<Digest> {
        if let Some(e) = self.get(rel)
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
        let map = self.read();
        map.len()
            + (0..self.disk.slots.len())
                .filter(|&i| !self.disk.path(i).is_some_and(|p| map.contains_key(p)))
                .count()
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
            let fresh = self.read();
            // Sorted by path, so that a load can read the entries in place.
            let mut entries: Vec<(&str, Entry)> = fresh
                .iter()
                .map(|(p, e)| (p.as_str(), e.clone()))
                .chain((0..self.disk.slots.len()).filter_map(|i| {
                    let p = self.disk.path(i)?;
                    (!fresh.contains_key(p)).then(|| (p, self.disk.entry(i)))
                }))
                .collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
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

/// Bytes of an entry after its path: size, mtime, ctime, inode, stat time, digest.
const ENTRY_TAIL: usize = 5 * 8 + 32;

/// The entries of an index file, read in place: no allocation per entry.
#[derive(Debug, Default)]
struct Disk {
    /// The whole file (magic and checksum, then the entries).
    body: Vec<u8>,
    /// Offset in `body` of each entry's path, sorted by path.
    slots: Vec<(usize, u32)>,
    /// Whether the file listed its entries sorted (else they were sorted on load).
    was_sorted: bool,
}

impl Disk {
    fn path_bytes(&self, slot: usize) -> &[u8] {
        let (off, len) = self.slots[slot];
        &self.body[off..off + len as usize]
    }

    /// The path of entry `slot` (checked UTF-8 on load).
    fn path(&self, slot: usize) -> Option<&str> {
        std::str::from_utf8(self.path_bytes(slot)).ok()
    }

    /// The entry for `rel`, trying `hint` (the slot after the previous find) first.
    fn find(&self, rel: &str, hint: usize) -> Option<usize> {
        if hint < self.slots.len() && self.path_bytes(hint) == rel.as_bytes() {
            return Some(hint);
        }
        self.slots
            .binary_search_by(|&(off, len)| self.body[off..off + len as usize].cmp(rel.as_bytes()))
            .ok()
    }

    fn entry(&self, slot: usize) -> Entry {
        let (off, len) = self.slots[slot];
        let t = &self.body[off + len as usize..off + len as usize + ENTRY_TAIL];
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&t[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let mut d = [0u8; 32];
        d.copy_from_slice(&t[40..72]);
        Entry {
            stat: Stat {
                size: u64_at(0),
                mtime_ns: u64_at(1) as i64,
                ctime_ns: u64_at(2) as i64,
                ino: u64_at(3),
            },
            stat_taken_ns: u64_at(4) as i64,
            digest: Digest(d),
            from_disk: true,
        }
    }
}

fn load(path: &Path, function: DigestFunction) -> io::Result<(Disk, i64)> {
    let bytes = fs::read(path)?;
    let meta = fs::metadata(path)?;
    let mtime = Stat::of(&meta).mtime_ns;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "damaged cache index");
    if bytes.len() < 48 || &bytes[..8] != magic(function) {
        return Err(bad());
    }
    if blake3::hash(&bytes[40..]).as_bytes() != &bytes[8..40] {
        return Err(bad());
    }
    // Offsets are into the whole file: the body is read in place.
    let body = bytes;
    let mut r = Reader {
        buf: &body,
        pos: 40,
    };
    let n = r.u64().ok_or_else(bad)? as usize;
    let mut slots = Vec::with_capacity(n.min(body.len() / (4 + ENTRY_TAIL)));
    let mut sorted = true;
    let mut prev: &[u8] = &[];
    for i in 0..n {
        let len = r.u32().ok_or_else(bad)?;
        let off = r.pos;
        let p = r.take(len as usize).ok_or_else(bad)?;
        std::str::from_utf8(p).map_err(|_| bad())?;
        r.take(ENTRY_TAIL).ok_or_else(bad)?;
        if i > 0 && p <= prev {
            sorted = false;
        }
        prev = p;
        slots.push((off, len));
    }
    if !sorted {
        let key = |&(off, len): &(usize, u32)| &body[off..off + len as usize];
        slots.sort_by(|a, b| key(a).cmp(key(b)));
        // One entry per path (a well-formed file has no duplicates; keep the last).
        slots.reverse();
        slots.dedup_by(|a, b| key(a) == key(b));
        slots.reverse();
    }
    Ok((
        Disk {
            body,
            slots,
            was_sorted: sorted,
        },
        mtime,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An index file as an older sykli wrote it: entries in hash-map order, not sorted.
    fn legacy_file(entries: &[(&str, Stat, Digest)]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (rel, stat, digest) in entries {
            body.extend_from_slice(&(rel.len() as u32).to_le_bytes());
            body.extend_from_slice(rel.as_bytes());
            for v in [
                stat.size,
                stat.mtime_ns as u64,
                stat.ctime_ns as u64,
                stat.ino,
                // Hashed well after its last change: trusted while the stat data holds.
                stat.mtime_ns as u64 + 10_000_000_000,
            ] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            body.extend_from_slice(&digest.0);
        }
        let mut out = magic(DigestFunction::Blake3).to_vec();
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn stat(n: u64) -> Stat {
        Stat {
            size: n,
            mtime_ns: 1_000_000_007 * n as i64,
            ctime_ns: 1_000_000_007 * n as i64,
            ino: n,
        }
    }

    #[test]
    fn unsorted_index_file_of_an_older_version_is_read_and_rewritten_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cache-index");
        let names = ["src/b", "a", "src/a", "src.txt", "src/a/x"];
        let entries: Vec<(&str, Stat, Digest)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, stat(i as u64 + 1), Digest::of_bytes(n.as_bytes())))
            .collect();
        fs::write(&path, legacy_file(&entries)).expect("write");
        let index = StatIndex::open(&path);
        assert_eq!(index.len(), names.len());
        // Asked in sorted order (as keys ask), every entry is found, with its own digest.
        let mut asked = entries.clone();
        asked.sort_by(|a, b| a.0.cmp(b.0));
        let got = index.trusted(asked.iter().map(|(p, s, _)| (*p, s)));
        let want: Vec<Option<Digest>> = asked.iter().map(|(_, _, d)| Some(*d)).collect();
        assert_eq!(got, want);
        // A changed stat is not trusted; an unknown path has no entry.
        let other = stat(99);
        assert_eq!(
            index.trusted([("a", &other), ("zz", &other)].into_iter()),
            [None, None]
        );
        // Saved sorted, and read back the same.
        index.save().expect("save");
        let again = StatIndex::open(&path);
        assert!(again.disk.was_sorted);
        assert_eq!(again.trusted(asked.iter().map(|(p, s, _)| (*p, s))), want);
    }
}
