//! `sykli cache stats | clean | path` against a real store.

use std::process::Command;

use sykli_runtime::cache::{Store, TaskCache};
use sykli_runtime::graph::Task;

fn sykli(cache_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .args(args)
        .env("SYKLI_CACHE_DIR", cache_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn stats_clean_and_path() {
    let cache_dir = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("in.txt"), "input").unwrap();
    std::fs::write(project.path().join("out.bin"), vec![7u8; 5000]).unwrap();
    let cache = TaskCache::open(Store::open(cache_dir.path()).unwrap(), project.path()).unwrap();
    let mut t = Task::named("build");
    t.command = Some("make".into());
    t.inputs = vec!["in.txt".into()];
    t.outputs.insert("bin".into(), "out.bin".into());
    let keyed = cache.key(&t, &Default::default()).unwrap();
    assert!(keyed.key().is_some(), "cacheable");
    cache
        .store(&keyed, 0, project.path(), &t.outputs, None)
        .unwrap();

    let (ok, out, _) = sykli(cache_dir.path(), &["cache", "path"]);
    assert!(ok);
    assert_eq!(out.trim(), cache_dir.path().to_str().unwrap());

    let (ok, out, _) = sykli(cache_dir.path(), &["cache", "stats", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true, "one envelope: {out}");
    let v = &v["data"];
    assert_eq!(v["entries"], 1);
    // The output, and the entry's REAPI Action, Command and root Directory.
    assert_eq!(v["blobs"], 4);
    assert!(v["total_bytes"].as_u64().unwrap() > 5000);

    let (ok, out, _) = sykli(cache_dir.path(), &["cache", "stats"]);
    assert!(ok && out.contains("entries:  1"), "{out}");

    // Nothing is a week old yet.
    let (ok, out, _) = sykli(cache_dir.path(), &["cache", "clean", "--older-than", "7d"]);
    assert!(ok);
    assert_eq!(out.trim(), "removed 0 entries and 0 blobs, freed 0 B");
    let (ok, out, _) = sykli(cache_dir.path(), &["cache", "clean"]);
    assert!(ok);
    assert!(out.starts_with("removed 1 entries and 4 blobs"), "{out}");

    let (ok, _, err) = sykli(
        cache_dir.path(),
        &["cache", "clean", "--older-than", "soon"],
    );
    assert!(!ok);
    assert!(err.contains("invalid duration \"soon\""), "{err}");
}

#[test]
fn sykli_run_hits_the_cache_the_second_time_unless_no_cache() {
    let cache_dir = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    std::fs::create_dir_all(p.join("src")).unwrap();
    std::fs::write(p.join("src/a.txt"), "hi\n").unwrap();
    std::fs::write(
        p.join("sykli.json"),
        r#"{"version": "1", "tasks": [{"name": "build",
            "command": "echo ran >> runs.log; cat src/a.txt > out.txt",
            "inputs": ["src/**"], "outputs": {"bin": "out.txt"}}]}"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sykli"))
            .arg("run")
            .args(extra)
            .current_dir(p)
            .env("SYKLI_CACHE_DIR", cache_dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap()
    };
    let first = run(&[]);
    assert!(!first.contains("cached"), "{first}");
    std::fs::remove_file(p.join("out.txt")).unwrap();
    let second = run(&[]);
    assert!(second.contains("1 passed (1 cached)"), "{second}");
    assert_eq!(std::fs::read_to_string(p.join("out.txt")).unwrap(), "hi\n");
    let third = run(&["--no-cache"]);
    assert!(!third.contains("cached"), "{third}");
    assert_eq!(
        std::fs::read_to_string(p.join("runs.log")).unwrap(),
        "ran\nran\n"
    );
}

/// `sykli explain` and `sykli run --verbose` say why a task would miss or did miss (the input
/// that changed), and explain predicts the hits of an unchanged rerun with the run's keys.
#[test]
fn explain_and_verbose_runs_say_why_a_task_misses() {
    let cache_dir = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    std::fs::create_dir(p.join("src")).unwrap();
    std::fs::write(p.join("src/a.txt"), "one\n").unwrap();
    std::fs::write(
        p.join("sykli.json"),
        r#"{"version": "1", "tasks": [
          {"name": "build", "command": "cat src/a.txt > out.txt", "inputs": ["src/**"], "outputs": {"o": "out.txt"}},
          {"name": "test", "command": "cat out.txt", "depends_on": ["build"], "inputs": ["src/a.txt"]}
        ]}"#,
    )
    .unwrap();
    let path = p.to_str().unwrap();
    let cache = |line: &str| line.trim_start().starts_with("cache:");

    let (ok, out, _) = sykli(cache_dir.path(), &["explain", "--path", path]);
    assert!(ok);
    let facts: Vec<&str> = out.lines().filter(|l| cache(l)).collect();
    assert_eq!(facts.len(), 2, "{out}");
    assert!(facts[0].contains("no previous entry"), "{out}");
    assert!(facts[1].contains("decided after `build` runs"), "{out}");

    let (ok, _, _) = sykli(cache_dir.path(), &["run", path]);
    assert!(ok);
    let (ok, out, _) = sykli(cache_dir.path(), &["explain", "--path", path]);
    assert!(ok);
    let facts: Vec<&str> = out.lines().filter(|l| cache(l)).collect();
    assert!(facts.iter().all(|f| f.contains("cache: hit ")), "{out}");

    std::fs::write(p.join("src/a.txt"), "two\n").unwrap();
    let (ok, out, _) = sykli(cache_dir.path(), &["explain", "--path", path]);
    assert!(ok);
    assert!(out.contains("input modified: src/a.txt"), "{out}");
    let (ok, out, err) = sykli(cache_dir.path(), &["run", "--verbose", path]);
    assert!(ok, "{err}");
    let text = format!("{out}{err}");
    assert!(
        text.lines().any(|l| l.contains("miss")
            && l.contains("build")
            && l.contains("input modified: src/a.txt")),
        "{text}"
    );
}
