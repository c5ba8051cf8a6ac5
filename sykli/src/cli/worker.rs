//! `sykli worker`: serves the Remote Execution API v2 (Capabilities, CAS, ByteStream,
//! ActionCache, Execution, Operations) and runs actions with the local executors.
//!
//! Once it serves it prints exactly one line to stdout, `sykli worker: listening on
//! grpc://IP:PORT` (`grpcs://` with TLS), so callers can bind port 0. SIGTERM or SIGINT
//! stops it cleanly: running actions are stopped (their process groups killed) first; a
//! second signal kills them without waiting out the grace period.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Parser};
use sykli_runtime::remote::auth::Token;
use sykli_runtime::remote::bots::{self, BotConfig, BotEvent};
use sykli_runtime::remote::client::ClientOptions;
use sykli_runtime::remote::endpoint::Endpoint;
use sykli_runtime::remote::pool::join::{self, JoinConfig, JoinEvent};
use sykli_runtime::remote::server::{TlsFiles, WorkerConfig, bind};
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use super::print_out;

/// Arguments of `sykli worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Address to listen on, e.g. 127.0.0.1:8980 (port 0 picks a free one); not with
    /// --join.
    #[arg(long, value_name = "ADDR", required_unless_present = "join")]
    pub listen: Option<String>,
    /// Join the pool of this `sykli serve` (grpc://HOST:PORT or grpcs://HOST:PORT) over one
    /// outbound stream instead of listening: no port to open, works behind NAT.
    #[arg(long, value_name = "URL", conflicts_with_all = ["listen", "bot_of", "tls_cert"])]
    pub join: Option<String>,
    /// Store directory for the CAS and action cache [default: <cache dir>/sykli/worker].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Run at most N actions at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Offer a platform property K=V (repeatable); OSFamily and ISA of this host are always
    /// offered, container-image when a Docker engine answers.
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require this bearer token on every call (else SYKLI_TOKEN when set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Also take work as a bot of this Remote Workers API scheduler (BuildGrid's Bots
    /// service; grpc://HOST:PORT or grpcs://HOST:PORT), besides serving --listen.
    #[arg(long = "bot-of", value_name = "URL")]
    pub bot_of: Option<String>,
    /// Run host actions as plain processes instead of in the sandbox (by default each
    /// action sees only its input root, the host's tools read-only and a private /tmp; see
    /// docs/sandbox.md).
    #[arg(long)]
    pub no_sandbox: bool,
}

/// `sykli worker` as a pipeline binary (`ci worker ...`) parses it: the same arguments.
#[derive(Debug, Parser)]
#[command(
    name = "worker",
    about = "Serve the Remote Execution API and run actions"
)]
struct WorkerCli {
    #[command(flatten)]
    args: WorkerArgs,
    /// Errors as one JSON envelope.
    #[arg(long)]
    json: bool,
}

/// Runs `sykli worker ...` from a pipeline binary's arguments (`args` starts with `worker`).
pub fn worker_main_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = WorkerCli::parse_from(args);
    worker_command(&cli.args, cli.json)
}

/// Runs `sykli worker`: exit 0 after a clean stop, 2 on bad usage, 1 when the worker could
/// not start or serve (`worker_failed`).
pub fn worker_command(args: &WorkerArgs, json: bool) -> ExitCode {
    if let Some(url) = &args.join {
        return join_command(args, url, json);
    }
    let config = match config_of(args) {
        Ok(c) => c,
        Err(e) => return CliError::usage("usage", e).report(json),
    };
    let runtime = match CliError::runtime(true) {
        Ok(rt) => rt,
        Err(e) => return e.report(json),
    };
    let bot = match bot_config_of(args, &config) {
        Ok(b) => b,
        Err(e) => return CliError::usage("usage", e).report(json),
    };
    match runtime.block_on(serve(config, bot)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => CliError::failed("worker_failed", e).report(json),
    }
}

