//! `sykli serve --autoscale-min N --autoscale-max M`: local `sykli worker --join` processes
//! started and stopped with the pool's load (see docs/pool.md, "Autoscaler").

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use sykli_runtime::remote::auth::Token;
use sykli_runtime::remote::autoscale::controller::{self, AutoscaleConfig, Autoscaler};
use sykli_runtime::remote::autoscale::local::{LocalConfig, LocalProcesses};
use sykli_runtime::remote::autoscale::policy::PolicyConfig;
use sykli_runtime::remote::pool::scheduler::PoolScheduler;

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration \"{s}\": {e}"))
}

/// The autoscaler's flags of `sykli serve`.
#[derive(Debug, Clone, Args)]
pub struct AutoscaleArgs {
    /// Autoscale local `sykli worker --join` processes: never fewer than N (needs
    /// --autoscale-max).
    #[arg(long, value_name = "N", requires = "autoscale_max")]
    pub autoscale_min: Option<usize>,
    /// Autoscale: never more than M workers (needs --autoscale-min).
    #[arg(long, value_name = "M", requires = "autoscale_min")]
    pub autoscale_max: Option<usize>,
    /// Autoscale: --jobs of each started worker.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub autoscale_jobs: usize,
    /// Autoscale: --label K=V of each started worker (repeatable).
    #[arg(long = "autoscale-label", value_name = "K=V")]
    pub autoscale_labels: Vec<String>,
    /// Autoscale: grow when forecast utilisation ((queued + running) / slots) is above this.
    #[arg(long, value_name = "U", default_value_t = 0.8)]
    pub autoscale_up: f64,
    /// Autoscale: shrink when forecast utilisation is below this.
    #[arg(long, value_name = "U", default_value_t = 0.3)]
    pub autoscale_down: f64,
    /// Autoscale: time after a growth before the next one.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub autoscale_up_cooldown: Duration,
    /// Autoscale: time after any change before a shrink.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub autoscale_down_cooldown: Duration,
    /// Autoscale: at most this many workers started at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub autoscale_max_step_up: usize,
    /// Autoscale: at most this many workers stopped at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub autoscale_max_step_down: usize,
    /// Autoscale: level smoothing factor of the load forecast, in (0, 1].
    #[arg(long, value_name = "A", default_value_t = 0.5)]
    pub autoscale_alpha: f64,
    /// Autoscale: trend smoothing factor of the load forecast, in (0, 1].
    #[arg(long, value_name = "B", default_value_t = 0.3)]
    pub autoscale_beta: f64,
    /// Autoscale: the load is read this often.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub autoscale_tick: Duration,
    /// Autoscale: decide on the load forecast this far ahead.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    pub autoscale_horizon: Duration,
    /// Autoscale: a stopped (draining) worker still running after this long is killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub autoscale_stop_grace: Duration,
}

/// A checked autoscaler, ready to start once serve is bound.
pub struct Setup {
    config: AutoscaleConfig,
    autoscaler: Autoscaler,
    local: LocalConfig,
}

/// The autoscaler `args` ask for (`None` without --autoscale-min/max); bad values are
/// named.
pub fn setup_of(
    args: &AutoscaleArgs,
    store: &Path,
    token: Option<&Token>,
) -> anyhow::Result<Option<Setup>> {
    let (Some(min), Some(max)) = (args.autoscale_min, args.autoscale_max) else {
        return Ok(None);
    };
    for label in &args.autoscale_labels {
        if label.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            return Err(anyhow!("--autoscale-label {label}: expected K=V"));
        }
    }
    let config = AutoscaleConfig {
        policy: PolicyConfig {
            min,
            max,
            slots_per_worker: args.autoscale_jobs,
            scale_up_at: args.autoscale_up,
            scale_down_at: args.autoscale_down,
            up_cooldown: args.autoscale_up_cooldown,
            down_cooldown: args.autoscale_down_cooldown,
            max_step_up: args.autoscale_max_step_up,
            max_step_down: args.autoscale_max_step_down,
        },
        alpha: args.autoscale_alpha,
        beta: args.autoscale_beta,
        tick: args.autoscale_tick,
        horizon: args.autoscale_horizon,
    };
    let autoscaler = Autoscaler::new(&config).context("--autoscale-* flags")?;
    let program = std::env::current_exe()
        .context("autoscale: cannot find the sykli executable to start workers")?;
    let local = LocalConfig {
        program,
        join: String::new(),
        jobs: args.autoscale_jobs,
        labels: args.autoscale_labels.clone(),
        store_root: store.join("autoscale"),
        token: token.map(|t| t.expose().to_owned()),
        stop_grace: args.autoscale_stop_grace,
        log: Arc::new(|line| eprintln!("sykli serve: {line}")),
    };
    Ok(Some(Setup {
        config,
        autoscaler,
        local,
    }))
}

/// The running autoscaler: its thread and the way to stop it.
pub struct Running {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

/// Starts the control loop on its own thread (the workers' parent-death signal is tied to
/// it), its workers joining `url` (an unspecified listen address is joined over loopback).
pub fn start(setup: Setup, url: &str, scheduler: Arc<PoolScheduler>) -> anyhow::Result<Running> {
    let mut local = setup.local;
    local.join = url
        .replace("://0.0.0.0:", "://127.0.0.1:")
        .replace("://[::]:", "://[::1]:");
    let (stop, rx) = std::sync::mpsc::channel();
    let log = local.log.clone();
    let tick = setup.config.tick;
    let grace = local.stop_grace;
    let autoscaler = setup.autoscaler;
    let thread = std::thread::Builder::new()
        .name("autoscale".into())
        .spawn(move || {
            let mut provider = LocalProcesses::new(local);
            controller::run(
                autoscaler,
                &mut provider,
                || scheduler.load(),
                tick,
                &rx,
                &*log,
            );
            provider.shutdown(grace);
        })
        .context("autoscale: failed to start its thread")?;
    Ok(Running { stop, thread })
}

impl Running {
    /// Stops the loop and drains the workers when `shutdown` is cancelled (serve is still
    /// answering for a moment then, so running actions can report).
    pub fn stop_on(&self, shutdown: tokio_util::sync::CancellationToken) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            let _ = stop.send(());
        });
    }

    /// Stops the loop and its workers (drained, killed after the stop grace); returns when
    /// they are reaped.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}
