//! `sykli plugin` and `sykli config` with the real binary: a plugin loaded into a project runs
//! its `target` tasks through `sykli run`; pushed to a running `sykli worker`, listed,
//! swapped and removed there; a config pushed, shown, and a bad one refused naming every key.
//! The plugins are small WAT fixtures (sykli-runtime's `plugin::fixture`); the C examples
//! are exercised by tests/plugins.rs.

mod common;
#[path = "common/worker.rs"]
#[allow(dead_code)]
mod worker;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sykli_runtime::plugin::fixture::{Behaviour, component};

use common::{project, sykli, text};
use worker::Worker;

/// Writes a fixture plugin (`plugin.toml` + `NAME.wasm`) into `dir`; returns the manifest.
fn fixture(dir: &Path, name: &str, version: &str, b: Behaviour, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let wasm = component(name, version, b).unwrap();
    std::fs::write(dir.join(format!("{name}.wasm")), wasm).unwrap();
    let manifest = dir.join("plugin.toml");
    std::fs::write(
        &manifest,
        format!("name = \"{name}\"\ncomponent = \"{name}.wasm\"\n{extra}"),
    )
    .unwrap();
    manifest
}

fn envelope(out: &std::process::Output) -> Value {
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[test]
fn a_loaded_plugin_runs_target_tasks_in_sykli_run_and_unknown_targets_are_named() {
    let p = project(json!({"version": "1", "tasks": [
        {"name": "through", "command": "echo hi", "target": "fx"},
        {"name": "plain", "command": "echo plain"},
    ]}));
    let src = tempfile::tempdir().unwrap();
    let manifest = fixture(src.path(), "fx", "1.4.0", Behaviour::Exit(0), "");
    let out = sykli(p.path(), &["plugin", "load", manifest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("loaded plugin `fx` 1.4.0"),
        "{}",
        text(&out)
    );
    assert!(p.path().join(".sykli/plugins/fx/plugin.toml").is_file());

    let list = envelope(&sykli(p.path(), &["plugin", "list", "--json"]));
    assert_eq!(list["data"]["plugins"][0]["name"], "fx", "{list}");
    assert_eq!(list["data"]["plugins"][0]["version"], "1.4.0", "{list}");

    let out = sykli(p.path(), &["run", "--verbose"]);
    assert!(out.status.success(), "{}", text(&out));
    let logs = sykli(p.path(), &["logs", "last", "through"]);
    assert!(text(&logs).contains("fixture 1.4.0"), "{}", text(&logs));

    // A second load of the same name replaces it, from a new version.
    let manifest = fixture(src.path(), "fx", "1.5.0", Behaviour::Exit(4), "");
    let out = sykli(p.path(), &["plugin", "load", manifest.to_str().unwrap()]);
    assert!(
        text(&out).contains("replaced plugin `fx` 1.5.0"),
        "{}",
        text(&out)
    );
    let out = sykli(p.path(), &["run", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let out = sykli(p.path(), &["plugin", "remove", "fx"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = sykli(p.path(), &["--json", "run"]);
    let env = envelope(&out);
    let message = env["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("unknown target `fx`") || text(&out).contains("unknown target `fx`"),
        "{}",
        text(&out)
    );
    let out = sykli(p.path(), &["--json", "plugin", "remove", "fx"]);
    let env = envelope(&out);
    assert_eq!(env["error"]["code"], "plugin_failed", "{env}");
}

#[test]
fn a_bad_manifest_is_refused_naming_its_key() {
    let p = project(json!({"version": "1", "tasks": []}));
    let src = tempfile::tempdir().unwrap();
    let manifest = fixture(
        src.path(),
        "fx",
        "1.0.0",
        Behaviour::Exit(0),
        "[limits]\nmemory_mib = 0\n",
    );
    let out = sykli(
        p.path(),
        &["--json", "plugin", "load", manifest.to_str().unwrap()],
    );
    let env = envelope(&out);
    assert_eq!(env["error"]["code"], "plugin_failed", "{env}");
    assert!(
        env["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.memory_mib"),
        "{env}"
    );
}

#[test]
fn plugins_and_config_are_pushed_to_a_running_worker() {
    let store = tempfile::tempdir().unwrap();
    let w = Worker::start(&store.path().join("store"), &["--no-sandbox"]);
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    let v1 = fixture(&here.join("v1"), "fx", "1.0.0", Behaviour::Exit(0), "");
    let out = sykli(
        here,
        &["plugin", "push", v1.to_str().unwrap(), "--to", &w.url],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("loaded plugin `fx` 1.0.0"),
        "{}",
        text(&out)
    );
    let v2 = fixture(&here.join("v2"), "fx", "2.0.0", Behaviour::Exit(0), "");
    let out = sykli(
        here,
        &["plugin", "load", v2.to_str().unwrap(), "--to", &w.url],
    );
    assert!(
        text(&out).contains("swapped 1.0.0 for plugin `fx` 2.0.0"),
        "{}",
        text(&out)
    );
    let list = envelope(&sykli(here, &["--json", "plugin", "list", "--to", &w.url]));
    assert_eq!(list["data"]["plugins"][0]["version"], "2.0.0", "{list}");
    // Stored in the worker's store: a restart would load it again.
    assert!(w.store.join("plugins/fx/plugin.toml").is_file());

    let config = here.join("worker.toml");
    std::fs::write(
        &config,
        "concurrency = 3\n[labels]\npool = \"fast\"\n[targets.fx]\nurl = \"http://127.0.0.1:1/\"\n",
    )
    .unwrap();
    let out = sykli(here, &["config", "push", &w.url, config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = envelope(&sykli(here, &["--json", "config", "show", &w.url]));
    assert_eq!(shown["data"]["config"]["concurrency"], 3, "{shown}");
    assert_eq!(shown["data"]["config"]["labels"]["pool"], "fast", "{shown}");
    assert_eq!(
        shown["data"]["config"]["targets"]["fx"]["url"], "http://127.0.0.1:1/",
        "{shown}"
    );

    std::fs::write(&config, "concurrency = 0\nbogus = 1\n").unwrap();
    let out = sykli(
        here,
        &["--json", "config", "push", &w.url, config.to_str().unwrap()],
    );
    let env = envelope(&out);
    assert_eq!(env["error"]["code"], "config_failed", "{env}");
    let m = env["error"]["message"].as_str().unwrap();
    assert!(m.contains("concurrency:") && m.contains("bogus:"), "{m}");
    // Nothing of the bad config was applied.
    let shown = envelope(&sykli(here, &["--json", "config", "show", &w.url]));
    assert_eq!(shown["data"]["config"]["concurrency"], 3, "{shown}");

    let out = sykli(here, &["plugin", "remove", "fx", "--to", &w.url]);
    assert!(out.status.success(), "{}", text(&out));
    let out = sykli(here, &["--json", "plugin", "remove", "fx", "--to", &w.url]);
    let env = envelope(&out);
    assert_eq!(env["error"]["code"], "admin_failed", "{env}");
    assert!(
        env["error"]["message"].as_str().unwrap().contains("`fx`"),
        "{env}"
    );
}
