//! `sykli explain`: what would run, why, and where, without running anything.

use std::process::Command;

use serde_json::{Value, json};

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let graph = json!({"version": "2", "tasks": [
        {"name": "lint", "command": "touch ran-lint"},
        {"name": "test", "command": "touch ran-test", "depends_on": ["lint"]},
        {"name": "release", "command": "touch ran-release", "when": "tag == 'v*-never'",
         "depends_on": ["test"]},
        {"name": "publish", "command": "touch ran-publish", "depends_on": ["release"]},
        {"name": "image", "command": "make image", "container": "rust:1.95"},
    ]});
    std::fs::write(dir.path().join("sykli.json"), graph.to_string()).unwrap();
    dir
}

fn explain(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sykli"))
        .arg("explain")
        .args(args)
        .current_dir(dir)
        .env_remove("CI")
        .output()
        .unwrap();
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), s)
}

fn decisions(v: &Value) -> Vec<(String, String)> {
    v["data"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn explains_conditions_blocking_and_placement_without_running() {
    let dir = project();
    let (code, text) = explain(dir.path(), &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("lint: runs: no condition"), "{text}");
    assert!(
        text.contains("release: skipped: condition `tag == 'v*-never'` is false (tag"),
        "{text}"
    );
    assert!(
        text.contains("publish: blocked: dependency `release` would be skipped"),
        "{text}"
    );
    assert!(text.contains("where: container rust:1.95"), "{text}");
    assert!(text.contains("3 of 5 tasks would run"), "{text}");
    assert!(
        !dir.path().join("ran-lint").exists(),
        "explain runs nothing"
    );

    let (code, text) = explain(dir.path(), &["--json"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(v["ok"], true);
    let d = decisions(&v);
    let expect = [
        ("lint", "run"),
        ("test", "run"),
        ("release", "skip"),
        ("publish", "blocked"),
        ("image", "run"),
    ];
    assert_eq!(
        d,
        expect
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(v["data"]["tasks"][2]["condition"]["value"], false);
    assert!(v["data"]["context"].get("branch").is_some());
}

#[test]
fn a_task_or_filter_limits_the_plan() {
    let dir = project();
    let (code, text) = explain(dir.path(), &["test", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let d = decisions(&v);
    assert_eq!(d[0].1, "run");
    assert_eq!(d[1].1, "run");
    assert!(d[2..].iter().all(|(_, s)| s == "not_selected"), "{d:?}");

    let (code, text) = explain(dir.path(), &["nope"]);
    assert_eq!(code, Some(2));
    assert!(
        text.contains("unknown task `nope`") && text.contains("lint"),
        "{text}"
    );
}