fn config_of(args: &WorkerArgs) -> anyhow::Result<WorkerConfig> {
    let text = args.listen.as_deref().unwrap_or("127.0.0.1:0");
    let listen: SocketAddr = text
        .to_socket_addrs()
        .with_context(|| format!("--listen {text}: not an address (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| anyhow!("--listen {text}: the name resolves to no address"))?;
    let store = match &args.store {
        Some(s) => s.clone(),
        None => sykli_runtime::cache::store::Store::default_root()
            .context("no --store given and no cache directory found")?
            .join("worker"),
    };
    let mut config = WorkerConfig::new(listen, store);
    if let Some(jobs) = args.jobs {
        if jobs == 0 {
            return Err(anyhow!("--jobs 0: at least one job must be allowed"));
        }
        config.jobs = jobs;
    }
    for label in &args.labels {
        let Some((k, v)) = label.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(anyhow!("--label {label}: expected K=V"));
        };
        config.labels.push((k.to_owned(), v.to_owned()));
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    // Actions never see it: they get only PATH, HOME and their Command's environment.
    config.token = Token::load(args.token_file.as_deref())?;
    config.sandbox &= !args.no_sandbox;
    Ok(config)
}

/// The bot settings of `--bot-of URL` (its work runs in a `bots/` folder of the store).
fn bot_config_of(args: &WorkerArgs, config: &WorkerConfig) -> anyhow::Result<Option<BotConfig>> {
    let Some(url) = &args.bot_of else {
        return Ok(None);
    };
    let endpoint = Endpoint::parse(url).with_context(|| format!("--bot-of {url}"))?;
    Ok(Some(BotConfig {
        scheduler: ClientOptions::new(endpoint),
        store: config.store.join("bots"),
        labels: config.labels.clone(),
        kill_grace: config.kill_grace,
        sandbox: config.sandbox,
    }))
}

async fn serve(config: WorkerConfig, bot: Option<BotConfig>) -> anyhow::Result<()> {
    let worker = bind(config).await?;
    let (shutdown, escalate) = (CancellationToken::new(), CancellationToken::new());
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("failed to watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("failed to watch SIGINT")?;
        let (stop, kill) = (shutdown.clone(), escalate.clone());
        // The first signal stops gracefully; a second one kills running actions at once.
        tokio::spawn(async move {
            for token in [stop, kill] {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                token.cancel();
            }
        });
    }
    print_out(&format!("sykli worker: listening on {}\n", worker.url()));
    let bot = bot.map(|config| {
        let stop = shutdown.clone();
        let scheduler = config.scheduler.endpoint.to_string();
        tokio::spawn(async move {
            let result = bots::run(config, stop.clone(), move |event| match event {
                BotEvent::Joined { session } => {
                    eprintln!("sykli worker: bot of {scheduler}: session {session}");
                }
                BotEvent::Ran { lease, outcome } => match outcome {
                    Ok(code) => eprintln!("sykli worker: bot: lease {lease} ran, exit {code}"),
                    Err(e) => eprintln!("sykli worker: bot: lease {lease} failed: {e}"),
                },
                BotEvent::Left {
                    session,
                    error: None,
                } => {
                    eprintln!("sykli worker: bot: left session {session}");
                }
                BotEvent::Left {
                    session,
                    error: Some(e),
                } => {
                    eprintln!("sykli worker: bot: leaving session {session} failed: {e}");
                }
            })
            .await;
            // A bot that cannot go on stops the worker: it was asked to be one.
            stop.cancel();
            result
        })
    });
    worker.serve_until(shutdown, escalate).await?;
    if let Some(bot) = bot {
        bot.await.context("the bot task failed")??;
    }
    Ok(())
}

/// `sykli worker --join URL`: joins the pool, runs its leases, drains on SIGTERM (a second
/// signal kills running actions). Prints `sykli worker: joined URL as worker N` to stdout
/// when first in the pool; exit 1 (`worker_failed`) when serve stays unreachable.
fn join_command(args: &WorkerArgs, url: &str, json: bool) -> ExitCode {
    let prepared = (|| -> anyhow::Result<JoinConfig> {
        let config = config_of(args)?;
        let endpoint = Endpoint::parse(url).with_context(|| format!("--join {url}"))?;
        let mut serve = ClientOptions::new(endpoint);
        serve.token = config.token.clone();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".into());
        Ok(JoinConfig {
            serve,
            store: config.store.clone(),
            labels: config.labels.clone(),
            jobs: config.jobs,
            kill_grace: config.kill_grace,
            name: format!("{host}:{}", std::process::id()),
        })
    })();
    let config = match prepared {
        Ok(c) => c,
        Err(e) => return CliError::usage("usage", e).report(json),
    };
    let runtime = match CliError::runtime(true) {
        Ok(rt) => rt,
        Err(e) => return e.report(json),
    };
    match runtime.block_on(join(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => CliError::failed("worker_failed", e).report(json),
    }
}

async fn join(config: JoinConfig) -> anyhow::Result<()> {
    let (drain, escalate) = (CancellationToken::new(), CancellationToken::new());
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("failed to watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("failed to watch SIGINT")?;
        let (stop, kill) = (drain.clone(), escalate.clone());
        // The first signal drains; a second one kills running actions at once.
        tokio::spawn(async move {
            for token in [stop, kill] {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                token.cancel();
            }
        });
    }
    let url = config.serve.endpoint.to_string();
    let mut announced = false;
    join::run(config, drain, escalate, move |event| match event {
        JoinEvent::Joined { worker } => {
            if !announced {
                announced = true;
                print_out(&format!("sykli worker: joined {url} as worker {worker}\n"));
            }
            eprintln!("sykli worker: joined {url} as worker {worker}");
        }
        JoinEvent::Ran { lease, outcome } => match outcome {
            Ok(code) => eprintln!("sykli worker: lease {lease} ran, exit {code}"),
            Err(e) => eprintln!("sykli worker: lease {lease} failed: {e}"),
        },
        JoinEvent::Cancelled { lease, reason } => {
            eprintln!("sykli worker: lease {lease} cancelled: {reason}");
        }
        JoinEvent::Lost { error } => {
            eprintln!("sykli worker: lost serve ({error}); joining again");
        }
        JoinEvent::Drained => eprintln!("sykli worker: drained; leaving"),
    })
    .await?;
    Ok(())
}
