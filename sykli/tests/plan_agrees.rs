//! `sykli explain` and `sykli run` read one plan: over a corpus of graphs (the examples under
//! `sykli-runtime/tests/graphs/valid`, made runnable, and generated ones), the decision and
//! executor explain prints for each task is what the run's record says happened.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{sykli, text};
use serde_json::{Value, json};

/// Makes a graph runnable here without changing what the plan decides: commands create
/// their declared outputs and succeed, images are the local busybox, gates wait for a file
/// that exists; secrets, services and success criteria (runtime matters, not placement)
/// are dropped.
fn runnable(mut graph: Value, root: &Path) -> Value {
    std::fs::write(root.join("approved.txt"), "yes").unwrap();
    for t in graph["tasks"].as_array_mut().unwrap() {
        let t = t.as_object_mut().unwrap();
        for k in ["secrets", "secret_refs", "services", "success_criteria"] {
            t.remove(k);
        }
        if t.contains_key("gate") {
            t.insert(
                "gate".into(),
                json!({"strategy": "file", "file_path": "approved.txt"}),
            );
        }
        if t.contains_key("container") {
            t.insert("container".into(), json!("sykli-test/busybox:latest"));
        }
        if t.contains_key("command") {
            let mut steps = vec!["true".to_owned()];
            if let Some(outs) = t.get("outputs") {
                let paths: Vec<String> = match outs {
                    Value::Object(m) => m.values().map(|v| v.as_str().unwrap().into()).collect(),
                    Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().into()).collect(),
                    _ => Vec::new(),
                };
                for p in paths {
                    steps.push(format!("mkdir -p \"$(dirname '{p}')\" && touch '{p}'"));
                }
            }
            t.insert("command".into(), json!(steps.join(" && ")));
        }
        if !t.contains_key("container")
            && let Some(w) = t.get("workdir").and_then(Value::as_str)
            && !w.starts_with('/')
        {
            std::fs::create_dir_all(root.join(w)).unwrap();
        }
    }
    graph
}

