//! Finding a task's input files: a gitignore-aware walk that only opens the directories an
//! input glob can reach.
//!
//! Each glob is walked from its longest literal directory prefix (`src/app/**/*.rs` from
//! `src/app`), so a project of many tasks over disjoint directories costs one `readdir` per
//! directory overall. `.gitignore` and `.ignore` files of the project root and every directory
//! on the way down apply (deeper files win, `.ignore` over `.gitignore`), as does the root's
//! `.git/info/exclude`; the user's global git excludes do not (keys must not depend on the
//! machine). `.git` and `.sykli` at the root are never inputs. Parsed ignore files are cached
//! per directory and re-read when their stat data changes.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use globset::GlobSet;
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::fstatat;

use super::CacheError;
use super::index::Stat;

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
type Stack = Vec<Matcher>;

impl Walker {
    pub(crate) fn new(root: &Path) -> Walker {
        Walker {
            root: root.to_path_buf(),
            ignores: RwLock::new(HashMap::new()),
        }
    }

    /// Every file (or symlink) under one of `bases` (directories relative to the root) whose
    /// `/`-separated relative path matches `set` and is not ignored, with its `lstat`.
    pub(crate) fn files(
        &self,
        task: &str,
        bases: &[PathBuf],
        set: &GlobSet,
    ) -> Result<Vec<(String, Stat)>, CacheError> {
        let mut out = Vec::new();
        'bases: for base in bases {
            let mut stack: Stack = vec![self.matcher(task, Path::new(""))?];
            let mut rel = PathBuf::new();
            for c in base.components() {
                rel.push(c);
                if is_root_special(&rel) {
                    continue 'bases;
                }
                let abs = self.root.join(&rel);
                match fs::symlink_metadata(&abs) {
                    Ok(m) if m.is_dir() => {}
                    // The prefix does not exist (or is not a directory): nothing matches.
                    Ok(_) => continue 'bases,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue 'bases,
                    Err(e) => return Err(CacheError::io("stat", &abs, e)),
                }
                if ignored(&stack, &abs, true) {
                    continue 'bases;
                }
                stack.push(self.matcher(task, &rel)?);
            }
            self.walk_dir(task, &rel, &mut stack, set, &mut out)?;
        }
        Ok(out)
    }

    fn walk_dir(
        &self,
        task: &str,
        rel: &Path,
        stack: &mut Stack,
        set: &GlobSet,
        out: &mut Vec<(String, Stat)>,
    ) -> Result<(), CacheError> {
        let abs_dir = self.root.join(rel);
        // Files are stat'ed relative to the open directory: one path component to resolve.
        let dir_fd = fs::File::open(&abs_dir).map_err(|e| CacheError::io("open", &abs_dir, e))?;
        let rd = fs::read_dir(&abs_dir).map_err(|e| CacheError::io("list", &abs_dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| CacheError::io("list", &abs_dir, e))?;
            let child = rel.join(entry.file_name());
            if is_root_special(&child) {
                continue;
            }
            let ft = entry
                .file_type()
                .map_err(|e| CacheError::io("stat", &entry.path(), e))?;
            let abs = entry.path();
            if ft.is_dir() {
                if ignored(stack, &abs, true) {
                    continue;
                }
                stack.push(self.matcher(task, &child)?);
                let r = self.walk_dir(task, &child, stack, set, out);
                stack.pop();
                r?;
                continue;
            }
            let Some(child_str) = child.to_str() else {
                return Err(CacheError::NonUtf8Path {
                    task: task.to_owned(),
                    path: child,
                });
            };
            if !set.is_match(child_str) || ignored(stack, &abs, false) {
                continue;
            }
            match fstatat(
                &dir_fd,
                entry.file_name().as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => out.push((child_str.to_owned(), Stat::of_nix(&st))),
                // Deleted between readdir and stat: it is not an input.
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(CacheError::io("stat", &abs, e.into())),
            }
        }
        Ok(())
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

fn is_root_special(rel: &Path) -> bool {
    rel == Path::new(".git") || rel == Path::new(".sykli")
}

/// Whether the deepest ignore file with an opinion ignores `abs`.
fn ignored(stack: &Stack, abs: &Path, is_dir: bool) -> bool {
    for m in stack.iter().rev().flatten() {
        match m.matched(abs, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}
