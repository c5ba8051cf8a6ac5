//! Resource limits of a sandboxed task: one cgroup per task for each limited controller.
//!
//! Per controller (memory, cpu, pids): cgroup v2 when the unified hierarchy offers it and
//! the runtime's own cgroup can delegate it, else the v1 hierarchy of that controller when
//! it is mounted and writable, else the limit is not enforced and [`TaskCgroup::create`]
//! says so in one line naming the controller and why.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::request::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }
}

#[derive(Debug)]
struct Group {
    controller: Controller,
    dir: PathBuf,
    v2: bool,
}

/// The cgroups of one task; removed (after killing what is left in them) on drop.
#[derive(Debug, Default)]
pub struct TaskCgroup {
    groups: Vec<Group>,
    memory_limit: Option<u64>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TaskCgroup {
    /// Creates the cgroups for `limits`; returns them with one message per limit that is
    /// not enforced, naming it and why.
    pub fn create(limits: &Limits) -> (TaskCgroup, Vec<String>) {
        let mut cg = TaskCgroup {
            groups: Vec::new(),
            memory_limit: limits.memory_bytes,
        };
        let mut notes = Vec::new();
        if !limits.any() {
            return (cg, notes);
        }
        let hierarchies = Hierarchies::read();
        let name = format!(
            "sykli-sandbox-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let wanted = [
            (Controller::Memory, limits.memory_bytes.is_some()),
            (Controller::Cpu, limits.cpus.is_some()),
            (Controller::Pids, limits.pids.is_some()),
        ];
        for (c, want) in wanted {
            if !want {
                continue;
            }
            match hierarchies.create(c, &name).and_then(|g| {
                write_limit(&g, limits)?;
                Ok(g)
            }) {
                Ok(g) => cg.groups.push(g),
                Err(why) => notes.push(format!(
                    "sykli: sandbox: the {} limit is not enforced: {why}",
                    c.name()
                )),
            }
        }
        (cg, notes)
    }

    /// The `cgroup.procs` files the task's init joins.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.groups
            .iter()
            .map(|g| g.dir.join("cgroup.procs"))
            .collect()
    }

    /// When the memory cgroup's OOM killer fired: the limit that was exceeded, in bytes.
    pub fn oom_killed(&self) -> Option<u64> {
        let g = self
            .groups
            .iter()
            .find(|g| g.controller == Controller::Memory)?;
        let file = if g.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = fs::read_to_string(g.dir.join(file)).ok()?;
        let kills = text
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        (kills > 0).then_some(self.memory_limit.unwrap_or(0))
    }
}