/// Explains and runs `graph` in a fresh project (with `--filter` names), and checks every
/// task's run status and executor against the plan explain printed.
fn explain_equals_run(label: &str, graph: &Value, filter: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let graph = runnable(graph.clone(), dir.path());
    std::fs::write(
        dir.path().join("sykli.json"),
        serde_json::to_string_pretty(&graph).unwrap(),
    )
    .unwrap();
    let mut flags: Vec<&str> = Vec::new();
    for f in filter {
        flags.extend(["--filter", f]);
    }
    let mut args = vec!["explain", "--json"];
    args.extend(&flags);
    let out = sykli(dir.path(), &args);
    let explained: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{label}: explain printed no JSON ({e}): {}", text(&out)));
    let explained = explained["data"]["tasks"].as_array().unwrap().clone();

    let mut args = vec!["run", "--keep-going", "--jobs", "4"];
    args.extend(&flags);
    let out = sykli(dir.path(), &args);
    let runs: Vec<PathBuf> = std::fs::read_dir(dir.path().join(".sykli/runs"))
        .unwrap_or_else(|e| panic!("{label}: no run record ({e}): {}", text(&out)))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{label}");
    let report = sykli(dir.path(), &["report", "--json"]);
    let record: Value = serde_json::from_slice(&report.stdout).unwrap();
    let record = &record["data"];
    let ran: HashMap<&str, &Value> = record["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t))
        .collect();

    for e in &explained {
        let name = e["name"].as_str().unwrap();
        let decision = e["decision"].as_str().unwrap();
        let ctx = format!(
            "{label}: task {name}: explain said {e}\nrun output:\n{}",
            text(&out)
        );
        if decision == "not_selected" {
            assert!(!ran.contains_key(name), "{ctx}\nbut it is in the run");
            continue;
        }
        let r = ran
            .get(name)
            .unwrap_or_else(|| panic!("{ctx}\nbut it is not in the run"));
        let status = r["status"].as_str().unwrap_or("none");
        let ctx = format!("{ctx}\nthe run recorded {r}");
        match decision {
            "run" => {
                assert!(matches!(status, "passed" | "cached"), "{ctx}");
                assert_eq!(r["executor"], e["executor"], "{ctx}");
            }
            "skip" => assert_eq!(status, "skipped", "{ctx}"),
            "blocked" => assert_eq!(status, "blocked", "{ctx}"),
            "error" => {
                assert_eq!(status, "errored", "{ctx}");
                assert_eq!(r["attempts"], 0, "{ctx}");
                assert_eq!(r["message"], e["reason"], "{ctx}");
            }
            other => panic!("{ctx}\nunknown decision {other}"),
        }
    }
    assert_eq!(
        explained.len() - filtered_out(&explained),
        ran.len(),
        "{label}"
    );
    explained
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["decision"].as_str().unwrap(),
                e["executor"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

fn filtered_out(explained: &[Value]) -> usize {
    explained
        .iter()
        .filter(|e| e["decision"] == "not_selected")
        .count()
}

#[test]
fn explain_equals_run_over_the_example_graphs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sykli-runtime/tests/graphs/valid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".canonical.json"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "{files:?}");
    for f in files {
        let graph: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        explain_equals_run(&f.file_name().unwrap().to_string_lossy(), &graph, &[]);
    }
}

/// A small deterministic generator (no seed file, same graphs every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn generated(seed: u64, n: usize) -> Value {
    let mut rng = Lcg(seed);
    let mut containers = 0;
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut t = json!({"name": format!("t{i}"), "command": "true"});
        let deps: Vec<String> = (0..rng.next(3).min(i as u64))
            .map(|_| format!("t{}", rng.next(i as u64)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !deps.is_empty() {
            t["depends_on"] = json!(deps);
        }
        let conds = ["branch == 'main'", "!ci", "ci", "tag", "!tag && !ci"];
        if rng.next(6) == 0 {
            t["when"] = json!(conds[rng.next(conds.len() as u64) as usize]);
        }
        match rng.next(48) {
            0 | 1 => t["remote"] = json!(true),
            2 | 3 => t["prefer"] = json!("remote"),
            4 => t["prefer"] = json!("local"),
            5 | 6 => t["requires"] = json!(["linux"]),
            7 => t["requires"] = json!(["gpu"]),
            8 => t["target"] = json!("process"),
            9 => t["target"] = json!("docker"),
            10 => t["target"] = json!("nowhere"),
            11 => {
                t.as_object_mut().unwrap().remove("command");
                t["native"] = json!("not_here");
            }
            12 => t["native"] = json!("runs_its_command"),
            13 => {
                t.as_object_mut().unwrap().remove("command");
                t["gate"] = json!({"strategy": "file", "file_path": "approved.txt"});
            }
            14 if containers < 2 => {
                containers += 1;
                t["container"] = json!("sykli-test/busybox:latest");
                if rng.next(2) == 0 {
                    t["target"] = json!("docker");
                }
            }
            15 => {
                t.as_object_mut().unwrap().remove("command");
                t["kind"] = json!("review");
            }
            _ => {}
        }
        tasks.push(t);
    }
    json!({"version": "2", "tasks": tasks})
}

#[test]
fn explain_equals_run_over_generated_graphs() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..=8u64 {
        let graph = generated(seed, 30);
        let filter = format!("t{}", 12 + seed);
        let f: &[&str] = if seed % 2 == 0 { &[&filter] } else { &[] };
        seen.extend(explain_equals_run(
            &format!("generated seed {seed}"),
            &graph,
            f,
        ));
    }
    // The corpus exercises every decision and every executor.
    for want in [
        "run process",
        "run docker",
        "run gate",
        "skip process",
        "blocked process",
        "error -",
        "not_selected -",
    ] {
        assert!(seen.contains(want), "no `{want}` in {seen:?}");
    }
}

/// Explain said `native f` for a task with both `native` and `command`, while `sykli run`
/// (which has no function `f`) ran the command on the process executor.
#[test]
fn explain_and_run_agree_on_a_task_with_native_and_command() {
    let graph = json!({"version": "1", "tasks": [
        {"name": "fmt", "native": "check_fmt", "command": "touch ran-fmt"},
    ]});
    explain_equals_run("native and command", &graph, &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sykli.json"), graph.to_string()).unwrap();
    let out = sykli(dir.path(), &["explain"]);
    let said = text(&out);
    assert!(
        said.contains("fmt: runs: no condition\n  where: process\n"),
        "{said}"
    );
}
