//! The Rust SDK builder: exact JSON bytes, version choice, validation messages.

use std::time::Duration;

use sykli::{Condition, Criterion, Pipeline, Placement, SecretSource};

#[test]
fn minimal_pipeline_is_version_1_and_canonical() {
    let p = Pipeline::new();
    p.task("lint").run("cargo clippy");
    p.task("test").run("cargo test").after(&["lint", "lint"]);
    assert_eq!(
        p.to_json(),
        r#"{
  "version": "1",
  "tasks": [
    {
      "name": "lint",
      "command": "cargo clippy"
    },
    {
      "name": "test",
      "command": "cargo test",
      "depends_on": [
        "lint"
      ]
    }
  ]
}
"#
    );
}

#[test]
fn every_builder_method_lands_in_model_order() {
    let p = Pipeline::new();
    let src = p.dir(".").globs(&["src/**"]);
    let cargo = p.cache("cargo");
    let base = p
        .template()
        .container("rust:1.95")
        .env("CARGO_TERM_COLOR", "always")
        .mount_cache(&cargo, "/usr/local/cargo/registry")
        .retry(1);
    p.task("build")
        .from(&base)
        .run("cargo build")
        .mount(&src, "/src")
        .workdir("/src")
        .inputs(&["src/**/*.rs", "Cargo.toml"])
        .output("bin", "target/release/app")
        .outputs(&["target/doc"])
        .provides_value("artifact", "target/release/app");
    p.task("db").run("postgres").provides("db");
    p.task("test")
        .run("cargo test")
        .input_from("build", "bin", "bin/app")
        .needs("db")
        .matrix("os", &["linux", "mac"])
        .service("postgres:16", "pg")
        .secret("TOKEN")
        .secret_from("KEY", SecretSource::env("CI_KEY"))
        .secret_from("CERT", SecretSource::file("/etc/cert"))
        .when_cond(Condition::branch("main").or(Condition::has_tag()))
        .retry(0)
        .timeout(Duration::from_millis(1500))
        .requires(&["linux"])
        .success_criteria(Criterion::exit_code(0))
        .success_criteria(Criterion::file_non_empty("report.xml"))
        .task_type("test")
        .target("local")
        .prefer(Placement::Remote)
        .no_cache();
    p.gate("approve")
        .after(&["test"])
        .message("ship?")
        .env_var("APPROVED");
    p.task("deploy")
        .run("./deploy")
        .after(&["approve"])
        .remote()
        .when("branch:main");

    let json = p.to_json();
    let expected = r#"{
  "version": "3",
  "tasks": [
    {
      "name": "build",
      "command": "cargo build",
      "env": {
        "CARGO_TERM_COLOR": "always"
      },
      "workdir": "/src",
      "inputs": [
        "src/**/*.rs",
        "Cargo.toml"
      ],
      "outputs": {
        "bin": "target/release/app",
        "output_1": "target/doc"
      },
      "container": "rust:1.95",
      "mounts": [
        {
          "resource": "cargo",
          "path": "/usr/local/cargo/registry",
          "type": "cache"
        },
        {
          "resource": "src:.",
          "path": "/src",
          "type": "directory"
        }
      ],
      "retry": 1,
      "provides": [
        {
          "name": "artifact",
          "value": "target/release/app"
        }
      ]
    },
    {
      "name": "db",
      "command": "postgres",
      "provides": [
        {
          "name": "db"
        }
      ]
    },
    {
      "name": "test",
      "command": "cargo test",
      "depends_on": [
        "build"
      ],
      "task_inputs": [
        {
          "from_task": "build",
          "output": "bin",
          "dest": "bin/app"
        }
      ],
      "services": [
        {
          "image": "postgres:16",
          "name": "pg"
        }
      ],
      "matrix": {
        "os": [
          "linux",
          "mac"
        ]
      },
      "secrets": [
        "TOKEN"
      ],
      "secret_refs": [
        {
          "name": "KEY",
          "source": "env",
          "key": "CI_KEY"
        },
        {
          "name": "CERT",
          "source": "file",
          "key": "/etc/cert"
        }
      ],
      "when": "(branch == 'main') || (tag != '')",
      "retry": 0,
      "timeout": 2,
      "requires": [
        "linux"
      ],
      "needs": [
        "db"
      ],
      "success_criteria": [
        {
          "type": "exit_code",
          "equals": 0
        },
        {
          "type": "file_non_empty",
          "path": "report.xml"
        }
      ],
      "task_type": "test",
      "prefer": "remote",
      "cache": false,
      "target": "local"
    },
    {
      "name": "approve",
      "depends_on": [
        "test"
      ],
      "gate": {
        "strategy": "env",
        "timeout": 3600,
        "message": "ship?",
        "env_var": "APPROVED"
      }
    },
    {
      "name": "deploy",
      "command": "./deploy",
      "depends_on": [
        "approve"
      ],
      "when": "branch:main",
      "remote": true
    }
  ],
  "resources": {
    "cargo": {
      "type": "cache",
      "name": "cargo"
    },
    "src:.": {
      "type": "directory",
      "path": ".",
      "globs": [
        "src/**"
      ]
    }
  }
}
"#;
    assert_eq!(json, expected);

    // The graph validates; the matrix expands and the consumer of "test" would see both.
    let v = p.validate().expect("valid");
    let names: Vec<&str> = v.graph().tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["build", "db", "test-linux", "test-mac", "approve", "deploy"]
    );
    let approve = v.index_of("approve").unwrap();
    let deps: Vec<&str> = v
        .deps(approve)
        .iter()
        .map(|&i| v.task(i).name.as_str())
        .collect();
    assert_eq!(deps, ["test-linux", "test-mac"]);
    // `needs` became a dependency on the provider.
    let t = v.index_of("test-mac").unwrap();
    assert_eq!(v.task(t).depends_on, ["build", "db"]);
}

