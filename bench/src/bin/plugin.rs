//! Target plugins (docs/plugins.md), three figures side by side with their targets:
//!
//! 1. instantiation per task: a fresh `Store` (empty WASI context, limits, epoch deadline)
//!    and an instance of a loaded plugin from the pooling allocator, N times (target
//!    <= 10 us);
//! 2. hot swap from the compiled cache: loading a plugin whose compiled code is in the cache
//!    (digest, deserialise, link, `describe()`) and swapping it into its slot, alternating
//!    two versions (target <= 10 ms);
//! 3. `sykli config push` to applied on a `sykli worker` under load (all its job slots busy
//!    with CPU-bound actions), the round trip of the admin call that applies it (target
//!    <= 100 ms).
//!
//! The plugin is a tiny WAT fixture (`sykli_runtime::plugin::fixture`). Build first:
//! `cargo build --release -p sykli -p sykli-bench`, then `target/release/plugin [N]`. The
//! `sykli` binary is `$SYKLI_BIN` or the one next to this benchmark.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use prost::Message;
use sykli_bench::{Worker, sykli_bin};
use sykli_runtime::plugin::admin::AdminClient;
use sykli_runtime::plugin::fixture::{Behaviour, component};
use sykli_runtime::plugin::{Manifest, PluginHost, PluginSource, Plugins};
use sykli_runtime::remote::client::execute::ExecuteOptions;
use sykli_runtime::remote::client::{Blob, BlobData, ClientOptions, RemoteClient};
use sykli_runtime::remote::endpoint::Endpoint;
use sykli_runtime::remote::server::digests::BlobDigest;
use tokio_util::sync::CancellationToken;

const WORKER_JOBS: usize = 2;

fn source(version: &str) -> Result<PluginSource> {
    let manifest_text = "name = \"bench\"\ncomponent = \"bench.wasm\"\n".to_owned();
    Ok(PluginSource {
        manifest: Manifest::parse(&manifest_text, "bench")?,
        manifest_text,
        wasm: component("bench", version, Behaviour::Exit(0)).map_err(anyhow::Error::msg)?,
    })
}

/// Median and 95th percentile of `samples`.
fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.95))
}

fn instantiation(n: usize) -> Result<(Duration, Duration)> {
    let host = PluginHost::new(None)?;
    let plugin = host.load(&source("1.0.0")?, None)?;
    for _ in 0..100 {
        host.instantiate_only(&plugin)?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        host.instantiate_only(&plugin)?;
        samples.push(t.elapsed());
    }
    Ok(stats(samples))
}

fn hot_swap(n: usize, cache: &Path) -> Result<(Duration, Duration)> {
    let (a, b) = (source("1.0.0")?, source("2.0.0")?);
    let warm = PluginHost::new(Some(cache.to_path_buf()))?;
    warm.load(&a, None)?;
    warm.load(&b, None)?;
    let plugins = Plugins::new(PluginHost::new(Some(cache.to_path_buf()))?);
    plugins.install(&a, None)?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let src = if i % 2 == 0 { &b } else { &a };
        let t = Instant::now();
        let swapped = plugins.install(src, None)?;
        samples.push(t.elapsed());
        if !swapped.plugin.from_cache {
            bail!("the swap compiled instead of using the cache");
        }
    }
    Ok(stats(samples))
}

async fn busy_action(client: &RemoteClient, i: usize) -> Result<reapi::Digest> {
    let f = client.function();
    let script =
        format!("end=$(($(date +%s)+60)); while [ $(date +%s) -lt $end ]; do :; done # {i}");
    let command = reapi::Command {
        arguments: vec!["sh".into(), "-c".into(), script],
        ..Default::default()
    }
    .encode_to_vec();
    let root = reapi::Directory::default().encode_to_vec();
    let cd = BlobDigest::of(f, &command).to_reapi();
    let rd = BlobDigest::of(f, &root).to_reapi();
    let action = reapi::Action {
        command_digest: Some(cd.clone()),
        input_root_digest: Some(rd.clone()),
        do_not_cache: true,
        ..Default::default()
    }
    .encode_to_vec();
    let ad = BlobDigest::of(f, &action).to_reapi();
    client
        .upload_missing(vec![
            Blob {
                digest: cd,
                data: BlobData::Bytes(command),
            },
            Blob {
                digest: rd,
                data: BlobData::Bytes(root),
            },
            Blob {
                digest: ad.clone(),
                data: BlobData::Bytes(action),
            },
        ])
        .await?;
    Ok(ad)
}

async fn config_push(n: usize, sykli: &Path, dir: &Path) -> Result<(Duration, Duration)> {
    let jobs = WORKER_JOBS.to_string();
    let worker = Worker::start(
        sykli,
        &dir.join("store"),
        &["--no-sandbox", "--jobs", &jobs],
    )?;
    let opts = ClientOptions::new(Endpoint::parse(&worker.url)?);
    let client = RemoteClient::connect(&opts).await?;
    // Load: twice as many CPU-bound actions as slots (all slots busy, a queue behind).
    let stop = CancellationToken::new();
    for i in 0..WORKER_JOBS * 2 {
        let action = busy_action(&client, i).await?;
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let opts = ExecuteOptions {
                attempt: 1,
                skip_cache_lookup: true,
                secrets: None,
                queue_timeout: Duration::from_secs(600),
                cancel: stop,
                live: None,
                platform: String::new(),
                operations: None,
                metadata: None,
            };
            let _ = client.execute(&action, &opts).await;
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut admin = AdminClient::connect(&opts).await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let text = format!(
            "concurrency = {}\n[labels]\nround = \"r{i}\"\n[targets.bench]\nround = \"{i}\"\n",
            WORKER_JOBS + i % 2
        );
        let t = Instant::now();
        let applied = admin.push_config(&text).await?;
        samples.push(t.elapsed());
        if !applied.contains(&format!("r{i}")) {
            bail!("the server answered a config it did not apply: {applied}");
        }
    }
    stop.cancel();
    drop(worker);
    Ok(stats(samples))
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(2000);
    let dir = tempfile::tempdir()?;
    let sykli = sykli_bin()?;

    let inst = tokio::task::spawn_blocking(move || instantiation(n)).await??;
    let cache = dir.path().join("cache");
    let swap = tokio::task::spawn_blocking(move || hot_swap(40, &cache)).await??;
    let push = config_push(40, &sykli, dir.path()).await?;

    let us = |d: Duration| format!("{:.1} us", d.as_secs_f64() * 1e6);
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!(
        "{:<44} {:>12} {:>12} {:>10}",
        "figure", "median", "p95", "target"
    );
    println!(
        "{:<44} {:>12} {:>12} {:>10}",
        format!("instantiation per task (pooling, n={n})"),
        us(inst.0),
        us(inst.1),
        "<= 10 us"
    );
    println!(
        "{:<44} {:>12} {:>12} {:>10}",
        "hot swap from the compiled cache (n=40)",
        ms(swap.0),
        ms(swap.1),
        "<= 10 ms"
    );
    println!(
        "{:<44} {:>12} {:>12} {:>10}",
        format!("config push to applied, worker loaded (n=40)"),
        ms(push.0),
        ms(push.1),
        "<= 100 ms"
    );
    Ok(())
}
