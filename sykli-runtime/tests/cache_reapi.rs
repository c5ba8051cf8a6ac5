//! Cache keys as REAPI `Action` digests, checked against messages built here with the
//! `bazel-remote-apis` types; keys across checkouts; one workspace walk per run; hits that
//! write nothing.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::protobuf::Duration as PbDuration;
use common::write_backdated as write;
use prost::Message;
use sykli_runtime::cache::action::{host_isa, host_os_family};
use sykli_runtime::cache::{DigestFunction, KeyContext, Keyed, StatIndex, Store, TaskCache};
use sykli_runtime::graph::model::{Task, TaskInput};
use tempfile::TempDir;

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of `bytes` under `f`, as REAPI writes it.
fn digest(f: DigestFunction, bytes: &[u8]) -> reapi::Digest {
    reapi::Digest {
        hash: match f {
            DigestFunction::Blake3 => blake3::hash(bytes).to_hex().to_string(),
            DigestFunction::Sha256 => sha256(bytes),
        },
        size_bytes: bytes.len() as i64,
    }
}

fn message_digest(f: DigestFunction, m: &impl Message) -> reapi::Digest {
    digest(f, &m.encode_to_vec())
}

/// The Action the REAPI mapping gives the task of `key_equals_the_digest_of_the_reapi_action`,
/// built from scratch.
fn expected_action(f: DigestFunction) -> reapi::Action {
    let main_rs = b"fn main() {}\n";
    let run_sh = b"#!/bin/sh\necho run\n";
    let file = |name: &str, content: &[u8], exec: bool| reapi::FileNode {
        name: name.into(),
        digest: Some(digest(f, content)),
        is_executable: exec,
        node_properties: None,
    };
    let bin = reapi::Directory {
        files: vec![file("run.sh", run_sh, true)],
        symlinks: vec![reapi::SymlinkNode {
            name: "sh".into(),
            target: "run.sh".into(),
            node_properties: None,
        }],
        ..Default::default()
    };
    let src = reapi::Directory {
        files: vec![file("main.rs", main_rs, false)],
        directories: vec![reapi::DirectoryNode {
            name: "bin".into(),
            digest: Some(message_digest(f, &bin)),
        }],
        ..Default::default()
    };
    let root = reapi::Directory {
        directories: vec![reapi::DirectoryNode {
            name: "src".into(),
            digest: Some(message_digest(f, &src)),
        }],
        ..Default::default()
    };
    #[allow(deprecated)]
    let command = reapi::Command {
        arguments: vec!["/bin/sh".into(), "-c".into(), "make build".into()],
        environment_variables: vec![
            reapi::command::EnvironmentVariable {
                name: "MATRIX_OS".into(),
                value: "linux".into(),
            },
            reapi::command::EnvironmentVariable {
                name: "MODE".into(),
                value: "release".into(),
            },
        ],
        output_paths: vec!["out/app".into()],
        working_directory: String::new(),
        ..Default::default()
    };
    let mut properties = vec![
        ("OSFamily", host_os_family().to_owned()),
        ("ISA", host_isa().to_owned()),
        ("gpu", "true".to_owned()),
    ];
    properties.sort();
    reapi::Action {
        command_digest: Some(message_digest(f, &command)),
        input_root_digest: Some(message_digest(f, &root)),
        timeout: Some(PbDuration {
            seconds: 60,
            nanos: 0,
        }),
        do_not_cache: false,
        salt: br#"{"schema":2,"outputs":{"bin":"out/app"},"secrets":["TOKEN"]}"#.to_vec(),
        platform: Some(reapi::Platform {
            properties: properties
                .into_iter()
                .map(|(name, value)| reapi::platform::Property {
                    name: name.into(),
                    value,
                })
                .collect(),
        }),
    }
}

