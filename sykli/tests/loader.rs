//! The sykli.go / sykli.ts loader and `sykli init`, with real toolchains: `go` on PATH, and the
//! TypeScript SDK's own `node_modules/.bin/tsx` (run `npm ci` in sdk-ts first).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sykli::init::{Language, SdkSources, scaffold};
use sykli::loader::{LoadError, TsRunner, find_pipeline, go_binary, load_go, load_ts_with};
use sykli::runtime::graph::Graph;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn sdks() -> SdkSources {
    SdkSources {
        go: Some(repo().join("sdk-go")),
        ts: Some(repo().join("sdk-ts")),
        rust: Some(repo().join("sykli")),
    }
}

fn tsx() -> TsRunner {
    TsRunner {
        program: repo().join("sdk-ts/node_modules/.bin/tsx").into_os_string(),
        args: vec![],
    }
}

const STARTER_JSON: &str = "{\n  \"version\": \"1\",\n  \"tasks\": [\n    {\n      \"name\": \"hello\",\n      \"command\": \"echo hello from sykli\"\n    },\n    {\n      \"name\": \"world\",\n      \"command\": \"echo the graph runs in dependency order\",\n      \"depends_on\": [\n        \"hello\"\n      ]\n    }\n  ]\n}\n";

#[test]
fn go_starter_runs_and_its_binary_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let done = scaffold(dir.path(), Language::Go, &sdks()).unwrap();
    assert_eq!(done.written.len(), 2, "sykli.go and go.mod");
    let (file, loader) = find_pipeline(dir.path()).unwrap();
    assert_eq!(file, dir.path().join("sykli.go"));
    assert_eq!(loader.file, "sykli.go");

    let emitted = load_go(&file).unwrap();
    let first = format!("{}\n", emitted.json);
    assert_eq!(first, STARTER_JSON);
    assert!(emitted.other_output.is_empty());
    Graph::from_json(&first).unwrap();
    let bin = go_binary(&file).unwrap();
    let built = fs::metadata(&bin).unwrap().modified().unwrap();

    let t = Instant::now();
    let second = format!("{}\n", load_go(&file).unwrap().json);
    let warm = t.elapsed();
    assert_eq!(second, first);
    assert_eq!(
        fs::metadata(&bin).unwrap().modified().unwrap(),
        built,
        "rebuilt"
    );
    eprintln!("warm load: {warm:?}");

    // A change to the sources builds a new binary and drops the old one.
    let src = fs::read_to_string(&file).unwrap();
    fs::write(&file, src.replace("hello from sykli", "changed")).unwrap();
    let third = load_go(&file).unwrap().json;
    assert!(third.contains("\"echo changed\""));
    let bins: Vec<_> = fs::read_dir(dir.path().join(".sykli/bin"))
        .unwrap()
        .collect();
    assert_eq!(bins.len(), 1);
}

#[test]
fn go_compile_errors_name_the_file_command_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    scaffold(dir.path(), Language::Go, &sdks()).unwrap();
    let file = dir.path().join("sykli.go");
    let src = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        src.replace("s.Emit()", "s.Emit()\n\tundefinedThing()"),
    )
    .unwrap();
    let err = load_go(&file).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LoadError::ProgramFailed { .. }), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("go build -o"), "{msg}");
    assert!(msg.contains("undefined: undefinedThing"), "{msg}");
    assert!(
        !dir.path()
            .join(".sykli/bin")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().starts_with("go-") })
    );
}

#[test]
fn invalid_go_pipeline_reports_its_validation_errors() {
    let dir = tempfile::tempdir().unwrap();
    scaffold(dir.path(), Language::Go, &sdks()).unwrap();
    let file = dir.path().join("sykli.go");
    let src = fs::read_to_string(&file).unwrap();
    fs::write(&file, src.replace(".After(\"hello\")", ".After(\"helo\")")).unwrap();
    let msg = load_go(&file).unwrap_err().to_string();
    assert!(msg.contains("failed (exit status: 1)"), "{msg}");
    assert!(
        msg.contains(
            "error: task \"world\" depends on unknown task \"helo\" (did you mean \"hello\"?)"
        ),
        "{msg}"
    );
}

#[test]
fn ts_starter_runs_with_tsx() {
    let dir = tempfile::tempdir().unwrap();
    scaffold(dir.path(), Language::TypeScript, &sdks()).unwrap();
    let (file, _) = find_pipeline(dir.path()).unwrap();
    assert_eq!(file, dir.path().join("sykli.ts"));
    assert_eq!(
        format!("{}\n", load_ts_with(&file, &tsx()).unwrap().json),
        STARTER_JSON
    );
}

#[test]
fn ts_errors_name_the_file_command_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    scaffold(dir.path(), Language::TypeScript, &sdks()).unwrap();
    let file = dir.path().join("sykli.ts");
    let src = fs::read_to_string(&file).unwrap();
    fs::write(&file, src.replace("p.task(\"hello\")", "p.task(\"\")")).unwrap();
    let msg = load_ts_with(&file, &tsx()).unwrap_err().to_string();
    assert!(msg.contains("sykli.ts"), "{msg}");
    assert!(msg.contains("tsx sykli.ts --emit"), "{msg}");
    assert!(msg.contains("error: task name must not be empty"), "{msg}");
}

#[test]
fn missing_runner_is_a_toolchain_error() {
    let dir = tempfile::tempdir().unwrap();
    scaffold(dir.path(), Language::TypeScript, &sdks()).unwrap();
    let runner = TsRunner {
        program: "/nonexistent/bun".into(),
        args: vec!["run".into()],
    };
    let err = load_ts_with(&dir.path().join("sykli.ts"), &runner).unwrap_err();
    assert!(matches!(err, LoadError::ToolchainMissing { .. }), "{err}");
    assert!(err.to_string().contains("install Node.js"), "{err}");
}

