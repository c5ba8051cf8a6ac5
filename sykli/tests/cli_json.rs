//! `--json` as one interface (docs/json.md), against the real binary: every command's output
//! parses as the one envelope, `--json` works before and after the subcommand, and the
//! envelope means what upstream Sykli's does.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use clap::CommandFactory;
use serde_json::{Value, json};
use sykli::report::{ERROR_CODES, Envelope};

/// A project plus a private cache directory, so runs never touch the user's cache.
struct Project {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Project {
    fn new(graph: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sykli.json"), graph.to_string()).unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a.txt"), "hi\n").unwrap();
        Project {
            dir,
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn sykli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sykli"))
            .args(args)
            .current_dir(self.path())
            .env("SYKLI_CACHE_DIR", self.cache.path())
            .env_remove("CI")
            .output()
            .expect("run sykli")
    }
}

/// `lint` is cacheable (inputs and outputs), `test` fails, `deploy` is blocked behind it.
fn mixed() -> Value {
    json!({"version": "1", "tasks": [
        {"name": "lint", "command": "echo linting; cat src/a.txt > out.txt",
         "inputs": ["src/**"], "outputs": {"o": "out.txt"}},
        {"name": "test", "command": "echo oops; exit 3", "depends_on": ["lint"]},
        {"name": "deploy", "command": "true", "depends_on": ["test"]},
    ]})
}

/// The error codes docs/json.md documents: the first column of its error-code table.
fn documented_codes() -> BTreeSet<String> {
    let doc = include_str!("../../docs/json.md");
    let table = doc
        .split("## Error codes")
        .nth(1)
        .expect("docs/json.md has an `## Error codes` section");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| code |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cell = l.split('|').nth(1).unwrap().trim();
            cell.trim_matches('`').to_string()
        })
        .collect()
}

