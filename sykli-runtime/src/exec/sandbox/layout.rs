//! What a sandboxed task sees: its file system as an ordered list of mounts.
//!
//! 1. The executor's read-only host paths (`/usr`, `/bin`, `/lib`, a minimal `/etc`, ...)
//!    and the task's own `paths`, read-only.
//! 2. Its outputs: an output that exists on the host is bound writable; one that does not
//!    is created in a private staging directory mounted at its parent, and moved to the
//!    host after the task ends (as Bazel's sandbox moves outputs out).
//! 3. Its declared inputs (globs relative to the project) and the files other tasks' outputs
//!    were copied to (`task_inputs`), read-only, at their host paths.
//!
//! Everything else of the project is absent: reading it fails with ENOENT, writing next to
//! an input with EROFS.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSetBuilder};

use super::request::{Limits, SandboxRequest};
use super::spec::MountSpec;

/// The host paths a sandbox shows read-only by default (those that exist).
pub const DEFAULT_HOST_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ca-certificates",
    "/etc/group",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/passwd",
    "/etc/resolv.conf",
    "/etc/ssl",
];

/// Outputs that did not exist: made in `dir`, mounted at `parent`, moved out afterwards.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The private directory (host).
    pub dir: PathBuf,
    /// Where it was mounted (the outputs' parent on the host, the same path inside).
    pub parent: PathBuf,
    /// The outputs' file names in it.
    pub names: Vec<std::ffi::OsString>,
}

/// A task's sandbox, ready for the init.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Mounts, in order.
    pub mounts: Vec<MountSpec>,
    /// Working directory (same path inside and out).
    pub workdir: PathBuf,
    /// Whether the host network stays.
    pub network: bool,
    /// cgroup limits.
    pub limits: Limits,
    /// Outputs to move out after the task.
    pub staged: Vec<Staged>,
    /// The directory shown as a read-only skeleton (see [`super::spec::InitSpec::skeleton`]).
    pub skeleton: Option<PathBuf>,
}

impl Layout {
    /// Whether `path` (absolute) is visible in the sandbox.
    pub fn shows(&self, path: &Path) -> bool {
        ["/proc", "/dev"].iter().any(|p| path.starts_with(p))
            || self.mounts.iter().any(|m| path.starts_with(&m.target))
    }

    /// Moves staged outputs to the host; the first failure, named. Returns what the task
    /// wrote next to its outputs that is not one (discarded).
    pub fn move_outputs_out(&self) -> Result<Vec<PathBuf>, String> {
        let mut discarded = Vec::new();
        for s in &self.staged {
            if let Ok(entries) = fs::read_dir(&s.dir) {
                for e in entries.flatten() {
                    let name = e.file_name();
                    let at = s.parent.join(&name);
                    let mount_point = self.mounts.iter().any(|m| m.target.starts_with(&at));
                    if !s.names.contains(&name) && !mount_point {
                        discarded.push(at);
                    }
                }
            }
            for name in &s.names {
                let from = s.dir.join(name);
                if fs::symlink_metadata(&from).is_err() {
                    continue; // not produced: the scheduler's output check says so
                }
                let to = s.parent.join(name);
                fs::create_dir_all(&s.parent)
                    .map_err(|e| format!("failed to create {}: {e}", s.parent.display()))?;
                move_path(&from, &to).map_err(|e| {
                    format!(
                        "failed to move output {} out of the sandbox: {e}",
                        to.display()
                    )
                })?;
            }
        }
        discarded.sort();
        Ok(discarded)
    }
}

/// The read-only host paths: `defaults` that exist, then the task's `paths` (which must).
pub fn host_mounts(defaults: &[PathBuf], extra: &[String]) -> Result<Vec<MountSpec>, String> {
    let mut out = Vec::new();
    for p in defaults {
        if fs::metadata(p).is_ok() {
            out.push(ro(p));
        }
    }
    for p in extra {
        let p = Path::new(p);
        fs::metadata(p).map_err(|e| format!("sandbox path {}: {e}", p.display()))?;
        out.push(ro(p));
    }
    Ok(out)
}

fn ro(p: &Path) -> MountSpec {
    MountSpec {
        source: p.to_path_buf(),
        target: p.to_path_buf(),
        writable: false,
    }
}

