//! The checks behind every host call: a manifest's [`Grants`] resolved for one task, deciding
//! which paths, programs and hosts a plugin may touch. Anything not granted is denied with a
//! message naming what was asked.

use std::path::{Component, Path, PathBuf};

use super::manifest::{Grants, parse_host_port};

/// Why a host call was refused or failed, as the WIT's `error` variant carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// Not granted.
    Denied(String),
    /// The file, program or host does not exist or could not be reached.
    NotFound(String),
    /// Malformed input.
    Invalid(String),
    /// Anything else.
    Failed(String),
}

/// A manifest's grants resolved against the directory relative grants are relative to.
#[derive(Debug, Clone, Default)]
pub struct ResolvedGrants {
    /// Canonical granted directories and whether they are writable.
    dirs: Vec<(PathBuf, bool)>,
    /// Granted `(host, port)` pairs, hosts lowercased.
    hosts: Vec<(String, u16)>,
    /// Granted programs, as written.
    spawn: Vec<String>,
}

impl ResolvedGrants {
    /// Resolves `grants` against `base`; a granted directory that does not exist grants
    /// nothing.
    pub fn resolve(grants: &Grants, base: &Path) -> ResolvedGrants {
        let dirs = grants
            .dirs
            .iter()
            .filter_map(|d| {
                std::fs::canonicalize(base.join(&d.path))
                    .ok()
                    .map(|p| (p, d.write))
            })
            .collect();
        let hosts = grants
            .hosts
            .iter()
            .filter_map(|h| parse_host_port(h).ok())
            .collect();
        ResolvedGrants {
            dirs,
            hosts,
            spawn: grants.spawn.clone(),
        }
    }

    /// The canonical file a plugin may read at `path` (relative to `workdir`).
    pub fn readable(&self, path: &str, workdir: &Path) -> Result<PathBuf, HostError> {
        let joined = workdir.join(path);
        let real = std::fs::canonicalize(&joined).map_err(|e| {
            if self.inside(&lexical(&joined), false) {
                HostError::NotFound(format!("read of {path}: {e}"))
            } else {
                denied_path("read", path)
            }
        })?;
        if self.inside(&real, false) {
            Ok(real)
        } else {
            Err(denied_path("read", path))
        }
    }

    /// The file a plugin may write at `path` (relative to `workdir`): its parent resolved,
    /// inside a directory granted with `write`; an existing symlink is followed and checked.
    pub fn writable(&self, path: &str, workdir: &Path) -> Result<PathBuf, HostError> {
        let joined = workdir.join(path);
        let Some(name) = joined.file_name() else {
            return Err(HostError::Invalid(format!(
                "write of {path}: not a file path"
            )));
        };
        let parent = joined.parent().unwrap_or(Path::new("/"));
        let real_parent = std::fs::canonicalize(parent).map_err(|e| {
            if self.inside(&lexical(parent), true) {
                HostError::NotFound(format!("write of {path}: {}: {e}", parent.display()))
            } else {
                denied_path("write", path)
            }
        })?;
        let mut real = real_parent.join(name);
        if let Ok(target) = std::fs::canonicalize(&real) {
            real = target;
        }
        if self.inside(&real, true) {
            Ok(real)
        } else {
            Err(denied_path("write", path))
        }
    }

    /// Whether `dir` (canonical) is a granted directory or inside one, for a cwd.
    pub fn dir_allowed(&self, dir: &Path) -> bool {
        self.inside(dir, false)
    }

    /// The program to run for `program`, if granted: an absolute path must be granted as
    /// written; a bare name must be granted and is looked up on `path_var`.
    pub fn program(&self, program: &str, path_var: Option<&str>) -> Result<PathBuf, HostError> {
        if !self.spawn.iter().any(|p| p == program) {
            return Err(HostError::Denied(format!(
                "spawn of `{program}`: not a granted program (grants.spawn: [{}])",
                self.spawn.join(", ")
            )));
        }
        if program.contains('/') {
            return Ok(PathBuf::from(program));
        }
        let path_var = path_var.unwrap_or("/usr/local/bin:/usr/bin:/bin");
        std::env::split_paths(path_var)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
            .ok_or_else(|| HostError::NotFound(format!("spawn of `{program}`: not found on PATH")))
    }