#[test]
fn version_choice() {
    let p = Pipeline::new();
    p.task("a").run("x").container("alpine");
    assert!(p.to_json().contains("\"version\": \"2\""));
    assert!(!p.to_json().contains("resources"));

    let p = Pipeline::new();
    p.cache("c");
    p.task("a").run("x");
    assert_eq!(p.to_graph().version.as_str(), "2");

    let p = Pipeline::new();
    p.task("a").run("x").mount_cwd();
    let j = p.to_json();
    assert!(j.contains("\"version\": \"2\""), "{j}");
    assert!(j.contains("\"workdir\": \"/work\""), "{j}");
    assert!(j.contains("\"src:.\""), "{j}");

    let p = Pipeline::new();
    p.task("a").run("x").task_type("lint");
    assert_eq!(p.to_graph().version.as_str(), "3");
}

#[test]
fn chain_parallel_and_groups() {
    let p = Pipeline::new();
    for n in ["a", "b", "c", "d"] {
        p.task(n).run("true");
    }
    p.chain(&["a", "b", "c"]);
    let g = p.parallel(&["b", "c"]);
    p.task("e").run("true").after_group(&g).after(&["b"]);
    let graph = p.to_graph();
    assert_eq!(graph.task("b").unwrap().depends_on, ["a"]);
    assert_eq!(graph.task("c").unwrap().depends_on, ["b"]);
    assert!(graph.task("d").unwrap().depends_on.is_empty());
    assert_eq!(graph.task("e").unwrap().depends_on, ["b", "c"]);
    assert!(p.validate().is_ok());

    p.chain(&["a", "zzz"]);
    let errs = p.validate().unwrap_err();
    assert_eq!(
        errs.to_string(),
        "error: chain refers to unknown task \"zzz\""
    );
}

#[test]
fn validation_lists_every_error_with_the_sdk_messages() {
    let p = Pipeline::new();
    p.task("").run("x");
    p.task("build").run("make");
    p.task("build").run("make again");
    p.task("lint");
    p.task("test").run("t").after(&["biuld", "test", "zebra"]);
    p.task("a").run("x").after(&["b"]).env("", "v");
    p.task("b").run("x").after(&["c"]);
    p.task("c").run("x").after(&["a"]);
    p.gate("gate"); // no command needed
    let errs = p.validate().unwrap_err();
    let text = errs.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "error: task name must not be empty",
            "error: duplicate task name \"build\"",
            "error: task \"lint\" has no command",
            "error: task \"test\" depends on unknown task \"biuld\" (did you mean \"build\"?)",
            "error: task \"test\" depends on itself",
            "error: task \"test\" depends on unknown task \"zebra\"",
            "error: task \"a\" has an empty env key",
        ],
        "{text}"
    );
    // The cycle is reported once duplicates are fixed.
    let p = Pipeline::new();
    p.task("a").run("x").after(&["b"]);
    p.task("b").run("x").after(&["c"]);
    p.task("c").run("x").after(&["a"]);
    assert_eq!(
        p.validate().unwrap_err().to_string(),
        "error: dependency cycle detected: a -> b -> c -> a"
    );
}

#[test]
fn emit_to_writes_json_or_returns_every_error() {
    let p = Pipeline::new();
    p.task("a").run("true");
    let mut out = Vec::new();
    p.emit_to(&mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), p.to_json());

    p.task("b").after(&["a"]);
    let mut out = Vec::new();
    let err = p.emit_to(&mut out).unwrap_err();
    assert!(out.is_empty());
    assert_eq!(err.to_string(), "error: task \"b\" has no command");
    assert_eq!(
        format!("{err:?}"),
        "invalid pipeline\nerror: task \"b\" has no command"
    );
}

#[test]
fn timeouts_round_up_to_whole_seconds() {
    let p = Pipeline::new();
    p.task("a").run("x").timeout(Duration::from_millis(1));
    p.task("b").run("x").timeout(Duration::from_secs(300));
    p.task("c").run("x").timeout(Duration::ZERO);
    p.gate("g")
        .timeout(Duration::from_millis(2500))
        .file("approved")
        .prompt();
    let g = p.to_graph();
    assert_eq!(g.task("a").unwrap().timeout, Some(1));
    assert_eq!(g.task("b").unwrap().timeout, Some(300));
    assert_eq!(g.task("c").unwrap().timeout, Some(1));
    let gate = g.task("g").unwrap().gate.clone().unwrap();
    assert_eq!(gate.timeout, Some(3));
    assert_eq!(gate.file_path.as_deref(), Some("approved"));
    assert_eq!(gate.strategy, sykli::runtime::graph::GateStrategy::Prompt);
}
