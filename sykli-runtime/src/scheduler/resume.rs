//! What a run takes over from its journal when it resumes (`sykli run --resume`), and what
//! it adds to the journal for a later resume: the plan digest, finished tasks (their
//! outputs checked against the digests journalled), retry backoffs and open gates.
//!
//! The dispatcher stays the one place that decides; this module only prepares its inputs.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::task::{Outputs, Shared};
use crate::events::{Finished, OutputDigest, TaskReport};
use crate::graph::ValidGraph;
use crate::plan::{CachePlan, Plan};
use crate::state::ResumePoint;

/// `blake3:<hex>` of what the run will do: the graph as loaded and, per task, the plan's
/// decision and executor. A resumed run must have the journalled one.
pub(super) fn plan_digest(graph: &ValidGraph, plan: &Plan) -> String {
    let mut h = blake3::Hasher::new();
    h.update(graph.graph().to_json_pretty().as_bytes());
    for i in 0..plan.len() {
        h.update(b"\0");
        h.update(plan.task(i).decision.as_str().as_bytes());
        h.update(b"\0");
        h.update(plan.executor_name(i).unwrap_or("-").as_bytes());
    }
    format!("blake3:{}", h.finalize().to_hex())
}

/// Cache keys the plan knows, by task name.
pub(super) fn cache_keys(graph: &ValidGraph, plan: &Plan) -> HashMap<String, String> {
    (0..plan.len())
        .filter_map(|i| match &plan.task(i).cache {
            CachePlan::Hit { key } | CachePlan::Miss { key, .. } => {
                Some((graph.task(i).name.clone(), key.clone()))
            }
            _ => None,
        })
        .collect()
}

/// What a resumed run starts from, by task index.
pub(super) struct Replay {
    /// Final reports kept from the journal (not reported again).
    pub reports: Vec<Option<TaskReport>>,
    /// Outputs of kept tasks that succeeded.
    pub outputs: Vec<Option<Outputs>>,
    /// Tasks that passed but run again, and why (their outputs cannot be restored).
    pub rerun: Vec<(usize, String)>,
    /// The attempt that failed and when the next is due (ms since the epoch).
    pub retry: Vec<Option<(u32, u64)>>,
    /// When each open gate opened (ms since the epoch).
    pub gate_opened: Vec<Option<u64>>,
    /// The remote operation a task was running, to re-attach to.
    pub attached: Vec<Option<String>>,
    /// The last attempt an earlier process of the run started, for tasks it did not
    /// finish: a cache hit for one of those is its own result (stored before the kill).
    pub started: Vec<Option<u32>>,
}

impl Replay {
    /// Nothing to take over (a new run).
    pub fn none(n: usize) -> Self {
        Replay {
            reports: vec![None; n],
            outputs: vec![None; n],
            rerun: Vec::new(),
            retry: vec![None; n],
            gate_opened: vec![None; n],
            attached: vec![None; n],
            started: vec![None; n],
        }
    }

    /// What `point` keeps for the selected tasks of `graph`. A task that succeeded keeps its
    /// result when every output it had is still there with the same digest; otherwise it
    /// runs again (its cache entry, if any, restores the outputs then).
    pub fn from_point(graph: &ValidGraph, selected: &[bool], point: &ResumePoint) -> Self {
        let mut r = Replay::none(graph.len());
        for (i, _) in selected.iter().enumerate().filter(|(_, s)| **s) {
            let name = &graph.task(i).name;
            r.retry[i] = point.retrying.get(name).copied();
            r.gate_opened[i] = point.gates_open.get(name).copied();
            r.attached[i] = point.attached.get(name).cloned();
            r.started[i] = point.started.get(name).copied();
            let Some((report, digests)) = point.finished.get(name) else {
                continue;
            };
            if report.status.is_success() {
                match restore(digests) {
                    Ok(outputs) => r.outputs[i] = Some(Arc::new(outputs)),
                    Err(why) => {
                        r.rerun.push((
                            i,
                            format!(
                                "it passed before the run stopped, but {why}: running it again"
                            ),
                        ));
                        continue;
                    }
                }
            }
            r.reports[i] = Some(report.clone());
        }
        r
    }
}

