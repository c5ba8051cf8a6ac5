//! The workspace as the cache sees it: one gitignore-aware walk of the project per run,
//! shared by every task, and each task's input files selected from it.
//!
//! [`Workspace`] walks the whole project once, on the first key asked for, and keeps every
//! file's path and `lstat` data (the stat index turns them into digests). A task's inputs are
//! then a range lookup in that sorted snapshot from each glob's longest literal directory
//! prefix (`src/app/**/*.rs` from `src/app/`), with no further filesystem access. Tasks with
//! the same globs select the same files: what keys derive from a selection (digests, the
//! input tree) is memoized per snapshot [`Token`], which changes on every invalidation and
//! refresh.
//!
//! **Freshness.** The snapshot is only valid while no task changes files. Whoever runs tasks
//! says so with [`Workspace::invalidate`] (the cache hook does, before and after every task
//! that runs); a task keyed after that is walked on its own, from its globs' prefixes only,
//! so its key reflects the files as they are when it runs. Outputs restored from the cache
//! are written back into the snapshot ([`Workspace::refresh`]), so a fully cached run
//! never walks twice. `.gitignore` and `.ignore` files of the project root and every directory
//! on the way down apply (deeper files win, `.ignore` over `.gitignore`), as does the root's
//! `.git/info/exclude`; the user's global git excludes do not (keys must not depend on the
//! machine). `.git` and `.sykli` at the root are never inputs. Parsed ignore files are cached
//! per directory and re-read when their stat data changes.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use globset::GlobSet;
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::fstatat;

use super::CacheError;
use super::index::Stat;

/// What the walk records of a file (or symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileMeta {
    /// The stat data the stat index compares.
    pub(crate) stat: Stat,
    /// `st_mode` (type and permission bits).
    pub(crate) mode: u32,
}

impl FileMeta {
    pub(crate) fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    pub(crate) fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// The files of one task's `inputs`: globs and the directories they are walked from.
#[derive(Debug)]
pub(crate) struct Selection {
    /// Directories (relative, disjoint) that hold every match.
    pub(crate) bases: Vec<PathBuf>,
    /// The compiled globs; `None` when every file under the bases matches (globs such as
    /// `src/**`: nothing to match per file).
    pub(crate) set: Option<GlobSet>,
}

#[derive(Debug)]
struct Snapshot {
    /// The [`Workspace::invalidate`] count it was taken at.
    epoch: u64,
    /// Bumped each time the snapshot is taken or [`Workspace::refresh`]ed: with `epoch`, the
    /// [`Token`] of what it answers.
    generation: u64,
    files: BTreeMap<String, FileMeta>,
}

/// Names one state of the snapshot: two selections made under the same token (with the same
/// globs) see the same files with the same stat data. Results derived from a selection may be
/// memoized under it ([`Workspace::token`]).
pub(crate) type Token = (u64, u64);

/// A selection's files, sorted by path, and the [`Token`] of the snapshot that answered.
pub(crate) type Selected = (Vec<(String, FileMeta)>, Option<Token>);

/// The project's files: one walk per run, shared by every task. Thread-safe.
#[derive(Debug)]
pub(crate) struct Workspace {
    walker: Walker,
    epoch: AtomicU64,
    snapshot: RwLock<Option<Snapshot>>,
    generations: AtomicU64,
    full_walks: AtomicU64,
    task_walks: AtomicU64,
}

impl Workspace {
    pub(crate) fn new(root: &Path) -> Workspace {
        Workspace {
            walker: Walker::new(root),
            epoch: AtomicU64::new(0),
            snapshot: RwLock::new(None),
            generations: AtomicU64::new(0),
            full_walks: AtomicU64::new(0),
            task_walks: AtomicU64::new(0),
        }
    }

    /// Files in the workspace may change from now on (a task is about to run, or ran):
    /// the snapshot no longer answers for keys asked after this.
    pub(crate) fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// (whole-project walks, single-task walks) so far.
    pub(crate) fn walks(&self) -> (u64, u64) {
        (
            self.full_walks.load(Ordering::Relaxed),
            self.task_walks.load(Ordering::Relaxed),
        )
    }

    /// The token of the current snapshot, if there is one that answers for keys asked now
    /// (`None` before the first walk and after [`Workspace::invalidate`]).
    pub(crate) fn token(&self) -> Option<Token> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let snap = self.snapshot.read().unwrap_or_else(|p| p.into_inner());
        snap.as_ref()
            .filter(|s| s.epoch == epoch)
            .map(|s| (s.epoch, s.generation))
    }

