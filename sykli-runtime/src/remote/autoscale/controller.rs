//! The control loop: every tick, the pool's demand (actions queued plus running) goes into
//! the forecast, the policy turns the forecast into a worker count, and the provider starts
//! or stops the difference. [`Autoscaler`] is the pure part (time passed in); [`run`] drives
//! it against a live pool.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::forecast::{ForecastError, Holt};
use super::policy::{Decision, Policy, PolicyConfig, PolicyError};
use super::provider::WorkerProvider;
use crate::remote::pool::scheduler::PoolLoad;

/// Why an autoscaler could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AutoscaleError {
    /// Bad smoothing factors.
    #[error(transparent)]
    Forecast(#[from] ForecastError),
    /// Bad policy settings.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A zero tick.
    #[error("autoscale tick 0: must be more than zero")]
    Tick,
}

/// The autoscaler's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscaleConfig {
    /// Sizes, thresholds, cooldowns and steps.
    pub policy: PolicyConfig,
    /// Level smoothing factor of the forecast, in (0, 1].
    pub alpha: f64,
    /// Trend smoothing factor of the forecast, in (0, 1].
    pub beta: f64,
    /// The load is read this often.
    pub tick: Duration,
    /// The policy sees the load forecast this far ahead (about a worker's start time).
    pub horizon: Duration,
}

impl Default for AutoscaleConfig {
    /// [`PolicyConfig::default`], alpha 0.5, beta 0.3, 1 s ticks, 2 s horizon.
    fn default() -> Self {
        AutoscaleConfig {
            policy: PolicyConfig::default(),
            alpha: 0.5,
            beta: 0.3,
            tick: Duration::from_secs(1),
            horizon: Duration::from_secs(2),
        }
    }
}

/// One tick's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The demand forecast at the horizon.
    pub forecast: f64,
    /// What the policy decided.
    pub decision: Decision,
}

/// Forecast plus policy, fed one observation per tick.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    holt: Holt,
    policy: Policy,
    horizon_ticks: f64,
}

impl Autoscaler {
    /// An autoscaler with checked settings.
    pub fn new(config: &AutoscaleConfig) -> Result<Autoscaler, AutoscaleError> {
        if config.tick.is_zero() {
            return Err(AutoscaleError::Tick);
        }
        Ok(Autoscaler {
            holt: Holt::new(config.alpha, config.beta)?,
            policy: Policy::new(config.policy.clone())?,
            horizon_ticks: config.horizon.as_secs_f64() / config.tick.as_secs_f64(),
        })
    }

    /// Observes `demand` (actions queued plus running) at `now` with `current` workers.
    pub fn observe(&mut self, now: Duration, demand: f64, current: usize) -> Step {
        self.holt.observe(demand);
        let forecast = self.holt.forecast(self.horizon_ticks);
        Step {
            forecast,
            decision: self.policy.decide(now, forecast, current),
        }
    }
}

/// Drives `provider` from `load` every `tick` until `stop` receives or is dropped. Errors of
/// the provider are logged and tried again at a later decision; the caller stops the
/// remaining workers afterwards.
pub fn run<P: WorkerProvider + ?Sized>(
    mut autoscaler: Autoscaler,
    provider: &mut P,
    mut load: impl FnMut() -> PoolLoad,
    tick: Duration,
    stop: &Receiver<()>,
    log: &dyn Fn(&str),
) {
    let origin = Instant::now();
    loop {
        let l = load();
        match provider.current() {
            Err(e) => log(&format!("autoscale: warning: {}", crate::error_chain(&e))),
            Ok(current) => {
                let demand = (l.queued + l.running) as f64;
                let step = autoscaler.observe(origin.elapsed(), demand, current);
                let applied = match step.decision {
                    Decision::Hold => Ok(()),
                    Decision::Grow { from, to } => {
                        log(&format!(
                            "autoscale: {from} -> {to} workers (queued {}, running {}, forecast {:.2})",
                            l.queued, l.running, step.forecast
                        ));
                        provider.start(to - from)
                    }
                    Decision::Shrink { from, to } => {
                        log(&format!(
                            "autoscale: {from} -> {to} workers (queued {}, running {}, forecast {:.2})",
                            l.queued, l.running, step.forecast
                        ));
                        provider.stop(from - to)
                    }
                };
                if let Err(e) = applied {
                    log(&format!("autoscale: warning: {}", crate::error_chain(&e)));
                }
            }
        }
        match stop.recv_timeout(tick) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_tick_and_bad_factors_are_refused() {
        let c = AutoscaleConfig {
            tick: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(Autoscaler::new(&c).unwrap_err(), AutoscaleError::Tick);
        let c = AutoscaleConfig {
            alpha: 2.0,
            ..Default::default()
        };
        assert!(
            Autoscaler::new(&c)
                .unwrap_err()
                .to_string()
                .contains("alpha 2")
        );
    }

    /// A provider that counts (the real one is tested with processes in sykli's tests).
    struct Counting(usize, Vec<Decision>);

    impl WorkerProvider for Counting {
        fn current(&mut self) -> Result<usize, super::super::provider::ProviderError> {
            Ok(self.0)
        }
        fn start(&mut self, n: usize) -> Result<(), super::super::provider::ProviderError> {
            self.1.push(Decision::Grow {
                from: self.0,
                to: self.0 + n,
            });
            self.0 += n;
            Ok(())
        }
        fn stop(&mut self, n: usize) -> Result<(), super::super::provider::ProviderError> {
            self.1.push(Decision::Shrink {
                from: self.0,
                to: self.0 - n,
            });
            self.0 -= n;
            Ok(())
        }
    }

    #[test]
    fn the_loop_applies_decisions_and_ends_when_told() {
        let config = AutoscaleConfig {
            tick: Duration::from_millis(1),
            policy: PolicyConfig {
                down_cooldown: Duration::ZERO,
                ..Default::default()
            },
            ..Default::default()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let mut provider = Counting(0, Vec::new());
        let mut ticks = 0;
        run(
            Autoscaler::new(&config).unwrap(),
            &mut provider,
            || {
                ticks += 1;
                if ticks == 400 {
                    let _ = tx.send(());
                }
                let queued = if ticks <= 20 { 10 } else { 0 };
                PoolLoad {
                    queued,
                    ..Default::default()
                }
            },
            config.tick,
            &rx,
            &|_| {},
        );
        assert_eq!(ticks, 400);
        assert!(
            matches!(provider.1[0], Decision::Grow { from: 0, .. }),
            "{:?}",
            provider.1
        );
        assert_eq!(provider.0, 0, "shrunk back when idle: {:?}", provider.1);
    }
}