    /// The `(host, port)` of an `http://` or `https://` URL, if granted (the port defaults to
    /// 80 or 443).
    pub fn http_target(&self, url: &str) -> Result<(String, u16), HostError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| HostError::Invalid(format!("http: `{url}` is not a URL: {e}")))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => {
                return Err(HostError::Invalid(format!(
                    "http: `{url}` is not an absolute http:// or https:// URL"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| HostError::Invalid(format!("http: `{url}` has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port);
        if self.hosts.iter().any(|(h, p)| *h == host && *p == port) {
            Ok((host, port))
        } else {
            Err(HostError::Denied(format!(
                "http to {host}:{port}: not a granted host"
            )))
        }
    }

    fn inside(&self, path: &Path, write: bool) -> bool {
        self.dirs
            .iter()
            .any(|(d, w)| (!write || *w) && path.starts_with(d))
    }
}

fn denied_path(op: &str, path: &str) -> HostError {
    HostError::Denied(format!(
        "{op} of {path}: not inside a {}granted directory",
        if op == "write" { "writable " } else { "" }
    ))
}

/// `path` with `.` and `..` removed lexically (only to word an error).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::manifest::DirGrant;

    fn grants(dir: &Path, write: bool) -> ResolvedGrants {
        let g = Grants {
            dirs: vec![DirGrant {
                path: "granted".into(),
                write,
            }],
            hosts: vec!["127.0.0.1:8080".into()],
            spawn: vec!["sh".into(), "/bin/echo".into()],
        };
        ResolvedGrants::resolve(&g, dir)
    }

    #[test]
    fn reads_inside_granted_dirs_only_after_canonicalising() {
        let t = tempfile::tempdir().unwrap();
        let g = t.path().join("granted");
        std::fs::create_dir(&g).unwrap();
        std::fs::write(g.join("a.txt"), "x").unwrap();
        std::fs::write(t.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), g.join("link")).unwrap();
        let r = grants(t.path(), false);
        assert!(r.readable("a.txt", &g).is_ok());
        assert!(r.readable("granted/a.txt", t.path()).is_ok());
        for bad in ["../secret", "link", "/etc/passwd"] {
            let e = r.readable(bad, &g).unwrap_err();
            assert!(
                matches!(&e, HostError::Denied(m) if m.contains(bad) && m.contains("not inside a granted directory")),
                "{bad}: {e:?}"
            );
        }
        assert!(matches!(
            r.readable("missing", &g),
            Err(HostError::NotFound(_))
        ));
    }

    #[test]
    fn writes_need_a_writable_grant_and_never_follow_a_link_out() {
        let t = tempfile::tempdir().unwrap();
        let g = t.path().join("granted");
        std::fs::create_dir(&g).unwrap();
        let ro = grants(t.path(), false);
        assert!(
            matches!(ro.writable("out.txt", &g), Err(HostError::Denied(m)) if m.contains("writable"))
        );
        let rw = grants(t.path(), true);
        assert_eq!(
            rw.writable("out.txt", &g).unwrap(),
            std::fs::canonicalize(&g).unwrap().join("out.txt")
        );
        std::os::unix::fs::symlink(t.path().join("victim"), g.join("escape")).unwrap();
        std::fs::write(t.path().join("victim"), "v").unwrap();
        assert!(matches!(
            rw.writable("escape", &g),
            Err(HostError::Denied(_))
        ));
        assert!(matches!(rw.writable("../x", &g), Err(HostError::Denied(_))));
    }

    #[test]
    fn programs_and_hosts_must_be_granted_exactly() {
        let t = tempfile::tempdir().unwrap();
        let r = grants(t.path(), false);
        assert!(r.program("sh", None).unwrap().is_absolute());
        assert_eq!(
            r.program("/bin/echo", None).unwrap(),
            Path::new("/bin/echo")
        );
        for bad in ["bash", "/bin/sh", "echo"] {
            assert!(matches!(r.program(bad, None), Err(HostError::Denied(m)) if m.contains(bad)));
        }
        assert!(r.http_target("http://127.0.0.1:8080/run").is_ok());
        assert!(matches!(
            r.http_target("http://127.0.0.1:8081/"),
            Err(HostError::Denied(m)) if m.contains("127.0.0.1:8081")
        ));
        assert!(matches!(
            r.http_target("http://example.com/"),
            Err(HostError::Denied(_))
        ));
        assert!(matches!(
            r.http_target("https://example.com/"),
            Err(HostError::Denied(m)) if m.contains("example.com:443")
        ));
        assert!(matches!(
            r.http_target("ftp://x/"),
            Err(HostError::Invalid(_))
        ));
    }
}
