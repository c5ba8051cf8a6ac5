//! `sykli serve`: the REAPI front of a worker pool (workers join with `sykli worker --join
//! URL`), and `sykli workers ADDR`: the pool's workers, queue and load.
//!
//! Once it serves, `sykli serve` prints exactly one line to stdout, `sykli serve: listening
//! on grpc://IP:PORT`; events (joins, leases, requeues, discarded results) go to stderr, one
//! line each. SIGTERM or SIGINT stops it; queued actions stay in the queue log of `--store`
//! and run after a restart.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use sykli_runtime::remote::auth::Token;
use sykli_runtime::remote::client::ClientOptions;
use sykli_runtime::remote::endpoint::Endpoint;
use sykli_runtime::remote::pool::join::pool_status;
use sykli_runtime::remote::pool::scheduler::PoolConfig;
use sykli_runtime::remote::pool::{ServeConfig, bind};
use sykli_runtime::remote::server::TlsFiles;
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use super::print_out;
use crate::report::Envelope;

fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("invalid duration \"{s}\": {e}"))?;
    if d.is_zero() {
        return Err(format!("invalid duration \"{s}\": must be more than zero"));
    }
    Ok(d)
}

/// Arguments of `sykli serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8980 (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Store directory for the CAS, action cache and queue log [default: <cache dir>/sykli/serve].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require this bearer token on every call, workers' too (else SYKLI_TOKEN when set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Workers heartbeat this often.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub heartbeat: Duration,
    /// A worker silent for this many heartbeat intervals loses its leases.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub misses: u32,
    /// Attempts of an action whose worker is lost before it fails.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_attempts: u32,
    /// An action no worker in the pool can take fails after this long queued.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration)]
    pub queue_timeout: Duration,
    /// An action nobody waits for (client gone) is cancelled after this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub orphan_grace: Duration,
    /// Also drive this plain `sykli worker` (grpc://HOST:PORT, listening) as a pool member
    /// (repeatable); it gets serve's token.
    #[arg(long = "worker", value_name = "URL")]
    pub workers: Vec<String>,
    /// Resolve this grpc://NAME:PORT once at start and drive every address it resolves to
    /// as a --worker (repeatable; not re-resolved later).
    #[arg(long = "worker-dns", value_name = "URL")]
    pub worker_dns: Vec<String>,
    /// Job slots of each --worker.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub worker_jobs: u32,
    /// Also serve the live web page of the runs it serves at http(s)://ADDR/ui (same port;
    /// the token rules of docs/observe.md).
    #[arg(long)]
    pub ui: bool,
    /// The autoscaler of local workers.
    #[command(flatten)]
    pub autoscale: super::autoscale::AutoscaleArgs,
}

/// Arguments of `sykli workers`.
#[derive(Debug, Clone, Args)]
pub struct WorkersArgs {
    /// The serve endpoint (grpc://HOST:PORT or grpcs://HOST:PORT).
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// Send this bearer token (else SYKLI_TOKEN when set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Runs `sykli serve`: exit 0 after a clean stop, 2 on bad usage, 1 when it could not
/// start or serve (`serve_failed`).
pub fn serve_command(args: &ServeArgs, json: bool) -> ExitCode {
    let config = match config_of(args) {
        Ok(c) => c,
        Err(e) => return CliError::usage("usage", e).report(json),
    };
    let autoscale =
        match super::autoscale::setup_of(&args.autoscale, &config.store, config.token.as_ref()) {
            Ok(a) => a,
            Err(e) => return CliError::usage("usage", e).report(json),
        };
    let runtime = match CliError::runtime(true) {
        Ok(rt) => rt,
        Err(e) => return e.report(json),
    };
    match runtime.block_on(serve(config, autoscale)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => CliError::failed("serve_failed", e).report(json),
    }
}

fn config_of(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
    let listen: SocketAddr = args
        .listen
        .to_socket_addrs()
        .with_context(|| {
            format!(
                "--listen {}: not an address (expected HOST:PORT)",
                args.listen
            )
        })?
        .next()
        .ok_or_else(|| anyhow!("--listen {}: the name resolves to no address", args.listen))?;
    let store = match &args.store {
        Some(s) => s.clone(),
        None => sykli_runtime::cache::store::Store::default_root()
            .context("no --store given and no cache directory found")?
            .join("serve"),
    };
    if args.misses == 0 {
        return Err(anyhow!("--misses 0: at least one interval must be allowed"));
    }
    if args.max_attempts == 0 {
        return Err(anyhow!(
            "--max-attempts 0: at least one attempt must be allowed"
        ));
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    if args.worker_jobs == 0 {
        return Err(anyhow!("--worker-jobs 0: at least one job must be allowed"));
    }
    let token = Token::load(args.token_file.as_deref())?;
    let mut static_workers = Vec::new();
    for url in &args.workers {
        let endpoint = Endpoint::parse(url).with_context(|| format!("--worker {url}"))?;
        let mut opts = ClientOptions::new(endpoint);
        opts.token = token.clone();
        static_workers.push((opts, args.worker_jobs));
    }
    for url in &args.worker_dns {
        let endpoint = Endpoint::parse(url).with_context(|| format!("--worker-dns {url}"))?;
        if endpoint.tls {
            return Err(anyhow!(
                "--worker-dns {url}: grpcs:// is not supported (certificates name hosts, not \
                 addresses); list each worker with --worker"
            ));
        }
        let addrs: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .with_context(|| format!("--worker-dns {url}: the name does not resolve"))?
            .collect();
        if addrs.is_empty() {
            return Err(anyhow!(
                "--worker-dns {url}: the name resolves to no address"
            ));
        }
        for addr in addrs {
            let endpoint = Endpoint::parse(&format!("grpc://{addr}"))
                .with_context(|| format!("--worker-dns {url}: address {addr}"))?;
            let mut opts = ClientOptions::new(endpoint);
            opts.token = token.clone();
            static_workers.push((opts, args.worker_jobs));
        }
    }
    Ok(ServeConfig {
        listen,
        store,
        tls,
        static_workers,
        token,
        pool: PoolConfig {
            heartbeat: args.heartbeat,
            misses: args.misses,
            max_attempts: args.max_attempts,
            queue_timeout: args.queue_timeout,
            orphan_grace: args.orphan_grace,
            log: Arc::new(|line| eprintln!("sykli serve: {line}")),
        },
        hub: sykli_runtime::observe::Hub::new(),
        ui: args.ui,
    })
}

async fn serve(
    config: ServeConfig,
    autoscale: Option<super::autoscale::Setup>,
) -> anyhow::Result<()> {
    let bound = bind(config).await?;
    let shutdown = CancellationToken::new();
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("failed to watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("failed to watch SIGINT")?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            stop.cancel();
        });
    }
    let autoscaler = match autoscale {
        Some(setup) => Some(super::autoscale::start(
            setup,
            &bound.url(),
            bound.scheduler(),
        )?),
        None => None,
    };
    if let Some(a) = &autoscaler {
        a.stop_on(shutdown.clone());
    }
    let ui = bound.ui_url();
    print_out(&format!("sykli serve: listening on {}\n", bound.url()));
    if let Some(page) = ui {
        eprintln!("sykli serve: web page at {page}");
    }
    let served = bound.serve(shutdown.clone()).await;
    shutdown.cancel();
    if let Some(a) = autoscaler {
        a.stop().await;
    }
    served?;
    Ok(())
}