impl Drop for TaskCgroup {
    fn drop(&mut self) {
        for g in &self.groups {
            // Whatever is left (nothing should be: PID 1 died) is killed; rmdir succeeds
            // once the group is empty.
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let pids = fs::read_to_string(g.dir.join("cgroup.procs")).unwrap_or_default();
                for pid in pids.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                if fs::remove_dir(&g.dir).is_ok() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn write_limit(g: &Group, limits: &Limits) -> Result<(), String> {
    let write = |file: &str, value: String| {
        fs::write(g.dir.join(file), &value).map_err(|e| {
            format!(
                "failed to write {value} to {}: {e}",
                g.dir.join(file).display()
            )
        })
    };
    match (g.controller, g.v2) {
        (Controller::Memory, true) => {
            let b = limits.memory_bytes.unwrap_or(0);
            write("memory.max", b.to_string())?;
            // Without swap the limit means what it says; absent on kernels without swap.
            let _ = write("memory.swap.max", "0".into());
        }
        (Controller::Memory, false) => {
            let b = limits.memory_bytes.unwrap_or(0);
            write("memory.limit_in_bytes", b.to_string())?;
            let _ = write("memory.memsw.limit_in_bytes", b.to_string());
        }
        (Controller::Cpu, v2) => {
            let cpus = limits.cpus.unwrap_or(1.0);
            let period: u64 = 100_000;
            let quota = ((cpus * period as f64).round() as u64).max(1000);
            if v2 {
                write("cpu.max", format!("{quota} {period}"))?;
            } else {
                write("cpu.cfs_period_us", period.to_string())?;
                write("cpu.cfs_quota_us", quota.to_string())?;
            }
        }
        (Controller::Pids, _) => write("pids.max", limits.pids.unwrap_or(0).to_string())?,
    }
    Ok(())
}

/// The mounted cgroup hierarchies and this process's place in them.
#[derive(Debug, Default)]
struct Hierarchies {
    /// The unified (v2) mount point, and this process's path in it.
    v2: Option<(PathBuf, String)>,
    /// v1 mounts: controllers, mount point, this process's path.
    v1: Vec<(Vec<String>, PathBuf, String)>,
}

impl Hierarchies {
    fn read() -> Hierarchies {
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Hierarchies::parse(&mounts, &own)
    }

    fn parse(mountinfo: &str, own: &str) -> Hierarchies {
        // /proc/self/cgroup: `id:controllers:path`; v2 is `0::path`.
        let mut own_v1: Vec<(Vec<String>, String)> = Vec::new();
        let mut own_v2 = None;
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && ctrls.is_empty() {
                own_v2 = Some(path.to_owned());
            } else {
                own_v1.push((
                    ctrls.split(',').map(str::to_owned).collect(),
                    path.to_owned(),
                ));
            }
        }
        let mut h = Hierarchies::default();
        for line in mountinfo.lines() {
            // `id parent maj:min root mountpoint options [optional...] - fstype source super`
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = left.split(' ').collect();
            let rfields: Vec<&str> = right.split(' ').collect();
            let (Some(mount_point), Some(fstype)) = (fields.get(4), rfields.first()) else {
                continue;
            };
            let mount_point = PathBuf::from(unescape(mount_point));
            match *fstype {
                "cgroup2" => {
                    if let Some(path) = &own_v2 {
                        h.v2 = Some((mount_point, path.clone()));
                    }
                }
                "cgroup" => {
                    let supers: Vec<&str> = rfields
                        .get(2)
                        .map(|s| s.split(',').collect())
                        .unwrap_or_default();
                    if let Some((ctrls, path)) = own_v1
                        .iter()
                        .find(|(c, _)| c.iter().any(|c| supers.contains(&c.as_str())))
                    {
                        h.v1.push((ctrls.clone(), mount_point, path.clone()));
                    }
                }
                _ => {}
            }
        }
        h
    }

    fn create(&self, c: Controller, name: &str) -> Result<Group, String> {
        let mut why = Vec::new();
        match &self.v2 {
            Some((mount, path)) => match self.create_v2(c, mount, path, name) {
                Ok(g) => return Ok(g),
                Err(e) => why.push(format!("cgroup v2: {e}")),
            },
            None => why.push("cgroup v2: not mounted".to_owned()),
        }
        match self
            .v1
            .iter()
            .find(|(ctrls, _, _)| ctrls.iter().any(|x| x == c.name()))
        {
            Some((_, mount, path)) => {
                let dir = join(mount, path).join(name);
                match fs::create_dir(&dir) {
                    Ok(()) => {
                        return Ok(Group {
                            controller: c,
                            dir,
                            v2: false,
                        });
                    }
                    Err(e) => why.push(format!(
                        "cgroup v1: failed to create {}: {e}",
                        dir.display()
                    )),
                }
            }
            None => why.push(format!("cgroup v1: no {} hierarchy is mounted", c.name())),
        }
        Err(why.join("; "))
    }

    fn create_v2(
        &self,
        c: Controller,
        mount: &Path,
        path: &str,
        name: &str,
    ) -> Result<Group, String> {
        let own = join(mount, path);
        let available = fs::read_to_string(own.join("cgroup.controllers")).map_err(|e| {
            format!(
                "failed to read {}: {e}",
                own.join("cgroup.controllers").display()
            )
        })?;
        if !available.split_whitespace().any(|x| x == c.name()) {
            return Err(format!(
                "the {} controller is not available in {}",
                c.name(),
                own.display()
            ));
        }
        let subtree = own.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&subtree).unwrap_or_default();
        if !enabled.split_whitespace().any(|x| x == c.name()) {
            fs::write(&subtree, format!("+{}", c.name())).map_err(|e| {
                format!(
                    "failed to enable {} in {} (a cgroup with processes cannot delegate \
                     controllers): {e}",
                    c.name(),
                    subtree.display()
                )
            })?;
        }
        let dir = own.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(Group {
                controller: c,
                dir,
                v2: true,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Group {
                controller: c,
                dir,
                v2: true,
            }),
            Err(e) => Err(format!("failed to create {}: {e}", dir.display())),
        }
    }
}

fn join(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

/// Mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
32 25 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";

    #[test]
    fn a_hybrid_tree_finds_each_v1_controller_and_the_unified_mount() {
        let h = Hierarchies::parse(MOUNTINFO, OWN);
        assert_eq!(
            h.v2,
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_owned()))
        );
        let memory =
            h.v1.iter()
                .find(|(c, _, _)| c == &["memory"])
                .expect("memory");
        assert_eq!(
            join(&memory.1, &memory.2),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert_eq!(h.v1.len(), 3);
    }

    #[test]
    fn without_any_hierarchy_the_reason_names_both_versions() {
        let h = Hierarchies::parse("", "");
        let e = h.create(Controller::Memory, "x").unwrap_err();
        assert!(e.contains("cgroup v2: not mounted"), "{e}");
        assert!(e.contains("no memory hierarchy is mounted"), "{e}");
    }
}
