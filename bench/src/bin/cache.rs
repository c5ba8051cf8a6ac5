//! Cache benchmark, side by side in one run:
//! - a fully cached rerun of 1,000 tasks (inputs `src/m{i%200}/**`) over a 20,000-file tree
//!   against `git status --porcelain` on that tree (target <= 2x);
//! - the same for 10,000 tasks over 100,000 files (target <= 2x), with peak RSS;
//! - first-run hashing (empty stat index) against `b3sum` on the same files (target <= 1.3x).
//!
//! A rerun is what a new `sykli run` does for each task: open the store and the stat index,
//! key the task (one workspace walk shared by every task), look the key up (a hit), and save
//! the index. Each rerun is checked to write no file in the store or the index.
//!
//! `cargo run --release -p sykli-bench --bin cache [-- --only small|large --big-mb M --dir PATH
//! --reruns N]`
//! (workspaces are created in temp dirs under PATH, default the system temp dir, and removed
//! afterwards; `--big-mb` adds one file of M MB to the hashing comparison, default 512).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::{Rng, SeedableRng};
use sykli_runtime::cache::{KeyContext, Keyed, StatIndex, Store, TaskCache};
use sykli_runtime::graph::model::Task;

struct Opts {
    only: Option<String>,
    reruns: usize,
    big_mb: usize,
    dir: PathBuf,
}

fn opts() -> Result<Opts> {
    let mut o = Opts {
        only: None,
        reruns: 5,
        big_mb: 512,
        dir: std::env::temp_dir(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--only" => o.only = Some(val()?),
            "--reruns" => o.reruns = val()?.parse()?,
            "--big-mb" => o.big_mb = val()?.parse()?,
            "--dir" => o.dir = PathBuf::from(val()?),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

/// One workspace shape: `files` files spread over `dirs` directories, `tasks` tasks whose
/// inputs are `src/m{i % dirs}/**`.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    files: usize,
    dirs: usize,
    tasks: usize,
}

const SMALL: Shape = Shape {
    name: "small",
    files: 20_000,
    dirs: 200,
    tasks: 1_000,
};
const LARGE: Shape = Shape {
    name: "large",
    files: 100_000,
    dirs: 1_000,
    tasks: 10_000,
};

fn build_workspace(root: &Path, shape: Shape) -> Result<(Vec<String>, u64)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut rels = Vec::with_capacity(shape.files);
    let mut total = 0u64;
    for i in 0..shape.files {
        let rel = format!("src/m{}/f{:06}.txt", i % shape.dirs, i);
        let p = root.join(&rel);
        if i < shape.dirs {
            fs::create_dir_all(p.parent().context("a parent")?)?;
        }
        let len = rng.random_range(256..4096);
        let mut buf = vec![0u8; len];
        rng.fill(&mut buf[..]);
        fs::write(&p, &buf)?;
        total += len as u64;
        rels.push(rel);
    }
    fs::write(root.join(".gitignore"), "target/\n")?;
    Ok((rels, total))
}

fn tasks(shape: Shape) -> Vec<Task> {
    (0..shape.tasks)
        .map(|i| {
            let mut t = Task::named(format!("t{i:05}"));
            t.command = Some(format!("check {i}"));
            t.inputs = vec![format!("src/m{}/**", i % shape.dirs)];
            t
        })
        .collect()
}

/// Runs `f` on every task from `threads` threads (as a scheduler handles ready tasks).
fn each_task(
    tasks: &[Task],
    threads: usize,
    f: impl Fn(&Task) -> Result<usize> + Sync,
) -> Result<usize> {
    let next = AtomicUsize::new(0);
    let counts: Vec<Result<usize>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(t) = tasks.get(i) else {
                            return Ok(n);
                        };
                        n += f(t)?;
                    }
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("a worker panicked")))
            .collect()
    });
    counts.into_iter().sum()
}

fn cacheable(t: &Task, keyed: Keyed) -> Result<Keyed> {
    match keyed {
        Keyed::NotCacheable { reason } => bail!("{}: {reason}", t.name),
        k => Ok(k),
    }
}