#[test]
fn runner_detection_prefers_the_project_tsx_then_path() {
    let dir = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    // Nothing on PATH: npx tsx as the last resort.
    let r = TsRunner::detect_in(dir.path(), Some(bin.path().as_os_str()));
    assert_eq!(r.program, "npx");
    fs::write(bin.path().join("deno"), "").unwrap();
    let r = TsRunner::detect_in(dir.path(), Some(bin.path().as_os_str()));
    assert_eq!(r.program, bin.path().join("deno").into_os_string());
    assert_eq!(r.args, vec!["run", "--allow-all"]);
    fs::write(bin.path().join("bun"), "").unwrap();
    let r = TsRunner::detect_in(dir.path(), Some(bin.path().as_os_str()));
    assert_eq!(r.program, bin.path().join("bun").into_os_string());
    fs::create_dir_all(dir.path().join("node_modules/.bin")).unwrap();
    fs::write(dir.path().join("node_modules/.bin/tsx"), "").unwrap();
    let r = TsRunner::detect_in(dir.path(), Some(bin.path().as_os_str()));
    assert_eq!(
        r.program,
        dir.path().join("node_modules/.bin/tsx").into_os_string()
    );
}

#[test]
fn init_never_overwrites_a_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("sykli.ts"), "// mine").unwrap();
    let err = scaffold(dir.path(), Language::Go, &sdks()).unwrap_err();
    assert!(err.to_string().contains("sykli.ts"), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(
        fs::read_to_string(dir.path().join("sykli.ts")).unwrap(),
        "// mine"
    );
    assert!(!dir.path().join("go.mod").exists());
}

#[test]
fn init_rust_writes_a_cargo_project_around_sykli_rs() {
    let dir = tempfile::tempdir().unwrap();
    let done = scaffold(dir.path(), Language::Rust, &sdks()).unwrap();
    assert!(done.next_steps.is_empty());
    let cargo = fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    assert!(
        cargo.contains("[[bin]]\nname = \"ci\"\npath = \"sykli.rs\""),
        "{cargo}"
    );
    assert!(cargo.contains("sykli = { path = "), "{cargo}");
    let src = fs::read_to_string(dir.path().join("sykli.rs")).unwrap();
    assert!(src.contains("p.emit_or_exit();"));
}

/// `sykli init --go` then `sykli validate` / `sykli graph` through the real binary.
#[test]
fn cli_init_then_validate_and_graph_go_and_ts() {
    let sykli = env!("CARGO_BIN_EXE_sykli");
    for (flag, file) in [("--go", "sykli.go"), ("--ts", "sykli.ts")] {
        let dir = tempfile::tempdir().unwrap();
        let mut path = std::env::var_os("PATH").unwrap_or_default();
        // The TypeScript starter needs a runner: the SDK's own tsx.
        let mut paths: Vec<PathBuf> = vec![repo().join("sdk-ts/node_modules/.bin")];
        paths.extend(std::env::split_paths(&path));
        path = std::env::join_paths(paths).unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new(sykli)
                .args(args)
                .env("PATH", &path)
                .env("SYKLI_GO_SDK", repo().join("sdk-go"))
                .env("SYKLI_TS_SDK", repo().join("sdk-ts"))
                .output()
                .unwrap()
        };
        let dir_arg = dir.path().to_str().unwrap();
        let out = run(&["init", flag, dir_arg]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(dir.path().join(file).is_file());

        let out = run(&["validate", dir_arg]);
        assert!(
            out.status.success(),
            "{flag}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(&["graph", dir_arg]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("hello") && text.contains("world"),
            "{flag}: {text}"
        );

        // A second init refuses to overwrite.
        let out = run(&["init", flag, dir_arg]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    }
}

/// End to end: `sykli run` on a sykli.go and on a sykli.ts project runs their real tasks in
/// dependency order (the second reads what the first wrote).
#[test]
fn sykli_run_runs_go_and_ts_pipelines() {
    let sykli = env!("CARGO_BIN_EXE_sykli");
    for (flag, file, tag) in [("--go", "sykli.go", "go"), ("--ts", "sykli.ts", "ts")] {
        let dir = tempfile::tempdir().unwrap();
        let mut paths: Vec<PathBuf> = vec![repo().join("sdk-ts/node_modules/.bin")];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let path = std::env::join_paths(paths).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new(sykli)
                .args(args)
                .env("PATH", &path)
                .env("SYKLI_GO_SDK", repo().join("sdk-go"))
                .env("SYKLI_TS_SDK", repo().join("sdk-ts"))
                .env("SYKLI_CACHE_DIR", cache.path())
                .output()
                .unwrap()
        };
        let dir_arg = dir.path().to_str().unwrap();
        assert!(run(&["init", flag, dir_arg]).status.success());
        let program = dir.path().join(file);
        let src = fs::read_to_string(&program)
            .unwrap()
            .replace(
                "echo hello from sykli",
                &format!("echo made-by-{tag} > made.txt"),
            )
            .replace(
                "echo the graph runs in dependency order",
                "grep made-by made.txt > checked.txt",
            );
        fs::write(&program, src).unwrap();

        let out = run(&["run", dir_arg]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{flag}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("checked.txt")).unwrap(),
            format!("made-by-{tag}\n")
        );
        assert_eq!(
            stdout.lines().last(),
            Some("sykli: 2 passed, 0 failed, 0 skipped"),
            "{stdout}"
        );
    }
}