/// The one parser every `--json` output goes through: exactly one line on stdout, no ANSI
/// codes, exactly the envelope's four members, version "1", `error` null exactly when `ok`,
/// and a documented error code.
fn envelope(args: &[&str], out: &Output) -> Envelope {
    let stdout = String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8");
    let ctx = format!(
        "sykli {}: exit {:?}\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.ends_with('\n'), "{ctx}");
    assert_eq!(stdout.lines().count(), 1, "one line: {ctx}");
    assert!(!stdout.contains('\x1b'), "no ANSI codes: {ctx}");
    let env: Envelope = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {ctx}"));
    assert_eq!(env.version, "1", "{ctx}");
    match &env.error {
        None => assert!(env.ok, "ok:false needs an error: {ctx}"),
        Some(e) => {
            assert!(!env.ok, "an error means ok:false: {ctx}");
            assert!(
                documented_codes().contains(&e.code),
                "error code `{}` is not documented in docs/json.md: {ctx}",
                e.code
            );
            assert!(!e.message.is_empty(), "{ctx}");
        }
    }
    env
}

/// Runs `args` and parses its output with [`envelope`].
fn json(p: &Project, args: &[&str]) -> (Envelope, Option<i32>) {
    let out = p.sykli(args);
    (envelope(args, &out), out.status.code())
}

#[test]
fn the_documented_error_codes_are_exactly_the_ones_sykli_uses() {
    let used: BTreeSet<String> = ERROR_CODES.iter().map(|c| c.to_string()).collect();
    assert_eq!(documented_codes(), used);
}

/// Every error code written in sykli's source (`CliError::usage("code", ..)`,
/// `CliError::failed(..)`, `Envelope::failure(..)`) is one of the documented ones, so a new
/// code cannot ship undocumented.
#[test]
fn every_error_code_in_the_source_is_documented() {
    let documented = documented_codes();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut seen = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for call in [
                "CliError::usage(",
                "CliError::failed(",
                "Envelope::failure(",
            ] {
                for (at, _) in source.match_indices(call) {
                    let rest = source[at + call.len()..].trim_start();
                    let Some(literal) = rest.strip_prefix('"') else {
                        continue;
                    };
                    let code = &literal[..literal.find('"').unwrap()];
                    seen += 1;
                    assert!(
                        documented.contains(code),
                        "{}: error code `{code}` is not documented in docs/json.md",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(seen > 10, "the scan found the error codes ({seen})");
}

/// One loop over every command (each leaf of `sykli --help`, checked against clap so a new
/// command cannot be forgotten), `--json` before and after the subcommand, each output through
/// the same parser.
#[test]
fn every_json_output_of_every_command_parses_as_the_one_envelope() {
    let p = Project::new(mixed());
    // A run first, so history, logs and report have something to show.
    let (first, _) = json(&p, &["--json", "run", "--keep-going"]);
    let run_id = first.data["run_id"].as_str().unwrap().to_string();
    let prefix = &run_id[..run_id.len() - 2];
    let init_dir = p.path().join("fresh");
    std::fs::create_dir(&init_dir).unwrap();
    let init_dir = init_dir.to_str().unwrap();
    let clean_run = format!("{run_id}-not-a-real-run");

    // (command, arguments, expected ok, expected exit code)
    let cases: Vec<(&str, Vec<&str>, bool, i32)> = vec![
        ("run", vec!["--json"], true, 1),
        ("run", vec!["--json", "run"], true, 1),
        ("run", vec!["run", "--json", "--keep-going"], true, 1),
        ("run", vec!["run", "--filter", "lint", "--json"], true, 0),
        ("run", vec!["--json", "run", "--filter", "nope"], false, 2),
        ("validate", vec!["--json", "validate"], true, 0),
        ("validate", vec!["validate", "--json", "."], true, 0),
        ("validate", vec!["validate", "--json", "missing"], false, 2),
        ("graph", vec!["--json", "graph"], true, 0),
        ("graph", vec!["graph", "--dot", "--json"], true, 0),
        ("explain", vec!["--json", "explain"], true, 0),
        ("explain", vec!["explain", "test", "--json"], true, 0),
        ("explain", vec!["explain", "nope", "--json"], false, 2),
        ("plan", vec!["--json", "plan", "--from", "HEAD"], false, 2),
        ("watch", vec!["--json", "watch"], false, 2),
        (
            "import",
            vec!["--json", "import", "missing.yml", "--to", "go"],
            false,
            2,
        ),
        ("history", vec!["--json", "history"], true, 0),
        ("history", vec!["history", "-n", "1", "--json"], true, 0),
        ("logs", vec!["--json", "logs", "last"], true, 0),
        ("logs", vec!["logs", &run_id, "test", "--json"], true, 0),
        ("logs", vec!["logs", "last", "nope", "--json"], false, 2),
        ("logs", vec!["--json", "logs", "no-such-run"], false, 2),
        ("report", vec!["--json", "report"], true, 0),
        ("report", vec!["report", prefix, "--json"], true, 0),
        ("report", vec!["report", "no-such-run", "--json"], false, 2),
        (
            "gate approve",
            vec!["--json", "gate", "approve", "last", "test"],
            false,
            2,
        ),
        (
            "gate reject",
            vec!["gate", "reject", "no-such-run", "x", "--json"],
            false,
            2,
        ),
        ("cache stats", vec!["--json", "cache", "stats"], true, 0),
        (
            "cache clean",
            vec!["cache", "clean", "--older-than", "7d", "--json"],
            true,
            0,
        ),
        ("cache path", vec!["cache", "--json", "path"], true, 0),
        ("clean", vec!["--json", "clean"], false, 2),
        ("init", vec!["--json", "init", "--go", init_dir], true, 0),
        ("init", vec!["init", "--go", init_dir, "--json"], false, 2),
        (
            "worker",
            vec!["--json", "worker", "--listen", "not-an-address"],
            false,
            2,
        ),
        (
            "serve",
            vec!["--json", "serve", "--listen", "not-an-address"],
            false,
            2,
        ),
        ("workers", vec!["workers", "not-a-url", "--json"], false, 2),
        ("plugin list", vec!["--json", "plugin", "list"], true, 0),
        (
            "plugin load",
            vec!["plugin", "load", "missing/plugin.toml", "--json"],
            false,
            1,
        ),
        (
            "plugin push",
            vec![
                "--json",
                "plugin",
                "push",
                "missing.toml",
                "--to",
                "grpc://127.0.0.1:1",
            ],
            false,
            1,
        ),
        (
            "plugin remove",
            vec!["--json", "plugin", "remove", "nope"],
            false,
            1,
        ),
        (
            "config push",
            vec!["--json", "config", "push", "not-a-url", "missing.toml"],
            false,
            2,
        ),
        (
            "config show",
            vec!["config", "show", "not-a-url", "--json"],
            false,
            2,
        ),
        // Bad usage with --json is an envelope too.
        ("run", vec!["--json", "--no-such-flag"], false, 2),
        (
            "validate",
            vec!["--json", "--jobs", "2", "validate"],
            false,
            2,
        ),
    ];
    let mut covered = BTreeSet::new();
    for (command, args, ok, exit) in &cases {
        let (env, code) = json(&p, args);
        assert_eq!(env.ok, *ok, "sykli {}: {env:?}", args.join(" "));
        assert_eq!(code, Some(*exit), "sykli {}: {env:?}", args.join(" "));
        covered.insert(command.to_string());
    }
    // `clean --containers` needs an engine; either way the answer is an envelope. Scoped to a
    // run that does not exist, so nothing of anyone else's is removed.
    let args = ["clean", "--containers", "--run", &clean_run, "--json"];
    let (env, _) = json(&p, &args);
    assert!(
        env.ok || env.error.as_ref().is_some_and(|e| e.code == "clean_failed"),
        "{env:?}"
    );
    if env.ok {
        assert_eq!(env.data["containers"], 0, "{env:?}");
    }

    let mut leaves = BTreeSet::new();
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut BTreeSet<String>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{prefix}{}", sub.get_name());
            if sub.has_subcommands() {
                walk(sub, &format!("{name} "), out);
            } else {
                out.insert(name);
            }
        }
    }
    walk(&sykli::cli::Cli::command(), "", &mut leaves);
    assert_eq!(covered, leaves, "every command is checked with --json");
}

/// Regression: `sykli --json validate` was refused (`validate` was taken for the path of
/// an implied run); the flag now means the same before and after the subcommand.
#[test]
fn sykli_json_validate_works_like_validate_json() {
    let p = Project::new(mixed());
    let before = p.sykli(&["--json", "validate"]);
    let after = p.sykli(&["validate", "--json"]);
    assert_eq!(before.status.code(), Some(0));
    let env = envelope(&["--json", "validate"], &before);
    assert!(env.ok);
    assert_eq!(env.data["valid"], true);
    assert_eq!(env.data["tasks"], 3);
    assert_eq!(before.stdout, after.stdout);
    assert!(before.stderr.is_empty() && after.stderr.is_empty());
}

/// A run whose tasks fail is `ok: true`: the command worked, the failures are in `data`, and
/// the exit code is 1.
#[test]
fn a_failed_run_is_ok_with_the_failures_in_data_and_exit_1() {
    let p = Project::new(mixed());
    let (env, code) = json(&p, &["--json", "run"]);
    assert_eq!(code, Some(1));
    assert!(env.ok, "{env:?}");
    assert_eq!(env.error, None);
    let data = &env.data;
    assert_eq!(data["outcome"], "failed");
    assert_eq!(data["summary"]["failed"], 1);
    assert_eq!(data["summary"]["blocked"], 1);
    let task = |n: &str| {
        data["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no task {n}: {data}"))
    };
    assert_eq!(task("lint")["status"], "passed");
    assert_eq!(task("test")["status"], "failed");
    assert_eq!(task("test")["exit_code"], 3);
    assert_eq!(task("test")["cached"], false);
    assert_eq!(task("deploy")["status"], "blocked");

    // A run that passes: exit 0, outcome passed.
    let (env, code) = json(&p, &["run", "--filter", "lint", "--json"]);
    assert_eq!(code, Some(0));
    assert!(env.ok);
    assert_eq!(env.data["outcome"], "passed");
}

/// `validate --json` of an invalid pipeline: validating worked (`ok: true`), `data.valid` is
/// false with every error listed, and the exit code stays 2. Commands that need a valid
/// pipeline fail with `invalid_pipeline` and the same list.
#[test]
fn validate_of_an_invalid_pipeline_gives_valid_false_and_every_error() {
    let p = Project::new(json!({"version": "1", "tasks": [
        {"name": "a", "command": "true", "depends_on": ["nope"]},
        {"name": "b"},
    ]}));
    let (env, code) = json(&p, &["validate", "--json"]);
    assert_eq!(code, Some(2));
    assert!(env.ok, "{env:?}");
    assert_eq!(env.data["valid"], false);
    let errors = env.data["errors"].as_array().unwrap();
    let codes: Vec<&str> = errors.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["unknown_dependency", "missing_command"],
        "{errors:?}"
    );
    assert_eq!(errors[0]["tasks"], json!(["a"]));
    assert!(errors[0]["message"].as_str().unwrap().contains("nope"));

    for args in [
        &["--json", "run"][..],
        &["--json", "graph"],
        &["--json", "explain"],
    ] {
        let (other, code) = json(&p, args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(!other.ok);
        assert_eq!(other.error.unwrap().code, "invalid_pipeline");
        assert_eq!(other.data["valid"], false);
        assert_eq!(other.data["errors"], env.data["errors"], "{args:?}");
    }
}

/// No pipeline at the path is `not_found`, for every command that loads one; a pipeline that
/// is there but does not load is `load_failed`.
#[test]
fn a_missing_pipeline_is_error_code_not_found() {
    let p = Project::new(mixed());
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    for args in [
        vec!["--json", "validate", empty],
        vec!["--json", "run", empty],
        vec!["--json", empty],
        vec!["--json", "graph", empty],
        vec!["--json", "explain", "--path", empty],
        vec!["--json", "validate", "no/such/dir"],
    ] {
        let (env, code) = json(&p, &args);
        assert_eq!(code, Some(2), "{args:?}");
        let error = env.error.unwrap();
        assert_eq!(error.code, "not_found", "{args:?}");
        assert!(
            error.message.contains("no pipeline found") || error.message.contains("no such file")
        );
    }
    std::fs::write(p.path().join("broken.json"), "{\"version\": ").unwrap();
    let (env, code) = json(&p, &["--json", "validate", "broken.json"]);
    assert_eq!(code, Some(2));
    assert_eq!(env.error.unwrap().code, "load_failed");
}

/// A cacheable task is `cached: true` (status `cached`) on the second run, `false` on the
/// first and with `--no-cache`.
#[test]
fn a_cacheable_task_is_cached_true_on_the_second_run() {
    let p = Project::new(mixed());
    let lint = |env: &Envelope| {
        env.data["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "lint")
            .cloned()
            .unwrap()
    };
    let (first, _) = json(&p, &["--json", "run", "--filter", "lint"]);
    assert_eq!(lint(&first)["cached"], false, "{first:?}");
    assert_eq!(lint(&first)["status"], "passed");
    let (second, code) = json(&p, &["--json", "run", "--filter", "lint"]);
    assert_eq!(code, Some(0));
    assert_eq!(lint(&second)["cached"], true, "{second:?}");
    assert_eq!(lint(&second)["status"], "cached");
    assert_eq!(second.data["summary"]["cached"], 1);
    let (third, _) = json(&p, &["--json", "run", "--filter", "lint", "--no-cache"]);
    assert_eq!(lint(&third)["cached"], false, "{third:?}");
}

/// `sykli report --json` after a run returns exactly what the run's own `--json` returned;
/// `sykli report` prints the same run for people; `report RUN` picks an older one.
#[test]
fn report_after_a_run_shows_that_run() {
    let p = Project::new(mixed());
    let (none, code) = json(&p, &["--json", "report"]);
    assert_eq!(code, Some(2));
    assert_eq!(none.error.unwrap().code, "no_runs");

    let (first, _) = json(&p, &["--json", "run", "--filter", "lint"]);
    let (run, _) = json(&p, &["--json", "run"]);
    let (report, code) = json(&p, &["--json", "report"]);
    assert_eq!(code, Some(0), "a report of a failed run still worked");
    assert!(report.ok);
    assert_eq!(report.data, run.data);

    let first_id = first.data["run_id"].as_str().unwrap();
    let (older, _) = json(&p, &["report", first_id, "--json"]);
    assert_eq!(older.data, first.data);

    let out = p.sykli(&["report"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let run_id = run.data["run_id"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("run {run_id} started ")),
        "{text}"
    );
    assert!(text.contains(": failed\n"), "{text}");
    assert!(text.contains("  cached     lint"), "{text}");
    assert!(text.contains("  failed     test"), "{text}");
    assert!(text.contains("  blocked    deploy"), "{text}");
    assert!(text.contains("test: exited with code 3"), "{text}");
    assert!(
        text.contains(&format!("log: sykli logs {run_id} test")),
        "{text}"
    );
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("1 passed (1 cached), 1 failed, 0 errored, 1 blocked, 0 skipped in "),
        "{text}"
    );
}

/// Regression: `sykli cache stats --json` printed a bare object instead of the envelope.
#[test]
fn cache_stats_json_is_wrapped_in_the_envelope() {
    let p = Project::new(mixed());
    let (env, code) = json(&p, &["cache", "stats", "--json"]);
    assert_eq!(code, Some(0));
    assert!(env.ok);
    assert_eq!(env.data["entries"], 0);
    assert_eq!(
        env.data["location"].as_str(),
        p.cache.path().to_str(),
        "{env:?}"
    );
}

/// `logs --json` carries each task's full log.
#[test]
fn logs_json_carries_the_log_text() {
    let p = Project::new(mixed());
    let _ = json(&p, &["--json", "run"]);
    let (env, _) = json(&p, &["--json", "logs", "last"]);
    let tasks = env.data["tasks"].as_array().unwrap();
    let by_name = |n: &str| tasks.iter().find(|t| t["name"] == n).unwrap();
    assert_eq!(by_name("test")["log"], "oops\n");
    assert_eq!(by_name("test")["status"], "failed");
    assert_eq!(by_name("deploy")["log"], Value::Null);
    assert!(
        by_name("deploy")["note"]
            .as_str()
            .unwrap()
            .contains("blocked"),
        "{env:?}"
    );
}
