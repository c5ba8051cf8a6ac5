//! The content-addressed cache against real files, real processes and a real store on disk.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{backdate, write_backdated as write};
use sykli_runtime::cache::{
    CacheError, Change, Delta, Digest, Explanation, KeyContext, KeyManifest, Keyed, NotCacheable,
    OutputEntry, OutputTree, Produced, StatIndex, Store, TaskCache,
};
use sykli_runtime::graph::model::{Gate, GateStrategy, Task};
use tempfile::TempDir;

fn task(name: &str, inputs: &[&str]) -> Task {
    let mut t = Task::named(name);
    t.command = Some("make".into());
    t.inputs = inputs.iter().map(|s| s.to_string()).collect();
    t
}

struct Fixture {
    _dirs: (TempDir, TempDir),
    root: PathBuf,
    cache_dir: PathBuf,
}

fn fixture() -> Fixture {
    let project = TempDir::new().unwrap();
    let cache = TempDir::new().unwrap();
    let root = project.path().to_path_buf();
    write(&root, "src/main.rs", b"fn main() {}\n");
    write(&root, "src/lib.rs", b"pub fn lib() {}\n");
    write(&root, "src/util/mod.rs", b"pub mod x;\n");
    write(&root, "Cargo.toml", b"[package]\n");
    write(&root, "README.md", b"readme\n");
    write(&root, ".gitignore", b"*.log\nbuild/\n");
    let cache_dir = cache.path().to_path_buf();
    Fixture {
        _dirs: (project, cache),
        root,
        cache_dir,
    }
}

impl Fixture {
    fn cache(&self) -> TaskCache {
        TaskCache::open(Store::open(&self.cache_dir).unwrap(), &self.root).unwrap()
    }
}

fn cacheable(k: &Keyed) -> (Digest, KeyManifest) {
    match k {
        Keyed::Cacheable { key, manifest, .. } => (*key, manifest.clone()),
        Keyed::NotCacheable { reason } => panic!("expected cacheable, got {reason:?}"),
    }
}

/// Stores `manifest` as a successful run without outputs, so the next key has a previous one.
fn store_empty(cache: &TaskCache, keyed: &Keyed) {
    cache
        .store(keyed, 0, Path::new("/nonexistent"), &BTreeMap::new(), None)
        .unwrap();
}

/// What a dependency `build` produced: one file output `bin` with `content`.
fn produced_bin(content: &[u8]) -> Produced {
    let digest = Digest::of_bytes(content);
    Produced {
        workdir: Some(String::new()),
        outputs: BTreeMap::from([(
            "bin".to_owned(),
            OutputTree {
                path: "out/bin".into(),
                digest,
                entries: BTreeMap::from([(
                    "out/bin".to_owned(),
                    OutputEntry::File {
                        digest,
                        size: content.len() as u64,
                        mode: 0o755,
                    },
                )]),
            },
        )]),
    }
}

fn changes(cache: &TaskCache, t: &Task, ctx: &KeyContext) -> Vec<Change> {
    match cache.explain(&t.name, &cache.key(t, ctx).unwrap()).unwrap() {
        Explanation::Changed { changes } => changes,
        other => panic!("expected changes, got {other:?}"),
    }
}

#[test]
fn unchanged_key_is_stable_and_independent_of_checkout_location() {
    let f = fixture();
    let t = task("build", &["src/**/*.rs", "Cargo.toml"]);
    let keyed = f.cache().key(&t, &KeyContext::default()).unwrap();
    let (k1, m1) = cacheable(&keyed);
    let keyed = f.cache().key(&t, &KeyContext::default()).unwrap();
    let (k2, m2) = cacheable(&keyed);
    assert_eq!(k1, k2);
    assert_eq!(m1, m2);
    assert_eq!(
        m1.inputs.keys().collect::<Vec<_>>(),
        ["Cargo.toml", "src/lib.rs", "src/main.rs", "src/util/mod.rs"]
    );
    assert_eq!(
        m1.inputs["src/main.rs"],
        Digest::of_bytes(b"fn main() {}\n"),
        "input digests are plain BLAKE3 of the content"
    );

    // A second checkout elsewhere on disk gets the same key, and nothing stored names a path.
    let other = TempDir::new().unwrap();
    for rel in ["src/main.rs", "src/lib.rs", "src/util/mod.rs", "Cargo.toml"] {
        write(other.path(), rel, &fs::read(f.root.join(rel)).unwrap());
    }
    let c2 = TaskCache::open(Store::open(&f.cache_dir).unwrap(), other.path()).unwrap();
    let keyed = c2.key(&t, &KeyContext::default()).unwrap();
    let (k3, _) = cacheable(&keyed);
    assert_eq!(k1, k3);
    let json = serde_json::to_string(&m1).unwrap();
    assert!(!json.contains(f.root.to_str().unwrap()), "{json}");
}