    /// Every non-ignored file matching `sel`, sorted by path, with its stat data, and the
    /// [`Token`] of the snapshot that answered (`None` when the files were walked for this
    /// task alone: nothing derived from them may be memoized).
    pub(crate) fn select(&self, task: &str, sel: &Selection) -> Result<Selected, CacheError> {
        let epoch = self.epoch.load(Ordering::Acquire);
        {
            let snap = self.snapshot.read().unwrap_or_else(|p| p.into_inner());
            match &*snap {
                Some(s) if s.epoch == epoch => {
                    return Ok((s.select(sel), Some((s.epoch, s.generation))));
                }
                Some(_) => {
                    drop(snap);
                    return Ok((self.walk_task(task, sel)?, None));
                }
                None => {}
            }
        }
        let mut snap = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        if snap.is_none() {
            let files = self.walker.files(task, &[PathBuf::new()], None)?;
            self.full_walks.fetch_add(1, Ordering::Relaxed);
            *snap = Some(Snapshot {
                epoch,
                generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
                // In path order already: the map is built without sorting.
                files: files.into_iter().collect(),
            });
        }
        match &*snap {
            Some(s) if s.epoch == epoch => Ok((s.select(sel), Some((s.epoch, s.generation)))),
            _ => {
                drop(snap);
                Ok((self.walk_task(task, sel)?, None))
            }
        }
    }

    fn walk_task(
        &self,
        task: &str,
        sel: &Selection,
    ) -> Result<Vec<(String, FileMeta)>, CacheError> {
        self.task_walks.fetch_add(1, Ordering::Relaxed);
        let mut files = self.walker.files(task, &sel.bases, sel.set.as_ref())?;
        files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(files)
    }

    /// Re-reads `paths` (relative to the root; files or directories, present or not) into a
    /// current snapshot, after the cache itself wrote them (restored outputs).
    pub(crate) fn refresh(&self, paths: &[String]) -> Result<(), CacheError> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut snap = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        let Some(s) = snap.as_mut().filter(|s| s.epoch == epoch) else {
            return Ok(());
        };
        // What was derived from the snapshot before no longer answers for it.
        s.generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        for p in paths {
            let under = format!("{p}/");
            let stale: Vec<String> = s
                .files
                .range(p.clone()..)
                .take_while(|(k, _)| k.starts_with(p.as_str()))
                .filter(|(k, _)| *k == p || k.starts_with(&under))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                s.files.remove(&k);
            }
            let found = self.walker.files("", &[PathBuf::from(p)], None)?;
            s.files.extend(found);
        }
        Ok(())
    }
}

impl Snapshot {
    fn select(&self, sel: &Selection) -> Vec<(String, FileMeta)> {
        let mut out = Vec::new();
        for base in &sel.bases {
            let Some(base) = base.to_str() else { continue };
            let prefix = if base.is_empty() {
                String::new()
            } else {
                format!("{base}/")
            };
            for (path, meta) in self
                .files
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
            {
                if sel.set.as_ref().is_none_or(|s| s.is_match(path)) {
                    out.push((path.clone(), *meta));
                }
            }
        }
        if sel.bases.len() > 1 {
            out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        out
    }
}

/// Ignore files read in each directory, lowest precedence first.
const IGNORE_FILES: [&str; 2] = [".gitignore", ".ignore"];
const ROOT_EXCLUDE: &str = ".git/info/exclude";

type Stamp = Vec<Option<(u64, i64, i64, u64)>>;

/// The input-file walker of one project. Thread-safe.
#[derive(Debug)]
pub(crate) struct Walker {
    root: PathBuf,
    ignores: RwLock<HashMap<PathBuf, (Stamp, Matcher)>>,
}

/// The parsed ignore files of one directory (`None`: it has none).
type Matcher = Option<Arc<Gitignore>>;
/// The ignore files that apply in a directory, outermost first, each with the byte offset in
/// a root-relative path where the path relative to its directory starts.
type Stack = Vec<(Matcher, usize)>;

impl Walker {
    pub(crate) fn new(root: &Path) -> Walker {
        Walker {
            root: root.to_path_buf(),
            ignores: RwLock::new(HashMap::new()),
        }
    }

