//! `sykli plan --from REF`, `sykli run --affected` and `sykli explain --affected` in a real
//! git repository: exact affected task sets for committed, staged, unstaged, untracked,
//! ignored, renamed and deleted files, and the errors for a bad ref and no repository.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

/// Runs git in `dir`, panicking with its output when it fails.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", common::text(&out));
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A committed repository: `lint` (no inputs), `api`, `web`, `docs`, and `e2e` after `api`
/// and `web`. Every task writes `out/<name>` (ignored) when it runs.
fn repo() -> tempfile::TempDir {
    let task = |name: &str, inputs: Value, deps: Value| {
        json!({"name": name, "command": format!("mkdir -p out && touch out/{name}"),
               "inputs": inputs, "depends_on": deps})
    };
    let dir = common::project(json!({"version": "1", "tasks": [
        task("lint", json!([]), json!([])),
        task("api", json!(["api/**/*.rs", "Cargo.toml"]), json!([])),
        task("web", json!(["web"]), json!([])),
        task("docs", json!(["docs/*.md"]), json!([])),
        task("e2e", json!(["e2e/*.ts"]), json!(["api", "web"])),
    ]}));
    let d = dir.path();
    write(
        d,
        ".gitignore",
        "out/\n.sykli/\n.test-cache/\ndocs/*.tmp.md\n",
    );
    write(d, "api/src/lib.rs", "// api\n");
    write(d, "Cargo.toml", "[package]\n");
    write(d, "web/index.html", "<html>\n");
    write(d, "docs/a.md", "# a\n");
    write(d, "e2e/smoke.ts", "// e2e\n");
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "initial"]);
    dir
}

/// `plan --from REF --json` in `dir`: (changed files, affected task -> reason).
fn plan(dir: &Path, reference: &str) -> (Vec<String>, Vec<(String, String)>) {
    let out = common::sykli(dir, &["plan", "--from", reference, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let changed = v["data"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    let affected = v["data"]["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (changed, affected)
}

fn names(affected: &[(String, String)]) -> Vec<&str> {
    affected.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn plan_from_lists_exactly_the_affected_tasks_with_their_reasons() {
    let dir = repo();
    let d = dir.path();

    // Nothing changed: only the task without inputs.
    let (changed, affected) = plan(d, "HEAD");
    assert!(changed.is_empty(), "{changed:?}");
    assert_eq!(
        affected,
        vec![("lint".to_owned(), "no inputs declared".to_owned())]
    );

    // An unstaged edit: api and its dependent.
    write(d, "api/src/lib.rs", "// api v2\n");
    let (changed, affected) = plan(d, "HEAD");
    assert_eq!(changed, vec!["api/src/lib.rs"]);
    assert_eq!(
        affected,
        vec![
            ("lint".to_owned(), "no inputs declared".to_owned()),
            (
                "api".to_owned(),
                "api/src/lib.rs matches input `api/**/*.rs`".to_owned()
            ),
            ("e2e".to_owned(), "depends on `api`".to_owned()),
        ]
    );
    git(d, &["checkout", "-q", "--", "api"]);

    // A staged new file under a directory input (`web` means everything under it).
    write(d, "web/app/main.js", "1\n");
    git(d, &["add", "web/app/main.js"]);
    let (_, affected) = plan(d, "HEAD");
    assert_eq!(names(&affected), ["lint", "web", "e2e"]);
    assert_eq!(
        affected[1].1, "web/app/main.js matches input `web`",
        "{affected:?}"
    );
    git(d, &["rm", "-q", "--cached", "web/app/main.js"]);
    std::fs::remove_file(d.join("web/app/main.js")).unwrap();

    // Untracked files count, ignored ones do not; `*` does not cross `/`.
    write(d, "docs/scratch.tmp.md", "ignored\n");
    write(d, "docs/deep/b.md", "not docs/*.md\n");
    let (changed, affected) = plan(d, "HEAD");
    assert_eq!(changed, vec!["docs/deep/b.md"]);
    assert_eq!(names(&affected), ["lint"]);
    write(d, "docs/new.md", "# new\n");
    let (_, affected) = plan(d, "HEAD");
    assert_eq!(names(&affected), ["lint", "docs"]);
    std::fs::remove_dir_all(d.join("docs/deep")).unwrap();
    std::fs::remove_file(d.join("docs/new.md")).unwrap();

    // A rename out of `web/` affects web (its old path is gone) and nothing else.
    git(d, &["mv", "web/index.html", "index.html"]);
    let (changed, affected) = plan(d, "HEAD");
    assert_eq!(changed, vec!["index.html", "web/index.html"]);
    assert_eq!(names(&affected), ["lint", "web", "e2e"]);
    git(d, &["reset", "-q", "--hard"]);
    std::fs::remove_file(d.join("index.html")).ok();

    // A deleted file.
    std::fs::remove_file(d.join("docs/a.md")).unwrap();
    let (changed, affected) = plan(d, "HEAD");
    assert_eq!(changed, vec!["docs/a.md"]);
    assert_eq!(names(&affected), ["lint", "docs"]);
    git(d, &["checkout", "-q", "--", "docs"]);

    // Committed changes count against an older ref, not against HEAD.
    write(d, "Cargo.toml", "[package]\nname = \"x\"\n");
    git(d, &["commit", "-q", "-am", "bump"]);
    let (_, affected) = plan(d, "HEAD~1");
    assert_eq!(names(&affected), ["lint", "api", "e2e"]);
    assert_eq!(affected[1].1, "Cargo.toml matches input `Cargo.toml`");
    let (_, affected) = plan(d, "main~1");
    assert_eq!(names(&affected), ["lint", "api", "e2e"]);
    let (_, affected) = plan(d, "HEAD");
    assert_eq!(names(&affected), ["lint"]);
}

#[test]
fn run_affected_runs_the_affected_tasks_and_what_they_depend_on() {
    let dir = repo();
    let d = dir.path();
    write(d, "api/src/lib.rs", "// api v2\n");
    let out = common::sykli(d, &["run", "--affected"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let ran: BTreeSet<String> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    // e2e is affected through api; web runs because e2e depends on it; docs does not run.
    assert_eq!(ran, ["api", "e2e", "lint", "web"].map(String::from).into());

    // explain shows the same decision, with the reasons.
    let out = common::sykli(d, &["explain", "--affected", "HEAD", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let task = |name: &str| -> Value {
        v["data"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(task("api")["decision"], "run");
    assert_eq!(
        task("api")["affected"],
        "api/src/lib.rs matches input `api/**/*.rs`"
    );
    assert_eq!(task("web")["decision"], "run");
    assert!(task("web").get("affected").is_none());
    assert_eq!(task("docs")["decision"], "not_selected");
    assert_eq!(
        task("docs")["reason"],
        "not affected by the change, nor needed by an affected task"
    );
}

#[test]
fn a_bad_ref_and_no_repository_are_clear_errors() {
    let dir = repo();
    let out = common::sykli(dir.path(), &["plan", "--from", "no-such-branch", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "unknown_ref");
    assert_eq!(
        v["error"]["message"],
        "unknown git ref `no-such-branch`: it names no commit in this repository"
    );
    let out = common::sykli(dir.path(), &["run", "--affected", "nope~9"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(common::text(&out).contains("unknown git ref `nope~9`"));
    assert!(!dir.path().join("out").exists(), "nothing ran");

    let bare =
        common::project(json!({"version": "1", "tasks": [{"name": "a", "command": "true"}]}));
    let out = common::sykli(bare.path(), &["plan", "--from", "HEAD"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("is not inside a git repository"),
        "{}",
        common::text(&out)
    );
}