#[test]
fn content_change_changes_only_that_input_and_explain_names_it() {
    let f = fixture();
    let cache = f.cache();
    let t = task("build", &["src/**/*.rs"]);
    let ctx = KeyContext::default();
    let keyed = cache.key(&t, &ctx).unwrap();
    let (k1, m1) = cacheable(&keyed);
    store_empty(&cache, &keyed);
    assert_eq!(
        cache
            .explain("build", &cache.key(&t, &ctx).unwrap())
            .unwrap(),
        Explanation::Hit
    );

    write(&f.root, "src/lib.rs", b"pub fn lib() { changed() }\n");
    cache.invalidate_workspace(); // files changed within the run
    let keyed = cache.key(&t, &ctx).unwrap();
    let (k2, m2) = cacheable(&keyed);
    assert_ne!(k1, k2);
    let differing: Vec<_> = m1
        .inputs
        .iter()
        .filter(|(p, d)| m2.inputs.get(*p) != Some(d))
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(differing, ["src/lib.rs"]);
    assert_eq!(
        changes(&cache, &t, &ctx),
        [Change::InputModified {
            path: "src/lib.rs".into()
        }]
    );
}

#[test]
fn rename_added_and_removed_inputs_are_explained() {
    let f = fixture();
    let cache = f.cache();
    let t = task("build", &["src/**/*.rs"]);
    let ctx = KeyContext::default();
    let keyed = cache.key(&t, &ctx).unwrap();
    assert!(keyed.key().is_some());
    store_empty(&cache, &keyed);

    fs::rename(f.root.join("src/lib.rs"), f.root.join("src/core.rs")).unwrap();
    write(&f.root, "src/new.rs", b"new\n");
    fs::remove_file(f.root.join("src/util/mod.rs")).unwrap();
    cache.invalidate_workspace(); // files changed within the run
    let got = changes(&cache, &t, &ctx);
    assert_eq!(
        got,
        [
            Change::InputRenamed {
                from: "src/lib.rs".into(),
                to: "src/core.rs".into()
            },
            Change::InputAdded {
                path: "src/new.rs".into()
            },
            Change::InputRemoved {
                path: "src/util/mod.rs".into()
            },
        ]
    );
    let text = Explanation::Changed { changes: got }.to_string();
    assert!(
        text.contains("input renamed: src/lib.rs -> src/core.rs"),
        "{text}"
    );
}