    /// Every file (or symlink) under one of `bases` (directories relative to the root, or
    /// a file itself) whose `/`-separated relative path matches `set` (every path when
    /// `None`) and is not ignored, with its `lstat`. Directories are read (and their entries
    /// sorted) in parallel; the files under each base come sorted by path, bases in the
    /// order given.
    fn files(
        &self,
        task: &str,
        bases: &[PathBuf],
        set: Option<&GlobSet>,
    ) -> Result<Vec<(String, FileMeta)>, CacheError> {
        let mut out = Vec::new();
        'bases: for base in bases {
            let mut stack: Stack = vec![(self.matcher(task, Path::new(""))?, 0)];
            let mut rel = String::new();
            let last = base.components().count();
            for (n, c) in base.components().enumerate() {
                let Some(c) = c.as_os_str().to_str() else {
                    return Err(CacheError::NonUtf8Path {
                        task: task.to_owned(),
                        path: base.clone(),
                    });
                };
                if rel.is_empty() && is_root_special(c) {
                    continue 'bases;
                }
                if !rel.is_empty() {
                    rel.push('/');
                }
                rel.push_str(c);
                let abs = self.root.join(&rel);
                match fs::symlink_metadata(&abs) {
                    Ok(m) if m.is_dir() => {}
                    // A file named as the base itself is that one file.
                    Ok(m) if n + 1 == last => {
                        if !ignored(&stack, &rel, false) && set.is_none_or(|s| s.is_match(&rel)) {
                            out.push((rel, meta_of(&m)));
                        }
                        continue 'bases;
                    }
                    // The prefix does not exist (or is not a directory): nothing matches.
                    Ok(_) => continue 'bases,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue 'bases,
                    Err(e) => return Err(CacheError::io("stat", &abs, e)),
                }
                if ignored(&stack, &rel, true) {
                    continue 'bases;
                }
                stack.push((self.matcher(task, Path::new(&rel))?, rel.len() + 1));
            }
            let found = Mutex::new(HashMap::new());
            let failed = Mutex::new(None);
            let walk = Walk {
                walker: self,
                task,
                set,
                found: &found,
                failed: &failed,
            };
            rayon_core::scope(|s| walk.visit(s, rel.clone(), stack));
            if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
                return Err(e);
            }
            let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
            out.reserve(found.values().map(|d| d.files.len()).sum());
            assemble(&mut found, &rel, &mut out);
        }
        Ok(out)
    }

    /// Reads directory `rel` (`stack`: the ignore files that apply): its matching files, and
    /// its subdirectories that are not ignored, each with its stack.
    #[allow(clippy::type_complexity)]
    fn read_dir(
        &self,
        task: &str,
        rel: &str,
        stack: &Stack,
        set: Option<&GlobSet>,
    ) -> Result<(Vec<(String, FileMeta)>, Vec<(String, Stack)>), CacheError> {
        let abs_dir = self.root.join(rel);
        // Files are stat'ed relative to the open directory: one path component to resolve.
        let dir_fd = fs::File::open(&abs_dir).map_err(|e| CacheError::io("open", &abs_dir, e))?;
        let rd = fs::read_dir(&abs_dir).map_err(|e| CacheError::io("list", &abs_dir, e))?;
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| CacheError::io("list", &abs_dir, e))?;
            let name = entry.file_name();
            let Some(name_str) = name.to_str() else {
                return Err(CacheError::NonUtf8Path {
                    task: task.to_owned(),
                    path: Path::new(rel).join(&name),
                });
            };
            if rel.is_empty() && is_root_special(name_str) {
                continue;
            }
            let child = if rel.is_empty() {
                name_str.to_owned()
            } else {
                format!("{rel}/{name_str}")
            };
            let ft = entry
                .file_type()
                .map_err(|e| CacheError::io("stat", &entry.path(), e))?;
            if ft.is_dir() {
                if ignored(stack, &child, true) {
                    continue;
                }
                let mut child_stack = stack.clone();
                child_stack.push((self.matcher(task, Path::new(&child))?, child.len() + 1));
                dirs.push((child, child_stack));
                continue;
            }
            if set.is_some_and(|s| !s.is_match(&child)) || ignored(stack, &child, false) {
                continue;
            }
            match fstatat(&dir_fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => files.push((
                    child,
                    FileMeta {
                        stat: Stat::of_nix(&st),
                        mode: st.st_mode,
                    },
                )),
                // Deleted between readdir and stat: it is not an input.
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(CacheError::io("stat", &entry.path(), e.into())),
            }
        }
        // Sorted here, in parallel with other directories, so that the walk's result is
        // assembled in path order without a sort of every path.
        files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        dirs.sort_unstable_by(|a, b| path_order(&a.0, true, &b.0, true));
        Ok((files, dirs))
    }

    /// The parsed ignore files of directory `rel`, from the cache while their stat data is
    /// unchanged.
    fn matcher(&self, task: &str, rel: &Path) -> Result<Option<Arc<Gitignore>>, CacheError> {
        let dir = self.root.join(rel);
        let mut names: Vec<&str> = Vec::with_capacity(3);
        if rel.as_os_str().is_empty() {
            names.push(ROOT_EXCLUDE);
        }
        names.extend(IGNORE_FILES);
        let stamp: Stamp = names
            .iter()
            .map(|n| {
                fs::metadata(dir.join(n)).ok().map(|m| {
                    (
                        m.ino(),
                        m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                        m.ctime() * 1_000_000_000 + m.ctime_nsec(),
                        m.len(),
                    )
                })
            })
            .collect();
        if let Some((s, m)) = self
            .ignores
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(rel)
            && *s == stamp
        {
            return Ok(m.clone());
        }
        let matcher = if stamp.iter().all(Option::is_none) {
            None
        } else {
            let mut b = GitignoreBuilder::new(&dir);
            for (n, s) in names.iter().zip(&stamp) {
                if s.is_some()
                    && let Some(e) = b.add(dir.join(n))
                {
                    return Err(CacheError::Walk {
                        task: task.to_owned(),
                        message: format!("failed to read {}: {e}", dir.join(n).display()),
                    });
                }
            }
            let gi = b.build().map_err(|e| CacheError::Walk {
                task: task.to_owned(),
                message: format!("failed to parse ignore files in {}: {e}", dir.display()),
            })?;
            Some(Arc::new(gi))
        };
        self.ignores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rel.to_path_buf(), (stamp, matcher.clone()));
        Ok(matcher)
    }
}

