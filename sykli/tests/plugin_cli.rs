//! `sykli plugin` and `sykli config` with the real binary: a plugin loaded into a project runs
//! its `target` tasks through `sykli run`; pushed to a running `sykli worker`, listed,
//! swapped and removed there; a config pushed, shown, and a bad one refused naming every key.
//! The plugins are small WAT fixtures (sykli-runtime's `plugin::fixture`); the C examples
//! are exercised by tests/plugins.rs.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sykli_runtime::plugin::fixture::{Behaviour, component};

use common::worker::Worker;
use common::{project, sykli, text};

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

mod reapi_client {
    //! Just enough of a REAPI client to run one action on a worker.
    use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
    use bazel_remote_apis::google::longrunning::operation;
    use prost::Message;
    use std::time::Duration;

    const BLAKE3: i32 = 9;

    fn digest(bytes: &[u8]) -> reapi::Digest {
        reapi::Digest {
            hash: blake3::hash(bytes).to_hex().to_string(),
            size_bytes: bytes.len() as i64,
        }
    }

    pub async fn channel(url: &str) -> tonic::transport::Channel {
        let http = url.replace("grpc://", "http://");
        tonic::transport::Channel::from_shared(http)
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn upload(ch: &tonic::transport::Channel, blobs: &[&[u8]]) {
        use reapi::content_addressable_storage_client::ContentAddressableStorageClient;
        let requests = blobs
            .iter()
            .map(|b| reapi::batch_update_blobs_request::Request {
                digest: Some(digest(b)),
                data: b.to_vec(),
                compressor: 0,
            })
            .collect();
        ContentAddressableStorageClient::new(ch.clone())
            .batch_update_blobs(reapi::BatchUpdateBlobsRequest {
                requests,
                digest_function: BLAKE3,
                ..Default::default()
            })
            .await
            .expect("BatchUpdateBlobs");
    }

    /// Runs `sh -c script` with platform `props`, uncached; the response and its stdout.
    pub async fn run(
        ch: &tonic::transport::Channel,
        script: &str,
        props: &[(&str, &str)],
    ) -> (reapi::ExecuteResponse, String) {
        let root = reapi::Directory::default().encode_to_vec();
        let command = reapi::Command {
            arguments: vec!["/bin/sh".into(), "-c".into(), script.into()],
            ..Default::default()
        }
        .encode_to_vec();
        let action = reapi::Action {
            command_digest: Some(digest(&command)),
            input_root_digest: Some(digest(&root)),
            do_not_cache: true,
            platform: Some(reapi::Platform {
                properties: props
                    .iter()
                    .map(|(n, v)| reapi::platform::Property {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            }),
            ..Default::default()
        }
        .encode_to_vec();
        upload(ch, &[&root, &command, &action]).await;
        let mut stream = reapi::execution_client::ExecutionClient::new(ch.clone())
            .execute(reapi::ExecuteRequest {
                action_digest: Some(digest(&action)),
                skip_cache_lookup: true,
                digest_function: BLAKE3,
                ..Default::default()
            })
            .await
            .expect("Execute")
            .into_inner();
        let mut last = None;
        while let Some(op) = tokio::time::timeout(Duration::from_secs(120), stream.message())
            .await
            .expect("the operation finished in time")
            .expect("the stream")
        {
            let done = op.done;
            last = Some(op);
            if done {
                break;
            }
        }
        let Some(operation::Result::Response(any)) = last.and_then(|o| o.result) else {
            panic!("no response");
        };
        let resp = reapi::ExecuteResponse::decode(&any.value[..]).unwrap();
        let stdout = match resp.result.as_ref().and_then(|r| r.stdout_digest.clone()) {
            Some(d) if d.size_bytes > 0 => {
                use reapi::content_addressable_storage_client::ContentAddressableStorageClient;
                let r = ContentAddressableStorageClient::new(ch.clone())
                    .batch_read_blobs(reapi::BatchReadBlobsRequest {
                        digests: vec![d],
                        digest_function: BLAKE3,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                String::from_utf8_lossy(&r.responses[0].data).into_owned()
            }
            _ => String::new(),
        };
        (resp, stdout)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_asking_for_sykli_target_runs_through_the_worker_plugin_across_a_swap() {
    let store = tempfile::tempdir().unwrap();
    let w = Worker::start(&store.path().join("store"), &["--no-sandbox"]);
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().to_path_buf();
    let ch = reapi_client::channel(&w.url).await;

    // Unknown plugin: the action fails naming what is loaded.
    let (resp, _) = reapi_client::run(&ch, "echo hi", &[("sykli-target", "fx")]).await;
    let st = resp.status.unwrap();
    assert_eq!(st.code, tonic::Code::FailedPrecondition as i32, "{st:?}");
    assert!(
        st.message.contains("no plugin named `fx`"),
        "{}",
        st.message
    );

    let slow = Behaviour::Count {
        n: 2_000_000_000,
        exit_code: 1,
    };
    let v1 = fixture(&here.join("v1"), "fx", "1.0.0", slow, "");
    let out = sykli(
        &here,
        &["plugin", "push", v1.to_str().unwrap(), "--to", &w.url],
    );
    assert!(out.status.success(), "{}", text(&out));
    let old = {
        let ch = ch.clone();
        tokio::spawn(
            async move { reapi_client::run(&ch, "echo hi", &[("sykli-target", "fx")]).await },
        )
    };
    // Wait (bounded) until v1 has taken the action.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let l = envelope(&sykli(&here, &["--json", "plugin", "list", "--to", &w.url]));
        if l["data"]["plugins"][0]["tasks_served"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "v1 never started: {l}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let v2 = fixture(&here.join("v2"), "fx", "2.0.0", Behaviour::Exit(2), "");
    let out = sykli(
        &here,
        &["plugin", "push", v2.to_str().unwrap(), "--to", &w.url],
    );
    assert!(out.status.success(), "{}", text(&out));
    let (new, stdout) = reapi_client::run(&ch, "echo hi", &[("sykli-target", "fx")]).await;
    assert_eq!(new.result.unwrap().exit_code, 2);
    assert!(stdout.contains("fixture 2.0.0"), "{stdout}");
    assert!(!old.is_finished(), "the v1 action should still be running");
    let (old, _) = old.await.unwrap();
    assert_eq!(old.result.unwrap().exit_code, 1, "v1 finished on v1");
}