#[test]
fn env_and_dependency_changes_are_explained_and_secrets_are_names_only() {
    let f = fixture();
    let cache = f.cache();
    let mut t = task("test", &["src/*.rs"]);
    t.env.insert("MODE".into(), "debug".into());
    t.secrets.push("TOKEN".into());
    let mut ctx = KeyContext::default();
    ctx.env.insert("MATRIX_OS".into(), "linux".into());
    ctx.env.insert("TOKEN".into(), "s3cr3t-value".into()); // a secret: must be ignored
    ctx.dependency_outputs
        .insert("build".into(), produced_bin(b"binary v1"));
    let keyed = cache.key(&t, &ctx).unwrap();
    let (k1, m1) = cacheable(&keyed);
    assert!(m1.secrets.contains("TOKEN"));
    assert!(!m1.env.contains_key("TOKEN"));
    let stored = serde_json::to_string(&m1).unwrap();
    assert!(!stored.contains("s3cr3t-value") && !stored.contains("debug"));
    store_empty(&cache, &keyed);

    // The secret's value changing does not change the key.
    ctx.env.insert("TOKEN".into(), "other-value".into());
    assert_eq!(cache.key(&t, &ctx).unwrap().key(), Some(&k1));

    t.env.insert("MODE".into(), "release".into());
    assert_eq!(
        changes(&cache, &t, &ctx),
        [Change::Env {
            name: "MODE".into(),
            how: Delta::Changed
        }]
    );
    t.env.insert("MODE".into(), "debug".into());
    ctx.dependency_outputs
        .insert("build".into(), produced_bin(b"binary v2"));
    assert_eq!(
        changes(&cache, &t, &ctx),
        [Change::Dependency {
            name: "build/bin".into(),
            how: Delta::Changed
        }]
    );
    ctx.dependency_outputs.clear();
    t.container = Some("rust:1.95".into());
    t.command = Some("cargo test".into());
    assert_eq!(
        changes(&cache, &t, &ctx),
        [
            Change::Command,
            Change::Image {
                before: None,
                after: Some("rust:1.95".into())
            },
            Change::Dependency {
                name: "build/bin".into(),
                how: Delta::Removed
            },
        ]
    );
}

#[test]
fn unrelated_and_gitignored_files_do_not_change_the_key() {
    let f = fixture();
    let cache = f.cache();
    let t = task("build", &["src/**", "Cargo.toml"]);
    let ctx = KeyContext::default();
    let keyed = cache.key(&t, &ctx).unwrap();
    let (k1, m1) = cacheable(&keyed);
    write(&f.root, "README.md", b"changed readme\n");
    write(&f.root, "docs/guide.md", b"docs\n");
    write(&f.root, "src/debug.log", b"ignored by *.log\n");
    write(&f.root, "src/build/out.rs", b"ignored by build/\n");
    write(&f.root, ".git/HEAD", b"ref: refs/heads/main\n");
    cache.invalidate_workspace(); // files changed within the run
    let keyed = cache.key(&t, &ctx).unwrap();
    let (k2, m2) = cacheable(&keyed);
    assert_eq!(m1.inputs, m2.inputs);
    assert_eq!(k1, k2);
    // ...while a matching, non-ignored file does.
    write(&f.root, "src/extra.txt", b"x\n");
    cache.invalidate_workspace(); // files changed within the run
    assert_ne!(cache.key(&t, &ctx).unwrap().key(), Some(&k1));
}

#[test]
fn tasks_without_inputs_disabled_or_gates_are_not_cacheable() {
    let f = fixture();
    let cache = f.cache();
    let ctx = KeyContext::default();
    let reason = |t: &Task| match cache.key(t, &ctx).unwrap() {
        Keyed::NotCacheable { reason } => reason,
        Keyed::Cacheable { .. } => panic!("{} should not be cacheable", t.name),
    };
    assert_eq!(reason(&task("a", &[])), NotCacheable::NoInputs);
    let mut t = task("b", &["src/**"]);
    t.cache = Some(false);
    assert_eq!(reason(&t), NotCacheable::Disabled);
    let mut t = task("c", &["src/**"]);
    t.gate = Some(Gate {
        strategy: GateStrategy::Prompt,
        timeout: None,
        message: None,
        env_var: None,
        file_path: None,
        extra: BTreeMap::new(),
    });
    assert_eq!(reason(&t), NotCacheable::Gate);
    let mut t = task("d", &["src/**"]);
    t.command = None;
    t.native = Some("build".into());
    assert_eq!(reason(&t), NotCacheable::NativeWithoutIdentity);
    let e = cache
        .explain("a", &cache.key(&task("a", &[]), &ctx).unwrap())
        .unwrap();
    assert_eq!(e.to_string(), "not cached: it declares no inputs");
}