/// Runs `sykli workers ADDR`: the pool's workers and load; exit 1 when serve could not be
/// asked (`workers_failed`), 2 on bad usage.
pub fn workers_command(args: &WorkersArgs, json: bool) -> ExitCode {
    let endpoint = match Endpoint::parse(&args.addr) {
        Ok(e) => e,
        Err(e) => {
            return CliError::usage("usage", anyhow!(e).context(format!("ADDR {}", args.addr)))
                .report(json);
        }
    };
    let mut opts = ClientOptions::new(endpoint);
    match Token::load(args.token_file.as_deref()) {
        Ok(t) => opts.token = t,
        Err(e) => return CliError::usage("usage", e).report(json),
    }
    let runtime = match CliError::runtime(false) {
        Ok(rt) => rt,
        Err(e) => return e.report(json),
    };
    let status = match runtime.block_on(pool_status(&opts)) {
        Ok(s) => s,
        Err(e) => return CliError::failed("workers_failed", e).report(json),
    };
    let utilisation = if status.capacity_slots == 0 {
        0.0
    } else {
        status.running as f64 / status.capacity_slots as f64
    };
    if json {
        let workers: Vec<serde_json::Value> = status
            .workers
            .iter()
            .map(|w| {
                serde_json::json!({
                    "id": w.id,
                    "name": w.name,
                    "state": w.state,
                    "labels": w.labels,
                    "jobs": w.jobs,
                    "running": w.running,
                    "completed": w.completed,
                    "cpus": w.cpus,
                    "memory": w.memory,
                    "version": w.version,
                    "last_seen_ms": w.last_seen_ms,
                    "plugins": w.plugins,
                })
            })
            .collect();
        let env = Envelope::success(serde_json::json!({
            "queued": status.queued,
            "running": status.running,
            "capacity_slots": status.capacity_slots,
            "utilisation": utilisation,
            "requeued": status.requeued,
            "discarded": status.discarded,
            "completed": status.completed,
            "workers": workers,
        }));
        print_out(&env.to_line());
        return ExitCode::SUCCESS;
    }
    let mut out = format!(
        "queued {}  running {}  slots {}  utilisation {:.0}%  completed {}  requeued {}  discarded {}\n",
        status.queued,
        status.running,
        status.capacity_slots,
        utilisation * 100.0,
        status.completed,
        status.requeued,
        status.discarded
    );
    out.push_str(&format!(
        "{:>4}  {:<24}  {:<8}  {:>7}  {:>9}  {:>9}  LABELS  PLUGINS\n",
        "ID", "NAME", "STATE", "LOAD", "COMPLETED", "SEEN"
    ));
    for w in &status.workers {
        out.push_str(&format!(
            "{:>4}  {:<24}  {:<8}  {:>7}  {:>9}  {:>7}ms  {}  {}\n",
            w.id,
            w.name,
            w.state,
            format!("{}/{}", w.running, w.jobs),
            w.completed,
            w.last_seen_ms,
            w.labels.join(","),
            // NAME@DIGEST shortened to NAME@ and 12 digits.
            w.plugins
                .iter()
                .map(|p| p
                    .chars()
                    .take(p.find('@').map_or(p.len(), |i| i + 13))
                    .collect())
                .collect::<Vec<String>>()
                .join(",")
        ));
    }
    print_out(&out);
    ExitCode::SUCCESS
}