/// The outputs of `digests` when each is still in place with the digest journalled.
fn restore(digests: &BTreeMap<String, OutputDigest>) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    for (name, d) in digests {
        match digest_path(&d.path) {
            Ok(now) if now == d.digest => {
                out.insert(name.clone(), d.path.clone());
            }
            Ok(_) => {
                return Err(format!(
                    "its output `{name}` ({}) changed since",
                    d.path.display()
                ));
            }
            Err(e) => {
                return Err(format!(
                    "its output `{name}` cannot be restored ({}: {e})",
                    d.path.display()
                ));
            }
        }
    }
    Ok(out)
}

/// The output digests and log location of task `i`, which just finished.
pub(super) fn finished(shared: &Shared, i: usize, report: &TaskReport) -> Finished {
    let mut f = Finished::default();
    let log = shared
        .log_dir
        .join(crate::logs::log_file_name(&report.task));
    if log.is_file() {
        f.log = Some(log);
    }
    if !report.status.is_success() {
        return f;
    }
    let outputs = shared.outputs.lock().unwrap_or_else(|p| p.into_inner())[i].clone();
    for (name, path) in outputs.iter().flat_map(|o| o.iter()) {
        // An output that cannot be read now has no digest; a resume then runs the task again.
        if let Ok(digest) = digest_path(path) {
            f.outputs.insert(
                name.clone(),
                OutputDigest {
                    path: path.clone(),
                    digest,
                },
            );
        }
    }
    f
}

/// `blake3:<hex>` of a file's bytes, or of a directory's entries (sorted relative paths, and
/// each file's bytes or link target).
pub(crate) fn digest_path(path: &Path) -> std::io::Result<String> {
    let mut h = blake3::Hasher::new();
    hash_into(&mut h, path, Path::new(""))?;
    Ok(format!("blake3:{}", h.finalize().to_hex()))
}

fn hash_into(h: &mut blake3::Hasher, path: &Path, rel: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    // Opening a FIFO would block until a writer appears: special files have no digest.
    if let Some(kind) = crate::paths::special_kind(meta.file_type()) {
        return Err(std::io::Error::other(format!(
            "{} is a {kind}, not a regular file or directory",
            path.display()
        )));
    }
    h.update(rel.as_os_str().as_encoded_bytes());
    if meta.is_symlink() {
        h.update(b"\0l");
        h.update(std::fs::read_link(path)?.as_os_str().as_encoded_bytes());
    } else if meta.is_dir() {
        h.update(b"\0d");
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for n in names {
            hash_into(h, &path.join(&n), &rel.join(&n))?;
        }
    } else {
        h.update(b"\0f");
        h.update(&meta.len().to_le_bytes());
        let mut f = std::fs::File::open(path)?;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: digesting a FIFO output opened it and blocked the run forever.
    #[test]
    fn a_fifo_has_no_digest_and_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = digest_path(&fifo).unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");
        std::fs::create_dir(dir.path().join("d")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("d/pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(digest_path(&dir.path().join("d")).is_err());
    }

    #[test]
    fn outputs_restore_only_when_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("out.txt");
        std::fs::write(&f, "one").unwrap();
        let mut d = BTreeMap::new();
        d.insert(
            "out".to_string(),
            OutputDigest {
                path: f.clone(),
                digest: digest_path(&f).unwrap(),
            },
        );
        assert_eq!(restore(&d).unwrap()["out"], f);
        std::fs::write(&f, "two").unwrap();
        assert!(restore(&d).unwrap_err().contains("changed"));
        std::fs::remove_file(&f).unwrap();
        assert!(restore(&d).unwrap_err().contains("cannot be restored"));
    }
}