/// The first run: key every task and store a result for it (no outputs, no log).
fn first_run(cache: &TaskCache, root: &Path, tasks: &[Task], threads: usize) -> Result<()> {
    let ctx = KeyContext::default();
    each_task(tasks, threads, |t| {
        let keyed = cacheable(t, cache.key(t, &ctx)?)?;
        cache.store(&keyed, 0, root, &BTreeMap::new(), None)?;
        Ok(1)
    })?;
    cache.save_index()?;
    Ok(())
}

/// A fully cached rerun as a new process does it; returns (input files, walks).
fn rerun(
    cache_dir: &Path,
    root: &Path,
    tasks: &[Task],
    threads: usize,
) -> Result<(usize, (u64, u64), u64)> {
    let cache = TaskCache::open(Store::open(cache_dir)?, root)?;
    let ctx = KeyContext::default();
    let inputs = each_task(tasks, threads, |t| {
        let keyed = cacheable(t, cache.key(t, &ctx)?)?;
        if cache.lookup(&keyed)?.is_none() {
            bail!("{}: expected a cache hit", t.name);
        }
        match &keyed {
            Keyed::Cacheable { manifest, .. } => Ok(manifest.inputs.len()),
            Keyed::NotCacheable { .. } => Ok(0),
        }
    })?;
    cache.save_index()?;
    Ok((inputs, cache.walks(), cache.index().hashed_files()))
}

fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed(), v))
}

fn run_quiet(cmd: &mut Command) -> Result<()> {
    let st = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

fn git(root: &Path, args: &[&str]) -> Result<()> {
    run_quiet(Command::new("git").current_dir(root).args(args))
}

/// Commits the tree so `git status` has an index to compare against.
fn git_commit_all(root: &Path) -> Result<()> {
    git(root, &["init", "-q"])?;
    // No detached auto-gc racing the clean-up of the workspace.
    git(root, &["config", "gc.auto", "0"])?;
    git(root, &["config", "maintenance.auto", "false"])?;
    git(root, &["-c", "core.compression=0", "add", "-A"])?;
    git(
        root,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-qm",
            "x",
        ],
    )?;
    git(root, &["status", "--porcelain"])
}

/// `b3sum` over the files, passed as arguments in chunks like `xargs`.
fn b3sum(root: &Path, rels: &[String]) -> Result<Duration> {
    let t = Instant::now();
    for chunk in rels.chunks(5000) {
        run_quiet(Command::new("b3sum").current_dir(root).args(chunk))?;
    }
    Ok(t.elapsed())
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Resets the process's peak RSS (Linux: `clear_refs` 5), so the next reading is this phase's.
fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

/// Peak RSS in MB (`VmHWM`).
fn peak_rss_mb() -> f64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Every file under `dir` with its (mtime ns, size): to check that a rerun writes nothing.
fn listing(dir: &Path) -> Result<BTreeMap<PathBuf, (i64, u64)>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path(),
                    (m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.len()),
                );
            }
        }
    }
    Ok(out)
}

struct Rerun {
    shape: Shape,
    sykli: Duration,
    git: Duration,
    inputs: usize,
    walks: (u64, u64),
    rehashed: u64,
    walk: Duration,
    writes: usize,
    rss_mb: f64,
}

