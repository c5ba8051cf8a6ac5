//! An autoscaler simulation on a synthetic load trace: the real `Autoscaler` (Holt forecast
//! plus policy) against the best static pool.
//!
//! Trace (seeded, default seed 13): two days at 10 s ticks of demand in busy job slots: a
//! diurnal ramp (4 slots at midnight to 30 at noon), bursts (Poisson, one an hour on
//! average, 20 to 60 slots decaying over 2 to 10 minutes) and Gaussian noise (sd 2 slots).
//! Workers have 4 slots; a started worker takes 60 s to boot before it adds capacity; a
//! stopped one leaves at once. The model is fluid: demand a tick cannot serve is counted as
//! under-provisioned, not carried over as a backlog.
//!
//! Per tick, with `need` = demand / 4 workers and `have` the booted workers:
//! over-provisioned worker-seconds += max(0, have - need) x 10 s, under-provisioned
//! += max(0, need - have) x 10 s. Cost = over + K x under (K = 4: a waiting action costs
//! more than an idle worker). The best static pool is the size 0..=20 with the least cost
//! on the same trace (no boot delay). Usage: `autoscale [SEED]`.

use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sykli_runtime::remote::autoscale::controller::{AutoscaleConfig, Autoscaler};
use sykli_runtime::remote::autoscale::policy::{Decision, PolicyConfig};

const TICK: f64 = 10.0;
const DAY: f64 = 86_400.0;
const TICKS: usize = (2.0 * DAY / TICK) as usize;
const SLOTS: usize = 4;
const MAX_WORKERS: usize = 20;
const BOOT_TICKS: usize = 6;
const K: f64 = 4.0;

fn trace(seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bursts: Vec<(f64, f64, f64)> = Vec::new(); // (start, amplitude, time constant)
    let mut out = Vec::with_capacity(TICKS);
    for i in 0..TICKS {
        let t = i as f64 * TICK;
        if rng.random::<f64>() < TICK / 3600.0 {
            bursts.push((
                t,
                rng.random_range(20.0..60.0),
                rng.random_range(120.0..600.0),
            ));
        }
        let diurnal = 4.0 + 26.0 * (0.5 - 0.5 * (2.0 * std::f64::consts::PI * t / DAY).cos());
        let burst: f64 = bursts
            .iter()
            .map(|(s, a, tau)| a * (-(t - s) / tau).exp())
            .sum();
        bursts.retain(|(s, a, tau)| a * (-(t - s) / tau).exp() > 0.01);
        // Box-Muller: one standard normal from two uniforms.
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        let noise = 2.0 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        out.push((diurnal + burst + noise).max(0.0));
    }
    out
}

#[derive(Debug, Default)]
struct Outcome {
    over: f64,
    under: f64,
    events: usize,
}

impl Outcome {
    fn cost(&self) -> f64 {
        self.over + K * self.under
    }

    fn account(&mut self, demand: f64, have: usize) {
        let need = demand / SLOTS as f64;
        self.over += (have as f64 - need).max(0.0) * TICK;
        self.under += (need - have as f64).max(0.0) * TICK;
    }
}

fn fixed(demand: &[f64], size: usize) -> Outcome {
    let mut o = Outcome::default();
    for d in demand {
        o.account(*d, size);
    }
    o
}

fn simulate(demand: &[f64], config: &AutoscaleConfig) -> Result<Outcome> {
    let mut scaler = Autoscaler::new(config).context("autoscaler settings")?;
    let mut booted = config.policy.min;
    let mut booting: Vec<usize> = Vec::new(); // tick each becomes ready
    let mut o = Outcome::default();
    for (i, d) in demand.iter().enumerate() {
        booted += booting.iter().filter(|r| **r == i).count();
        booting.retain(|r| *r > i);
        let now = Duration::from_secs_f64(i as f64 * TICK);
        match scaler.observe(now, *d, booted + booting.len()).decision {
            Decision::Hold => {}
            Decision::Grow { from, to } => {
                o.events += 1;
                booting.extend(std::iter::repeat_n(i + BOOT_TICKS, to - from));
            }
            Decision::Shrink { from, to } => {
                o.events += 1;
                // Booting workers are cancelled first, then booted ones stop.
                let mut n = from - to;
                while n > 0 && booting.pop().is_some() {
                    n -= 1;
                }
                booted -= n;
            }
        }
        o.account(*d, booted);
    }
    Ok(o)
}

fn config(alpha: f64, beta: f64, up: f64, down: f64, step_down: usize) -> AutoscaleConfig {
    AutoscaleConfig {
        policy: PolicyConfig {
            min: 1,
            max: MAX_WORKERS,
            slots_per_worker: SLOTS,
            scale_up_at: up,
            scale_down_at: down,
            up_cooldown: Duration::from_secs(60),
            down_cooldown: Duration::from_secs(300),
            max_step_up: 4,
            max_step_down: step_down,
        },
        alpha,
        beta,
        tick: Duration::from_secs_f64(TICK),
        horizon: Duration::from_secs_f64(BOOT_TICKS as f64 * TICK),
    }
}

fn row(name: &str, o: &Outcome) {
    println!(
        "{name:<58} {:>10.0} {:>10.0} {:>10.0} {:>7}",
        o.over,
        o.under,
        o.cost(),
        o.events
    );
}

fn main() -> Result<()> {
    let seed = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .with_context(|| format!("SEED {s}: not a number"))?,
        None => 13,
    };
    let demand = trace(seed);
    let mean = demand.iter().sum::<f64>() / demand.len() as f64;
    let peak = demand.iter().cloned().fold(0.0, f64::max);
    println!(
        "trace: seed {seed}, {} ticks of {TICK} s (2 days), demand mean {mean:.1} slots, peak {peak:.1}; workers of {SLOTS} slots, boot {} s; cost = over + {K} x under (worker-seconds)",
        demand.len(),
        BOOT_TICKS as f64 * TICK
    );
    println!(
        "{:<58} {:>10} {:>10} {:>10} {:>7}",
        "pool", "over", "under", "cost", "events"
    );
    let (best, best_o) = (0..=MAX_WORKERS)
        .map(|s| (s, fixed(&demand, s)))
        .min_by(|a, b| a.1.cost().total_cmp(&b.1.cost()))
        .context("no static size")?;
    row(&format!("best static: {best} workers"), &best_o);
    let peak_size = (peak / SLOTS as f64).ceil() as usize;
    row(
        &format!("static for the peak: {peak_size} workers"),
        &fixed(&demand, peak_size),
    );
    for (alpha, beta, up, down, step) in [
        (0.5, 0.3, 0.8, 0.3, 1),
        (0.2, 0.1, 0.8, 0.3, 1),
        (0.8, 0.5, 0.8, 0.3, 1),
        (0.5, 0.01, 0.8, 0.3, 1),
        (0.5, 0.3, 0.9, 0.5, 1),
        (0.5, 0.3, 0.95, 0.7, 1),
        (0.5, 0.3, 0.95, 0.7, 4),
        (0.3, 0.1, 0.95, 0.7, 4),
        (0.5, 0.3, 1.0, 0.8, 4),
    ] {
        let o = simulate(&demand, &config(alpha, beta, up, down, step))?;
        row(
            &format!("autoscaler a={alpha} b={beta} up={up} down={down} step-down={step}"),
            &o,
        );
    }
    Ok(())
}