/// The layout of a local task in `workdir`; staging directories go under `scratch`.
pub fn for_task(
    req: &SandboxRequest,
    workdir: &Path,
    default_paths: &[PathBuf],
    scratch: &Path,
) -> Result<Layout, String> {
    let mut mounts = host_mounts(default_paths, &req.settings.paths)?;
    // Outputs.
    let mut staged: BTreeMap<PathBuf, Vec<std::ffi::OsString>> = BTreeMap::new();
    for out in &req.outputs {
        let host = contained(workdir, out).map_err(|e| format!("output `{out}`: {e}"))?;
        if fs::symlink_metadata(&host).is_ok() {
            mounts.push(MountSpec {
                source: host.clone(),
                target: host,
                writable: true,
            });
        } else if let (Some(parent), Some(name)) = (host.parent(), host.file_name()) {
            staged
                .entry(parent.to_path_buf())
                .or_default()
                .push(name.to_owned());
        }
    }
    let mut staged_out = Vec::new();
    for (i, (parent, names)) in staged.into_iter().enumerate() {
        let dir = scratch.join(format!("out-{i}"));
        fs::create_dir_all(&dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
        mounts.push(MountSpec {
            source: dir.clone(),
            target: parent.clone(),
            writable: true,
        });
        staged_out.push(Staged { dir, parent, names });
    }
    // Inputs.
    for path in input_paths(&req.project_root, &req.inputs)? {
        mounts.push(ro(&path));
    }
    for v in &req.visible {
        let host = contained(workdir, v).map_err(|e| format!("task input `{v}`: {e}"))?;
        if fs::symlink_metadata(&host).is_ok() {
            mounts.push(ro(&host));
        }
    }
    Ok(Layout {
        mounts,
        workdir: workdir.to_path_buf(),
        network: req.settings.network,
        limits: req.limits(),
        staged: staged_out,
        skeleton: Some(req.project_root.clone()),
    })
}

fn contained(base: &Path, rel: &str) -> Result<PathBuf, String> {
    let p = Path::new(rel.trim_start_matches("./"));
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("it must be relative and stay inside the working directory".into());
    }
    Ok(base.join(p))
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// The host paths `globs` select under `root`: a plain path (or `dir/**`) as itself, a glob
/// as the files it matches. A plain path that does not exist selects nothing.
pub fn input_paths(root: &Path, globs: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut patterns = GlobSetBuilder::new();
    let mut bases = Vec::new();
    for g in globs {
        let g = g.trim_start_matches("./");
        let plain = g.strip_suffix("/**").unwrap_or(g);
        let rel = contained(root, plain).map_err(|e| format!("input `{g}`: {e}"))?;
        if !has_meta(plain) {
            if fs::symlink_metadata(&rel).is_ok() {
                out.push(rel);
            }
            continue;
        }
        let glob = GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("input `{g}`: {e}"))?;
        patterns.add(glob);
        let base: PathBuf = g
            .split('/')
            .take_while(|c| !has_meta(c))
            .collect::<Vec<_>>()
            .join("/")
            .into();
        bases.push(base);
    }
    if !bases.is_empty() {
        let set = patterns.build().map_err(|e| e.to_string())?;
        bases.sort();
        bases.dedup();
        let mut stack: Vec<PathBuf> = bases;
        let mut seen = std::collections::BTreeSet::new();
        while let Some(rel) = stack.pop() {
            let Ok(entries) = fs::read_dir(root.join(&rel)) else {
                continue;
            };
            for e in entries.flatten() {
                let child = rel.join(e.file_name());
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(child);
                } else if set.is_match(&child) && seen.insert(child.clone()) {
                    out.push(root.join(child));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Renames, or copies then removes across file systems.
fn move_path(from: &Path, to: &Path) -> std::io::Result<()> {
    if fs::rename(from, to).is_ok() {
        return Ok(());
    }
    if let Ok(m) = fs::symlink_metadata(to) {
        if m.is_dir() {
            fs::remove_dir_all(to)?;
        } else {
            fs::remove_file(to)?;
        }
    }
    copy_tree(from, to)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let m = fs::symlink_metadata(from)?;
    if m.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)
    } else if m.is_dir() {
        fs::create_dir_all(to)?;
        for e in fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(from, to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_select_plain_paths_whole_directories_and_glob_matches() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("src/a")).unwrap();
        for f in ["src/a/x.rs", "src/y.rs", "src/z.txt", "Cargo.toml"] {
            fs::write(r.join(f), "").unwrap();
        }
        let got = input_paths(
            r,
            &["src/**/*.rs".into(), "Cargo.toml".into(), "nope".into()],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                r.join("Cargo.toml"),
                r.join("src/a/x.rs"),
                r.join("src/y.rs")
            ]
        );
        assert_eq!(input_paths(r, &["src/**".into()]).unwrap(), [r.join("src")]);
        assert!(
            input_paths(r, &["../x".into()])
                .unwrap_err()
                .contains("../x")
        );
    }
}