#[test]
fn bad_input_globs_name_the_task_and_glob() {
    let f = fixture();
    let err = f
        .cache()
        .key(&task("lint", &["../outside/**"]), &KeyContext::default())
        .unwrap_err();
    assert!(matches!(err, CacheError::InvalidInput { .. }));
    assert_eq!(
        err.to_string(),
        "task \"lint\": invalid input glob \"../outside/**\": it leaves the project with \"..\""
    );
}

#[test]
fn outputs_and_log_are_restored_byte_identical_with_modes() {
    let f = fixture();
    let cache = f.cache();
    let mut t = task("build", &["src/**"]);
    t.outputs.insert("bin".into(), "build/app".into());
    t.outputs.insert("docs".into(), "build/docs".into());
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    assert!(keyed.key().is_some());
    assert_eq!(
        cache
            .explain("build", &cache.key(&t, &KeyContext::default()).unwrap())
            .unwrap(),
        Explanation::NoPreviousEntry
    );

    let work = f.root.clone();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::create_dir_all(work.join("build/docs/sub")).unwrap();
    fs::write(work.join("build/app"), &big).unwrap();
    fs::set_permissions(work.join("build/app"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(work.join("build/docs/index.html"), b"<h1>hi</h1>").unwrap();
    fs::write(work.join("build/docs/sub/empty"), b"").unwrap();
    fs::set_permissions(
        work.join("build/docs/sub/empty"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("index.html", work.join("build/docs/link")).unwrap();
    let log = work.join("task.log");
    fs::write(&log, b"compiling\nwarning: x\n").unwrap();
    let digests = cache
        .store(&keyed, 0, &work, &t.outputs, Some(&log))
        .unwrap();
    assert_eq!(digests.outputs.len(), 2);

    // Remove and damage the outputs, then restore.
    fs::remove_dir_all(work.join("build/docs")).unwrap();
    fs::write(work.join("build/app"), b"stale").unwrap();
    fs::write(work.join("build/docs"), b"a file where a dir was").unwrap();
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    let hit = cache.lookup(&keyed).unwrap().expect("a hit");
    assert_eq!(hit.produced(), digests);
    let restored = cache.restore(&hit, &work).unwrap();
    assert_eq!(restored.bytes, b"compiling\nwarning: x\n");
    assert_eq!(fs::read(work.join("build/app")).unwrap(), big);
    let mode = |p: &str| fs::metadata(work.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("build/app"), 0o755);
    assert_eq!(mode("build/docs/sub/empty"), 0o600);
    assert_eq!(
        fs::read(work.join("build/docs/index.html")).unwrap(),
        b"<h1>hi</h1>"
    );
    assert_eq!(
        fs::read_link(work.join("build/docs/link")).unwrap(),
        Path::new("index.html")
    );
}

#[test]
fn a_corrupted_blob_is_detected_removed_and_never_served() {
    let f = fixture();
    let cache = f.cache();
    let mut t = task("build", &["src/**"]);
    t.outputs.insert("bin".into(), "out.bin".into());
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    assert!(keyed.key().is_some());
    fs::write(f.root.join("out.bin"), b"the real output").unwrap();
    cache.store(&keyed, 0, &f.root, &t.outputs, None).unwrap();

    let d = Digest::of_bytes(b"the real output");
    let hex = d.to_hex();
    let blob = f.cache_dir.join("v1/blobs").join(&hex[..2]).join(&hex);
    fs::write(&blob, b"the evil output").unwrap(); // same length, different bytes
    fs::remove_file(f.root.join("out.bin")).unwrap();

    let hit = cache
        .lookup(&cache.key(&t, &KeyContext::default()).unwrap())
        .unwrap()
        .unwrap();
    let err = cache.restore(&hit, &f.root).unwrap_err();
    assert!(err.is_damaged_entry(), "{err}");
    assert!(matches!(err, CacheError::Corrupt { digest } if digest == d));
    assert!(!blob.exists(), "the corrupt blob is removed");
    assert!(
        !f.root.join("out.bin").exists(),
        "nothing wrong was written"
    );
    // The entry is now incomplete: a miss, not a wrong hit.
    assert!(
        cache
            .lookup(&cache.key(&t, &KeyContext::default()).unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_damaged_action_record_is_a_miss() {
    let f = fixture();
    let cache = f.cache();
    let t = task("build", &["src/**"]);
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    let (key, _) = cacheable(&keyed);
    store_empty(&cache, &keyed);
    let hex = key.to_hex();
    let ac = f
        .cache_dir
        .join("v1/ac")
        .join(&hex[..2])
        .join(format!("{hex}.json"));
    fs::write(&ac, b"{\"exit_code\": 0, trunc").unwrap();
    assert!(
        cache
            .lookup(&cache.key(&t, &KeyContext::default()).unwrap())
            .unwrap()
            .is_none()
    );
    assert!(!ac.exists());
}

/// A task whose key differs by name (the name alone is not part of a key: identical tasks
/// share results).
fn writer_task(name: &str) -> Task {
    let mut t = task(name, &["src/**"]);
    t.env.insert("WHO".into(), name.into());
    t.outputs.insert("out".into(), "out".into());
    t
}

const CHILD_ENV: &str = "SYKLI_CACHE_TEST_CHILD";

/// Not a test on its own: the body of each writer process that
/// [`concurrent_processes_leave_a_consistent_store`] starts (ignored otherwise, and failing
/// if run without the parent's setup).
#[test]
#[ignore = "run by concurrent_processes_leave_a_consistent_store in child processes"]
fn concurrent_writer_child() {
    let spec = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!("{CHILD_ENV} is not set: this test only runs as a child of concurrent_processes_leave_a_consistent_store")
    });
    let mut parts = spec.split('|');
    let (Some(cache_dir), Some(project), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("{CHILD_ENV} must be `cache_dir|project|id`, not `{spec}`");
    };
    let root = Path::new(project);
    let cache = TaskCache::with_index(
        Store::open(cache_dir).unwrap(),
        root,
        StatIndex::in_memory(),
    );
    let work = TempDir::new().unwrap();
    for round in 0..20 {
        // The same entry from every process, and one of its own.
        for name in ["shared", id] {
            let t = writer_task(name);
            let keyed = cache.key(&t, &KeyContext::default()).unwrap();
            assert!(keyed.key().is_some());
            let content = format!("output of {name}\n").repeat(5000);
            fs::create_dir_all(work.path().join("out")).unwrap();
            fs::write(work.path().join("out/data"), &content).unwrap();
            fs::write(
                work.path().join(format!("log{round}")),
                format!("log {name}"),
            )
            .unwrap();
            cache
                .store(
                    &keyed,
                    0,
                    work.path(),
                    &t.outputs,
                    Some(&work.path().join(format!("log{round}"))),
                )
                .unwrap();
        }
    }
}

#[test]
fn concurrent_processes_leave_a_consistent_store() {
    let f = fixture();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "concurrent_writer_child",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(
                    CHILD_ENV,
                    format!("{}|{}|writer{i}", f.cache_dir.display(), f.root.display()),
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // `1 passed`: the child test really ran (a renamed test would run none and pass).
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "writer child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cache = f.cache();
    let stats = cache.store_handle().stats().unwrap();
    assert_eq!(stats.entries, 5, "{stats:?}");
    assert_eq!(
        fs::read_dir(f.cache_dir.join("v1/tmp")).unwrap().count(),
        0,
        "no temp file left behind"
    );
    for name in ["shared", "writer0", "writer1", "writer2", "writer3"] {
        let t = writer_task(name);
        let hit = cache
            .lookup(&cache.key(&t, &KeyContext::default()).unwrap())
            .unwrap()
            .unwrap();
        let dest = TempDir::new().unwrap();
        let log = cache.restore(&hit, dest.path()).unwrap();
        assert_eq!(log.bytes, format!("log {name}").as_bytes());
        assert_eq!(
            fs::read_to_string(dest.path().join("out/data")).unwrap(),
            format!("output of {name}\n").repeat(5000)
        );
    }
}

#[test]
fn stat_index_rehashes_only_changed_and_racy_files() {
    let f = fixture();
    let idx_path = f.root.join(".sykli/cache-index");
    let t = task("build", &["src/**", "Cargo.toml"]);
    let ctx = KeyContext::default();
    let open = || {
        TaskCache::with_index(
            Store::open(&f.cache_dir).unwrap(),
            &f.root,
            StatIndex::open(&idx_path),
        )
    };
    let c = open();
    let k1 = c.key(&t, &ctx).unwrap().key().copied();
    assert_eq!(c.index().hashed_files(), 4);
    c.save_index().unwrap();

    // Unchanged tree: stats only.
    let c = open();
    assert_eq!(c.key(&t, &ctx).unwrap().key().copied(), k1);
    assert_eq!(c.index().hashed_files(), 0);

    // One file changed (same size, old mtime restored: ctime and the stat still differ).
    write(&f.root, "src/lib.rs", b"pub fn lub() {}\n");
    let c = open();
    assert_ne!(c.key(&t, &ctx).unwrap().key().copied(), k1);
    assert_eq!(c.index().hashed_files(), 1);
    c.save_index().unwrap();

    // A racy file: modified just now, within the timestamp granularity of its hashing. It is
    // rehashed on every check until it settles, even with identical stat data.
    fs::write(f.root.join("src/main.rs"), b"fn main() { 1 }\n").unwrap();
    let c = open();
    c.key(&t, &ctx).unwrap();
    assert_eq!(c.index().hashed_files(), 1);
    c.save_index().unwrap();
    let c = open();
    c.key(&t, &ctx).unwrap();
    assert_eq!(c.index().hashed_files(), 1, "the racy entry is not trusted");
    // Once it is old, it is trusted again after one more hash.
    backdate(&f.root.join("src/main.rs"));
    let c = open();
    c.key(&t, &ctx).unwrap();
    assert_eq!(c.index().hashed_files(), 1, "ctime changed: rehashed once");
    c.save_index().unwrap();
    let c = open();
    c.key(&t, &ctx).unwrap();
    assert_eq!(c.index().hashed_files(), 0);

    // A damaged index file is discarded, never trusted.
    fs::write(&idx_path, b"SYKIDX01garbage").unwrap();
    let c = open();
    c.key(&t, &ctx).unwrap();
    assert_eq!(c.index().hashed_files(), 4);
}

fn store_sized(cache: &TaskCache, root: &Path, name: &str, bytes: usize) -> Digest {
    let mut t = task(name, &["src/**"]);
    t.outputs.insert("o".into(), format!("{name}.out"));
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    let (key, _) = cacheable(&keyed);
    fs::write(
        root.join(format!("{name}.out")),
        vec![name.as_bytes()[0]; bytes],
    )
    .unwrap();
    cache.store(&keyed, 0, root, &t.outputs, None).unwrap();
    key
}

fn ac_file(cache_dir: &Path, key: &Digest) -> PathBuf {
    let hex = key.to_hex();
    cache_dir
        .join("v1/ac")
        .join(&hex[..2])
        .join(format!("{hex}.json"))
}

fn set_used(cache_dir: &Path, key: &Digest, ago: Duration) {
    let f = fs::File::options()
        .write(true)
        .open(ac_file(cache_dir, key))
        .unwrap();
    f.set_modified(SystemTime::now() - ago).unwrap();
}

#[test]
fn lru_eviction_keeps_the_most_recently_used_under_the_limit() {
    let f = fixture();
    let cache = f.cache();
    let a = store_sized(&cache, &f.root, "a", 100_000);
    let b = store_sized(&cache, &f.root, "b", 100_000);
    let c = store_sized(&cache, &f.root, "c", 100_000);
    set_used(&f.cache_dir, &a, Duration::from_secs(300));
    set_used(&f.cache_dir, &b, Duration::from_secs(200));
    set_used(&f.cache_dir, &c, Duration::from_secs(100));
    // Using `a` makes it the most recent.
    let mut ta = task("a", &["src/**"]);
    ta.outputs.insert("o".into(), "a.out".into());
    assert!(
        cache
            .lookup(&cache.key(&ta, &KeyContext::default()).unwrap())
            .unwrap()
            .is_some()
    );

    let report = cache.store_handle().evict_to(250_000).unwrap();
    assert_eq!(report.entries_removed, 1);
    // Its output, its Action and its Command; the Directory messages of the input tree
    // (the same `src/**` for every task) are still used by the others.
    assert_eq!(report.blobs_removed, 3);
    assert!(ac_file(&f.cache_dir, &a).exists());
    assert!(
        !ac_file(&f.cache_dir, &b).exists(),
        "b was least recently used"
    );
    assert!(ac_file(&f.cache_dir, &c).exists());
    let stats = cache.store_handle().stats().unwrap();
    // Per entry an output, an Action and a Command; three shared Directory messages
    // (the root, src, src/util).
    assert_eq!((stats.entries, stats.blobs), (2, 2 * 3 + 3));
    assert!(stats.total_bytes <= 250_000 + 20_000, "{stats:?}");

    // The size limit on TaskCache evicts after each store.
    let limited = f.cache().with_size_limit(Some(150_000));
    store_sized(&limited, &f.root, "d", 100_000);
    assert_eq!(limited.store_handle().stats().unwrap().entries, 1);
}

#[test]
fn clean_older_than_removes_only_stale_entries_and_their_blobs() {
    let f = fixture();
    let cache = f.cache();
    let old = store_sized(&cache, &f.root, "old", 1000);
    let new = store_sized(&cache, &f.root, "new", 1000);
    set_used(&f.cache_dir, &old, Duration::from_secs(8 * 24 * 3600));
    let report = cache
        .store_handle()
        .clean(Some(Duration::from_secs(7 * 24 * 3600)))
        .unwrap();
    // The output, the Action and the Command (the input tree's Directory messages are shared).
    assert_eq!((report.entries_removed, report.blobs_removed), (1, 3));
    assert!(!ac_file(&f.cache_dir, &old).exists());
    assert!(ac_file(&f.cache_dir, &new).exists());
    let report = cache.store_handle().clean(None).unwrap();
    assert_eq!(report.entries_removed, 1);
    let stats = cache.store_handle().stats().unwrap();
    assert_eq!((stats.entries, stats.blobs, stats.total_bytes), (0, 0, 0));
}

#[test]
fn explain_reports_not_stored_when_the_key_is_unchanged_but_nothing_was_kept() {
    let f = fixture();
    let cache = f.cache();
    let t = task("build", &["src/**"]);
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    assert!(keyed.key().is_some());
    store_empty(&cache, &keyed);
    cache.store_handle().evict_to(0).unwrap();
    assert_eq!(
        cache
            .explain("build", &cache.key(&t, &KeyContext::default()).unwrap())
            .unwrap(),
        Explanation::NotStored
    );
}

#[test]
fn nested_ignore_files_negations_and_git_exclude_apply() {
    let f = fixture();
    let cache = f.cache();
    let t = task("build", &["**/*.txt"]);
    write(&f.root, "a/keep.txt", b"1");
    write(&f.root, "a/skip.txt", b"2");
    write(&f.root, "a/.gitignore", b"*.txt\n!keep.txt\n");
    write(&f.root, "a/b/deep.txt", b"3"); // ignored by a/.gitignore's *.txt
    write(&f.root, "a/b/.gitignore", b"!deep.txt\n"); // ...re-included one level down
    write(&f.root, "c/x.txt", b"4");
    write(&f.root, "c/.ignore", b"x.txt\n");
    write(&f.root, "d/y.txt", b"5");
    write(&f.root, ".git/info/exclude", b"d/\n");
    write(&f.root, ".sykli/state.txt", b"6");
    write(&f.root, "build/out.txt", b"7"); // root .gitignore: build/
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    let (_, m) = cacheable(&keyed);
    assert_eq!(
        m.inputs.keys().collect::<Vec<_>>(),
        ["a/b/deep.txt", "a/keep.txt"]
    );
}