/// Builds `shape`, stores every task once, then times fully cached reruns and `git status`.
/// For the hashing comparison it also returns the workspace (kept alive by `work`).
fn rerun_case(
    o: &Opts,
    shape: Shape,
    threads: usize,
) -> Result<(Rerun, tempfile::TempDir, Vec<String>, u64)> {
    let work = tempfile::Builder::new()
        .prefix("sykli-cache-bench")
        .tempdir_in(&o.dir)?;
    let root = work.path().join("repo");
    let cache_dir = work.path().join("cache");
    fs::create_dir_all(&root)?;
    let (gen_time, (rels, bytes)) = time(|| build_workspace(&root, shape))?;
    eprintln!(
        "[{}] generated {} files ({:.0} MB) in {gen_time:.1?}",
        shape.name,
        shape.files,
        bytes as f64 / 1048576.0
    );
    // Files must be older than the racy window before an index can trust them.
    std::thread::sleep(Duration::from_millis(100));
    let tasks = tasks(shape);
    let cache = TaskCache::open(Store::open(&cache_dir)?, &root)?;
    first_run(&cache, &root, &tasks, threads)?;
    drop(cache);
    git_commit_all(&root)?;
    std::thread::sleep(Duration::from_millis(50));

    // One rerun to warm, and to check that a rerun writes nothing.
    let before = listing(&cache_dir)?;
    let index_before = fs::metadata(root.join(".sykli/cache-index"))?.mtime_nsec();
    rerun(&cache_dir, &root, &tasks, threads)?;
    let after = listing(&cache_dir)?;
    let index_after = fs::metadata(root.join(".sykli/cache-index"))?.mtime_nsec();
    let writes = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .count()
        + usize::from(index_before != index_after);

    reset_peak_rss();
    let mut best = Duration::MAX;
    let mut last = (0, (0, 0), 0);
    for _ in 0..o.reruns.max(1) {
        let (d, r) = time(|| rerun(&cache_dir, &root, &tasks, threads))?;
        best = best.min(d);
        last = r;
    }
    let rss_mb = peak_rss_mb();
    let mut load = Duration::MAX;
    for _ in 0..o.reruns.max(1) {
        let (d, idx) = time(|| Ok(StatIndex::open(root.join(".sykli/cache-index"))))?;
        load = load.min(d);
        drop(idx);
    }
    eprintln!("[{}] stat index load: {load:.1?}", shape.name);
    // Of which the one walk of the tree (with the index load and one task's key).
    let mut walk = Duration::MAX;
    for _ in 0..o.reruns.max(1) {
        let (d, _) = time(|| rerun(&cache_dir, &root, &tasks[..1], 1))?;
        walk = walk.min(d);
    }
    let mut git_best = Duration::MAX;
    for _ in 0..5 {
        git_best = git_best.min(time(|| git(&root, &["status", "--porcelain"]))?.0);
    }
    Ok((
        Rerun {
            shape,
            sykli: best,
            git: git_best,
            inputs: last.0,
            walks: last.1,
            rehashed: last.2,
            walk,
            writes,
            rss_mb,
        },
        work,
        rels,
        bytes,
    ))
}

fn main() -> Result<()> {
    let o = opts()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if Command::new("b3sum").arg("--version").output().is_err() {
        bail!("b3sum is not installed (cargo install b3sum, or apt-get install b3sum)");
    }
    let shapes: Vec<Shape> = match o.only.as_deref() {
        None => vec![SMALL, LARGE],
        Some("small") => vec![SMALL],
        Some("large") => vec![LARGE],
        Some(other) => bail!("--only takes small or large, not {other}"),
    };
    let mut reruns = Vec::new();
    let mut hashing = None;
    for shape in shapes {
        let (r, work, rels, bytes) = rerun_case(&o, shape, threads)?;
        reruns.push(r);
        if shape.name == LARGE.name || o.only.is_some() {
            hashing = Some(hashing_case(&o, work.path(), shape, &rels, bytes, threads)?);
        }
        let path = work.path().to_path_buf();
        work.close()
            .with_context(|| format!("failed to remove {}", path.display()))?;
    }

    println!(
        "fully cached rerun ({threads} threads; best of {}; key + lookup every task):",
        o.reruns.max(1)
    );
    for r in &reruns {
        println!(
            "  {:>6} tasks / {:>7} files: sykli {:>8.1?}  git status {:>8.1?}  ratio {:>5.2}x (target <= 2x)  peak RSS {:.0} MB  [{} inputs, {} walk(s) of the tree ({:.1?} with one task), {} per-task walks, {} rehashed, {} files written]",
            r.shape.tasks,
            r.shape.files,
            r.sykli,
            r.git,
            r.sykli.as_secs_f64() / r.git.as_secs_f64(),
            r.rss_mb,
            r.inputs,
            r.walks.0,
            r.walk,
            r.walks.1,
            r.rehashed,
            r.writes,
        );
    }
    if let Some(h) = hashing {
        h.print();
    }
    Ok(())
}