fn meta_of(m: &fs::Metadata) -> FileMeta {
    FileMeta {
        stat: Stat::of(m),
        mode: m.mode(),
    }
}

/// `.git` and `.sykli` at the root are never inputs.
fn is_root_special(name: &str) -> bool {
    name == ".git" || name == ".sykli"
}

/// What the walk read in one directory: its matching files and its subdirectories, each
/// sorted by path.
struct DirListing {
    files: Vec<(String, FileMeta)>,
    dirs: Vec<String>,
}

/// Paths under a directory sort as if it were named with a trailing `/`: the order of
/// `a` (a file, or with `a_dir` a directory) and `b` among the paths of one directory.
fn path_order(a: &str, a_dir: bool, b: &str, b_dir: bool) -> std::cmp::Ordering {
    let slash: &[u8] = b"/";
    let tail = |dir: bool| if dir { slash } else { &[] };
    a.as_bytes()
        .iter()
        .chain(tail(a_dir))
        .cmp(b.as_bytes().iter().chain(tail(b_dir)))
}

/// Appends the files under `dir` to `out` in path order: each directory's sorted files
/// merged with its sorted subdirectories' files (see [`path_order`]).
fn assemble(found: &mut HashMap<String, DirListing>, dir: &str, out: &mut Vec<(String, FileMeta)>) {
    let Some(listing) = found.remove(dir) else {
        return;
    };
    let mut files = listing.files.into_iter().peekable();
    let mut dirs = listing.dirs.into_iter().peekable();
    loop {
        let file_first = match (files.peek(), dirs.peek()) {
            (Some(f), Some(d)) => path_order(&f.0, false, d, true).is_lt(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return,
        };
        if file_first {
            out.extend(files.next());
        } else if let Some(d) = dirs.next() {
            assemble(found, &d, out);
        }
    }
}

/// One parallel walk below a directory.
struct Walk<'a> {
    walker: &'a Walker,
    task: &'a str,
    set: Option<&'a GlobSet>,
    /// Directory -> what was read in it.
    found: &'a Mutex<HashMap<String, DirListing>>,
    failed: &'a Mutex<Option<CacheError>>,
}

impl<'a> Walk<'a> {
    fn visit(&'a self, s: &rayon_core::Scope<'a>, rel: String, stack: Stack) {
        match self.walker.read_dir(self.task, &rel, &stack, self.set) {
            Ok((files, dirs)) => {
                let names = dirs.iter().map(|(d, _)| d.clone()).collect();
                self.found
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(rel, DirListing { files, dirs: names });
                for (child, child_stack) in dirs {
                    s.spawn(move |s| self.visit(s, child, child_stack));
                }
            }
            Err(e) => {
                self.failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        }
    }
}

/// Whether the deepest ignore file with an opinion ignores `rel` (relative to the root).
/// Each ignore file is given the path relative to its own directory.
fn ignored(stack: &Stack, rel: &str, is_dir: bool) -> bool {
    for (m, offset) in stack.iter().rev() {
        let Some(m) = m else { continue };
        let Some(path) = rel.get(*offset..) else {
            continue;
        };
        match m.matched(Path::new(path), is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_assembles_files_in_path_order_without_a_global_sort() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Names around '/' in byte order: "a-b" < "a.b" < "a/..." < "a0"; "b/a.x" < "b/a/a".
        let files = [
            "a-b/x", "a.b", "a.b.c/y", "a/b.txt", "a/b/c", "a/b0", "a0", "b/a/a", "b/a.x", "z",
        ];
        for f in &files {
            let p = dir.path().join(f);
            fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            fs::write(&p, f).expect("write");
        }
        let walker = Walker::new(dir.path());
        let got: Vec<String> = walker
            .files("t", &[PathBuf::new()], None)
            .expect("walk")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let mut want: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
    }
}
