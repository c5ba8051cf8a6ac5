//! Resource use of running tasks: a task's processes form one process group (the process and
//! sandbox executors start each attempt in its own), sampled from `/proc` about once a
//! second while any of them lives; when the group's leader sits in a sykli cgroup (a
//! sandboxed task), the cgroup's own counters (`cpu.stat`, `memory.current`) are used
//! instead, which also count processes that left the group. Each sample becomes an
//! [`Event::TaskResources`]. Linux only; elsewhere nothing is sampled.

use std::sync::Arc;
use std::time::Duration;

use crate::events::{Event, EventSink};

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// One reading of a task's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// CPU time used so far, in microseconds.
    pub cpu_us: u64,
    /// Resident memory now, in bytes.
    pub rss_bytes: u64,
}

/// One sample of a process group, as [`Event::TaskResources`] carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// CPU used since the previous sample, in percent of one core (one decimal).
    pub cpu_percent: f64,
    /// Resident memory now, in bytes.
    pub rss_bytes: u64,
}

/// Samples the process group `pgid` of `task` every [`INTERVAL`] until no process of it is
/// left, emitting [`Event::TaskResources`] to `events`. Spawned on the current tokio
/// runtime; does nothing outside one or off Linux.
pub fn watch_group(task: String, pgid: u32, events: Arc<dyn EventSink>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        use futures::StreamExt;
        let mut samples = std::pin::pin!(samples(pgid));
        while let Some(s) = samples.next().await {
            events.emit(&Event::TaskResources {
                task: task.clone(),
                cpu_percent: s.cpu_percent,
                rss_bytes: s.rss_bytes,
            });
        }
    });
}

/// The samples of the process group `pgid`, one every [`INTERVAL`] (the first a second
/// after the call), ending when no process of it is left. Empty off Linux.
pub fn samples(pgid: u32) -> impl futures::Stream<Item = Sample> + Send + 'static {
    // The processes just started: nothing used yet. The first read is a second later,
    // so a short task costs a timer, not a scan of /proc.
    let start = (
        Reading {
            cpu_us: 0,
            rss_bytes: 0,
        },
        std::time::Instant::now(),
        None::<tokio::time::Interval>,
    );
    futures::stream::unfold(start, move |(last, last_at, tick)| async move {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let mut tick = match tick {
            Some(t) => t,
            None => {
                let mut t = tokio::time::interval(INTERVAL);
                t.tick().await;
                t
            }
        };
        tick.tick().await;
        // /proc reads are quick but blocking: off the scheduler's thread.
        let now = tokio::task::spawn_blocking(move || read_group(pgid))
            .await
            .ok()
            .flatten()?;
        let at = std::time::Instant::now();
        let elapsed = at.duration_since(last_at).as_secs_f64().max(1e-3);
        let used = now.cpu_us.saturating_sub(last.cpu_us) as f64 / 1e6;
        let sample = Sample {
            cpu_percent: (used / elapsed * 100.0 * 10.0).round() / 10.0,
            rss_bytes: now.rss_bytes,
        };
        Some((sample, (now, at, Some(tick))))
    })
}

/// The group's reading: its cgroup's counters when the leader is in a sykli cgroup, else
/// the sum over `/proc` of the processes in the group. `None` when none is left.
pub fn read_group(pgid: u32) -> Option<Reading> {
    let procs = group_members(pgid);
    if procs.is_empty() {
        return None;
    }
    if let Some(r) = read_cgroup(pgid) {
        return Some(r);
    }
    let ticks = clock_ticks();
    let page = page_size();
    let mut total = Reading {
        cpu_us: 0,
        rss_bytes: 0,
    };
    for (_, stat) in procs {
        total.cpu_us += (stat.utime + stat.stime) * 1_000_000 / ticks;
        total.rss_bytes += stat.rss_pages * page;
    }
    Some(total)
}

struct Stat {
    pgrp: u32,
    utime: u64,
    stime: u64,
    rss_pages: u64,
}

/// Parses `/proc/PID/stat` (the command name may hold spaces and parentheses: fields are
/// counted after its last `)`).
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) ... utime(14) stime(15) ... rss(24).
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        pgrp: field(5)? as u32,
        utime: field(14)?,
        stime: field(15)?,
        rss_pages: field(24)?,
    })
}

fn group_members(pgid: u32) -> Vec<(u32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let text = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let stat = parse_stat(&text)?;
        (stat.pgrp == pgid).then_some((pid, stat))
    })
    .collect()
}

/// The counters of the sykli cgroup the group's leader is in, if it is in one.
fn read_cgroup(pgid: u32) -> Option<Reading> {
    let text = std::fs::read_to_string(format!("/proc/{pgid}/cgroup")).ok()?;
    // cgroup v2: `0::/PATH`.
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    if !path.contains("sykli") {
        return None;
    }
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let cpu = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let cpu_us = cpu
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()?;
    let rss_bytes = std::fs::read_to_string(dir.join("memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Reading { cpu_us, rss_bytes })
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::sync::Mutex;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "42 (a b) c)) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 100 \
                    1000000 300 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.pgrp, s.utime, s.stime, s.rss_pages), (42, 250, 50, 300));
    }

    #[derive(Default)]
    struct Collect(Mutex<Vec<Event>>);
    impl EventSink for Collect {
        fn emit(&self, e: &Event) {
            self.0.lock().unwrap().push(e.clone());
        }
    }

    /// A busy process group is seen using CPU and memory, and sampling stops when it ends.
    #[tokio::test]
    async fn a_busy_process_group_is_sampled_until_it_ends() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 30000000 ]; do i=$((i+1)); done"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let sink = Arc::new(Collect::default());
        watch_group("busy".into(), pgid, sink.clone());
        // Bounded: at most 20 s for two samples.
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while sink.0.lock().unwrap().len() < 2 && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let got = sink.0.lock().unwrap().clone();
        assert!(got.len() >= 2, "{got:?}");
        let Event::TaskResources {
            task,
            cpu_percent,
            rss_bytes,
        } = &got[1]
        else {
            panic!("{got:?}")
        };
        assert_eq!(task, "busy");
        assert!(*cpu_percent > 20.0, "a busy loop uses CPU: {cpu_percent}");
        assert!(*rss_bytes > 100_000, "it has memory: {rss_bytes}");
        assert!(read_group(pgid).is_none(), "the group is gone");
    }
}