struct Hashing {
    files: usize,
    small_bytes: u64,
    sykli_small: Duration,
    b3_small: Duration,
    big_bytes: u64,
    sykli_big: Duration,
    b3_big: Duration,
}

impl Hashing {
    fn print(&self) {
        println!("first-run hashing (empty stat index, warm page cache, best of 3):");
        let line = |what: &str, bytes: u64, sy: Duration, b3: Duration| {
            println!(
                "  {what:<32} sykli {:>8.1?} ({:>6.0} MB/s)  b3sum {:>8.1?} ({:>6.0} MB/s)  ratio {:>5.2}x (target <= 1.3x)",
                sy,
                mbps(bytes, sy),
                b3,
                mbps(bytes, b3),
                sy.as_secs_f64() / b3.as_secs_f64()
            );
        };
        line(
            &format!("{} small files:", self.files),
            self.small_bytes,
            self.sykli_small,
            self.b3_small,
        );
        if self.big_bytes > 0 {
            line(
                &format!("{} MB file (after the walk):", self.big_bytes >> 20),
                self.big_bytes,
                self.sykli_big,
                self.b3_big,
            );
        }
    }
}

/// Keys every task with an empty, in-memory stat index (every file hashed) against `b3sum`
/// over the same files; plus one big file when `--big-mb` is not 0.
fn hashing_case(
    o: &Opts,
    work: &Path,
    shape: Shape,
    rels: &[String],
    small_bytes: u64,
    threads: usize,
) -> Result<Hashing> {
    let root = work.join("repo");
    let cache_dir = work.join("cache");
    let big_bytes = (o.big_mb as u64) << 20;
    if o.big_mb > 0 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        fs::create_dir_all(root.join("big"))?;
        let mut f = fs::File::create(root.join("big/blob.bin"))?;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..o.big_mb {
            rng.fill(&mut chunk[..]);
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }
    let tasks = tasks(shape);
    let mut big = Task::named("big");
    big.command = Some("check big".into());
    big.inputs = vec!["big/*.bin".into()];
    let big_rel = ["big/blob.bin".to_owned()];
    let ctx = KeyContext::default();
    let fresh = || -> Result<TaskCache> {
        Ok(TaskCache::with_index(
            Store::open(&cache_dir)?,
            &root,
            StatIndex::in_memory(),
        ))
    };
    // Warm the page cache for both sides.
    b3sum(&root, rels)?;
    let mut h = Hashing {
        files: rels.len(),
        small_bytes,
        sykli_small: Duration::MAX,
        b3_small: Duration::MAX,
        big_bytes,
        sykli_big: Duration::MAX,
        b3_big: Duration::MAX,
    };
    for _ in 0..3 {
        h.b3_small = h.b3_small.min(b3sum(&root, rels)?);
        let c = fresh()?;
        let (d, _) = time(|| {
            each_task(&tasks, threads, |t| {
                cacheable(t, c.key(t, &ctx)?).map(|_| 1)
            })
        })?;
        if c.index().hashed_files() != rels.len() as u64 {
            bail!(
                "expected {} files hashed, got {}",
                rels.len(),
                c.index().hashed_files()
            );
        }
        h.sykli_small = h.sykli_small.min(d);
        if o.big_mb > 0 {
            h.b3_big = h.b3_big.min(b3sum(&root, &big_rel)?);
            // Hashing alone: the run's one walk of the tree is done by an earlier task.
            let c = fresh()?;
            c.key(&tasks[0], &ctx)?;
            let (d, _) = time(|| cacheable(&big, c.key(&big, &ctx)?))?;
            h.sykli_big = h.sykli_big.min(d);
        }
    }
    Ok(h)
}