#[test]
fn key_equals_the_digest_of_the_reapi_action() {
    let project = TempDir::new().unwrap();
    let root = project.path();
    write(root, "src/main.rs", b"fn main() {}\n");
    write(root, "src/bin/run.sh", b"#!/bin/sh\necho run\n");
    fs::set_permissions(
        root.join("src/bin/run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("run.sh", root.join("src/bin/sh")).unwrap();
    write(root, "README.md", b"not an input\n");
    let mut t = Task::named("build");
    t.command = Some("make build".into());
    t.inputs = vec!["src/**".into()];
    t.env.insert("MODE".into(), "release".into());
    t.secrets.push("TOKEN".into());
    t.outputs.insert("bin".into(), "out/app".into());
    t.timeout = Some(60);
    t.requires.push("gpu".into());
    let mut ctx = KeyContext::default();
    ctx.env.insert("MATRIX_OS".into(), "linux".into());
    ctx.env.insert("TOKEN".into(), "s3cr3t-value".into());

    let cache_dir = TempDir::new().unwrap();
    for f in [DigestFunction::Blake3, DigestFunction::Sha256] {
        let cache = TaskCache::with_index(
            Store::open(cache_dir.path()).unwrap(),
            root,
            StatIndex::in_memory_with(f),
        );
        let Keyed::Cacheable { key, action, .. } = cache.key(&t, &ctx).unwrap() else {
            panic!("cacheable");
        };
        let expected = expected_action(f);
        assert_eq!(action.action, expected, "{f}");
        let expected_digest = message_digest(f, &expected);
        assert_eq!(action.action_digest, expected_digest, "{f}");
        assert_eq!(
            key.to_hex(),
            expected_digest.hash,
            "{f}: the key is the Action digest"
        );
        // No secret value in any message.
        for (_, bytes) in action.blobs() {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("s3cr3t-value"), "{f}: {text}");
        }
    }
}

/// Keys of a small pipeline (plain, workdir, dependency output through `task_inputs`) in the
/// checkout at `root`, with a store of its own.
fn pipeline_keys(root: &Path) -> Vec<String> {
    let cache_dir = TempDir::new().unwrap();
    let cache = TaskCache::open(Store::open(cache_dir.path()).unwrap(), root).unwrap();
    let mut gen_task = Task::named("gen");
    gen_task.command = Some("cat src/a.txt > gen/out.txt".into());
    gen_task.inputs = vec!["src/**".into()];
    gen_task.outputs.insert("out".into(), "gen/out.txt".into());
    let mut sub = Task::named("sub");
    sub.command = Some("ls".into());
    sub.workdir = Some("lib".into());
    sub.inputs = vec!["lib/**/*.txt".into()];
    let mut user = Task::named("use");
    user.command = Some("cat input/x.txt".into());
    user.inputs = vec!["tests/**".into()];
    user.task_inputs.push(TaskInput {
        from_task: "gen".into(),
        output: "out".into(),
        dest: "input/x.txt".into(),
    });

    let ctx = KeyContext::default();
    let gen_keyed = cache.key(&gen_task, &ctx).unwrap();
    let sub_keyed = cache.key(&sub, &ctx).unwrap();
    // "Run" gen, then record what it produced.
    cache.invalidate_workspace();
    fs::create_dir_all(root.join("gen")).unwrap();
    fs::copy(root.join("src/a.txt"), root.join("gen/out.txt")).unwrap();
    let produced = cache
        .store(&gen_keyed, 0, root, &gen_task.outputs, None)
        .unwrap();
    cache.invalidate_workspace();
    let mut ctx = KeyContext::default();
    ctx.dependency_outputs.insert("gen".into(), produced);
    let use_keyed = cache.key(&user, &ctx).unwrap();
    let Keyed::Cacheable {
        manifest, action, ..
    } = &use_keyed
    else {
        panic!("use is cacheable");
    };
    assert!(manifest.dependencies.contains_key("gen/out"));
    // The dependency output is a file of the input tree, where gen left it and at its
    // destination (the root Directory lists gen/, input/ and tests/).
    let root_dir =
        reapi::Directory::decode(&action.input_root.directories.last().unwrap().1[..]).unwrap();
    let names: Vec<&str> = root_dir
        .directories
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["gen", "input", "tests"]);
    [gen_keyed, sub_keyed, use_keyed]
        .iter()
        .map(|k| k.key().expect("cacheable").to_hex())
        .collect()
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn two_checkouts_in_different_directories_compute_the_same_keys() {
    let origin = TempDir::new().unwrap();
    let o = origin.path();
    write(o, "src/a.txt", b"alpha\n");
    write(o, "src/deep/b.txt", b"beta\n");
    write(o, "lib/x.txt", b"x\n");
    write(o, "lib/y.rs", b"not matched\n");
    write(o, "tests/t.txt", b"test\n");
    write(o, ".gitignore", b"gen/\n");
    git(o, &["init", "-q"]);
    git(o, &["add", "-A"]);
    git(o, &["commit", "-qm", "init"]);

    // Two real checkouts, at different depths and names.
    let first = TempDir::new().unwrap();
    let second = TempDir::new().unwrap();
    let a = first.path().join("checkout");
    let b: PathBuf = second.path().join("some/where/else");
    fs::create_dir_all(b.parent().unwrap()).unwrap();
    for dest in [&a, &b] {
        git(
            first.path(),
            &["clone", "-q", o.to_str().unwrap(), dest.to_str().unwrap()],
        );
    }
    // Different inodes and times in each: only content and paths may matter.
    std::thread::sleep(Duration::from_millis(30));
    let keys_a = pipeline_keys(&a);
    let keys_b = pipeline_keys(&b);
    assert_eq!(keys_a, keys_b);
    assert_eq!(keys_a.len(), 3);
    // ...and a content change in one checkout is seen.
    fs::write(b.join("lib/x.txt"), b"changed\n").unwrap();
    let keys_b2 = pipeline_keys(&b);
    assert_eq!(keys_b2[0], keys_a[0]);
    assert_ne!(keys_b2[1], keys_a[1]);
}

#[test]
fn a_cached_run_walks_the_workspace_once_and_a_run_task_makes_keys_look_again() {
    let project = TempDir::new().unwrap();
    let root = project.path();
    for d in 0..10 {
        for f in 0..5 {
            write(
                root,
                &format!("src/m{d}/f{f}.txt"),
                format!("{d}/{f}").as_bytes(),
            );
        }
    }
    let tasks: Vec<Task> = (0..30)
        .map(|i| {
            let mut t = Task::named(format!("t{i}"));
            t.command = Some(format!("check {i}"));
            t.inputs = vec![format!("src/m{}/**", i % 10)];
            t
        })
        .collect();
    let cache_dir = TempDir::new().unwrap();
    let open = || TaskCache::open(Store::open(cache_dir.path()).unwrap(), root).unwrap();
    let cache = open();
    for t in &tasks {
        let keyed = cache.key(t, &KeyContext::default()).unwrap();
        assert_eq!(
            keyed.clone().key().map(|_| ()),
            Some(()),
            "{} cacheable",
            t.name
        );
        if let Keyed::Cacheable { manifest, .. } = &keyed {
            assert_eq!(manifest.inputs.len(), 5, "{}", t.name);
        }
        cache
            .store(&keyed, 0, root, &BTreeMap::new(), None)
            .unwrap();
    }
    cache.save_index().unwrap();
    assert_eq!(cache.walks(), (1, 0));

    // A fully cached rerun: one walk, every task a hit, nothing rehashed.
    let cache = open();
    for t in &tasks {
        let keyed = cache.key(t, &KeyContext::default()).unwrap();
        assert!(cache.lookup(&keyed).unwrap().is_some(), "{} hits", t.name);
    }
    assert_eq!(cache.walks(), (1, 0));
    assert_eq!(cache.index().hashed_files(), 0);

    // A task runs and changes an input of t3: keys asked afterwards read the files again.
    let before = cache.key(&tasks[3], &KeyContext::default()).unwrap();
    cache.invalidate_workspace();
    write(root, "src/m3/f0.txt", b"changed by a task");
    write(root, "src/m3/new.txt", b"created by a task");
    let after = cache.key(&tasks[3], &KeyContext::default()).unwrap();
    assert_eq!(cache.walks(), (1, 1), "one walk of t3's globs only");
    assert_ne!(before.key(), after.key());
    let Keyed::Cacheable { manifest, .. } = &after else {
        panic!()
    };
    assert!(manifest.inputs.contains_key("src/m3/new.txt"));
}

/// `build` copies `src/a.txt` into its output `out/`; `check` reads `out/**`.
fn build_and_check() -> (Task, Task) {
    let mut build = Task::named("build");
    build.command = Some("cp src/a.txt out/a.txt".into());
    build.inputs = vec!["src/**".into()];
    build.outputs.insert("out".into(), "out".into());
    let mut check = Task::named("check");
    check.command = Some("cat out/a.txt".into());
    check.inputs = vec!["out/**".into()];
    (build, check)
}

#[test]
fn restored_outputs_are_seen_by_later_keys_without_a_new_walk() {
    let project = TempDir::new().unwrap();
    let root = project.path();
    write(root, "src/a.txt", b"a\n");
    let (build, check) = build_and_check();
    let cache_dir = TempDir::new().unwrap();
    let open = || TaskCache::open(Store::open(cache_dir.path()).unwrap(), root).unwrap();

    let cache = open();
    let keyed = cache.key(&build, &KeyContext::default()).unwrap();
    write(root, "out/a.txt", b"built\n");
    cache.store(&keyed, 0, root, &build.outputs, None).unwrap();
    fs::remove_dir_all(root.join("out")).unwrap();

    // Next run: build hits and restores out/; check, keyed after, sees out/a.txt.
    let cache = open();
    let keyed = cache.key(&build, &KeyContext::default()).unwrap();
    let hit = cache.lookup(&keyed).unwrap().expect("a hit");
    cache.restore(&hit, root).unwrap();
    let Keyed::Cacheable { manifest, .. } = cache.key(&check, &KeyContext::default()).unwrap()
    else {
        panic!("check is cacheable")
    };
    assert_eq!(manifest.inputs.keys().collect::<Vec<_>>(), ["out/a.txt"]);
    assert_eq!(cache.walks(), (1, 0));
}

#[test]
fn a_key_asked_before_a_restore_does_not_answer_for_keys_asked_after_it() {
    let project = TempDir::new().unwrap();
    let root = project.path();
    write(root, "src/a.txt", b"a\n");
    write(root, "out/old.txt", b"old\n");
    let (build, check) = build_and_check();
    let cache_dir = TempDir::new().unwrap();
    let open = || TaskCache::open(Store::open(cache_dir.path()).unwrap(), root).unwrap();

    let cache = open();
    let keyed = cache.key(&build, &KeyContext::default()).unwrap();
    fs::remove_dir_all(root.join("out")).unwrap();
    write(root, "out/a.txt", b"built\n");
    cache.store(&keyed, 0, root, &build.outputs, None).unwrap();
    fs::remove_dir_all(root.join("out")).unwrap();
    write(root, "out/old.txt", b"old\n");

    // Next run: check is keyed on out/old.txt, then build restores out/ in its place.
    let cache = open();
    let Keyed::Cacheable { manifest, .. } = cache.key(&check, &KeyContext::default()).unwrap()
    else {
        panic!("check is cacheable")
    };
    assert_eq!(manifest.inputs.keys().collect::<Vec<_>>(), ["out/old.txt"]);
    let keyed = cache.key(&build, &KeyContext::default()).unwrap();
    let hit = cache.lookup(&keyed).unwrap().expect("a hit");
    cache.restore(&hit, root).unwrap();
    let Keyed::Cacheable { manifest, .. } = cache.key(&check, &KeyContext::default()).unwrap()
    else {
        panic!("check is cacheable")
    };
    assert_eq!(manifest.inputs.keys().collect::<Vec<_>>(), ["out/a.txt"]);
}

#[test]
fn tasks_with_the_same_globs_get_the_keys_they_get_alone() {
    let project = TempDir::new().unwrap();
    let root = project.path();
    write(root, "src/a.txt", b"a\n");
    write(root, "lib/b.txt", b"b\n");
    let mut gen_task = Task::named("gen");
    gen_task.command = Some("cp src/a.txt gen/out.txt".into());
    gen_task.inputs = vec!["src/**".into()];
    gen_task.outputs.insert("out".into(), "gen/out.txt".into());
    let mut plain = Task::named("plain");
    plain.command = Some("ls".into());
    plain.inputs = vec!["src/**".into(), "lib/*.txt".into()];
    let mut sub = plain.clone();
    sub.name = "sub".into();
    sub.workdir = Some("lib".into());
    let mut user = plain.clone();
    user.name = "use".into();
    user.task_inputs.push(TaskInput {
        from_task: "gen".into(),
        output: "out".into(),
        dest: "input/x.txt".into(),
    });

    let cache_dir = TempDir::new().unwrap();
    let open = || TaskCache::open(Store::open(cache_dir.path()).unwrap(), root).unwrap();
    let cache = open();
    let gen_keyed = cache.key(&gen_task, &KeyContext::default()).unwrap();
    fs::create_dir_all(root.join("gen")).unwrap();
    fs::copy(root.join("src/a.txt"), root.join("gen/out.txt")).unwrap();
    let produced = cache
        .store(&gen_keyed, 0, root, &gen_task.outputs, None)
        .unwrap();
    let mut with_dep = KeyContext::default();
    with_dep.dependency_outputs.insert("gen".into(), produced);
    let cases = [
        (&plain, KeyContext::default()),
        (&sub, KeyContext::default()),
        (&user, with_dep.clone()),
        (&plain, with_dep),
    ];
    let key = |cache: &TaskCache, t: &Task, ctx: &KeyContext| match cache.key(t, ctx).unwrap() {
        Keyed::Cacheable { key, manifest, .. } => (key, manifest),
        Keyed::NotCacheable { reason } => panic!("{}: {reason}", t.name),
    };
    // Each alone, in a fresh cache (no other task keyed before it in the run).
    let alone: Vec<_> = cases.iter().map(|(t, c)| key(&open(), t, c)).collect();
    // All in one run, in both orders.
    for order in [[0, 1, 2, 3], [3, 2, 1, 0]] {
        let cache = open();
        for i in order {
            let (t, c) = &cases[i];
            assert_eq!(key(&cache, t, c), alone[i], "{} (case {i})", t.name);
        }
        assert_eq!(cache.walks(), (1, 0));
    }
    let distinct: std::collections::BTreeSet<_> = alone.iter().map(|(k, _)| *k).collect();
    assert_eq!(distinct.len(), cases.len());
}

/// Every file under `dir` with its mtime (ns), ctime (ns) and size.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (i64, i64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                let ns = |s: i64, n: i64| s * 1_000_000_000 + n;
                out.insert(
                    e.path(),
                    (
                        ns(m.mtime(), m.mtime_nsec()),
                        ns(m.ctime(), m.ctime_nsec()),
                        m.len(),
                    ),
                );
            }
        }
    }
    out
}

#[test]
fn a_cache_hit_writes_nothing() {
    let project = TempDir::new().unwrap();
    let root = project.path();
    write(root, "src/a.txt", b"a\n");
    let mut t = Task::named("build");
    t.command = Some("true".into());
    t.inputs = vec!["src/**".into()];
    let cache_dir = TempDir::new().unwrap();
    let open = || TaskCache::open(Store::open(cache_dir.path()).unwrap(), root).unwrap();
    let cache = open();
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    cache
        .store(&keyed, 0, root, &BTreeMap::new(), None)
        .unwrap();
    cache.save_index().unwrap();
    drop(cache);

    let before = (listing(cache_dir.path()), listing(&root.join(".sykli")));
    let cache = open();
    let keyed = cache.key(&t, &KeyContext::default()).unwrap();
    assert!(cache.lookup(&keyed).unwrap().is_some());
    cache.save_index().unwrap();
    drop(cache);
    let after = (listing(cache_dir.path()), listing(&root.join(".sykli")));
    assert_eq!(before, after, "a hit rewrote or touched a file");
}
