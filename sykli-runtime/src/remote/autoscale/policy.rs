//! The scaling policy: from forecast demand (actions queued plus running) and the workers
//! there are, how many workers there should be. Utilisation is demand over job slots; above
//! `scale_up_at` the pool grows, below `scale_down_at` it shrinks, each time to the size that
//! puts utilisation midway between the two (the gap is the hysteresis: after a step,
//! utilisation sits well inside the band, so noise around either threshold does not flap).
//! Growing waits `up_cooldown` after the last growth; shrinking waits `down_cooldown` after
//! the last change of either kind. Steps are bounded; `min`/`max` always hold (a pool below
//! min grows to it at once, though not faster than the up cooldown; one above max shrinks at
//! once). Pure: time is passed in.

use std::time::Duration;

/// Demand below this many actions counts as none (a decaying forecast never reaches 0).
pub const IDLE_DEMAND: f64 = 0.05;

/// Why a policy could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// `min` above `max`, or `max` zero.
    #[error("autoscale min {min} and max {max}: need min <= max and max >= 1")]
    Bounds {
        /// The minimum given.
        min: usize,
        /// The maximum given.
        max: usize,
    },
    /// Thresholds not ordered `0 < scale_down_at < scale_up_at`.
    #[error(
        "autoscale thresholds: need 0 < scale-down ({down}) < scale-up ({up}) (utilisation, 1.0 = every slot busy)"
    )]
    Thresholds {
        /// The scale-down threshold given.
        down: f64,
        /// The scale-up threshold given.
        up: f64,
    },
    /// A zero that must be at least one.
    #[error("autoscale {name} 0: must be at least 1")]
    Zero {
        /// `jobs`, `max-step-up` or `max-step-down`.
        name: &'static str,
    },
}

/// The policy's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Never fewer workers than this.
    pub min: usize,
    /// Never more workers than this.
    pub max: usize,
    /// Job slots of each worker.
    pub slots_per_worker: usize,
    /// Grow when forecast utilisation is above this.
    pub scale_up_at: f64,
    /// Shrink when forecast utilisation is below this.
    pub scale_down_at: f64,
    /// Time after a growth before the next growth.
    pub up_cooldown: Duration,
    /// Time after any change before a shrink.
    pub down_cooldown: Duration,
    /// At most this many workers started at once.
    pub max_step_up: usize,
    /// At most this many workers stopped at once.
    pub max_step_down: usize,
}

impl Default for PolicyConfig {
    /// 0 to 4 workers of 4 slots, grow above 80 %, shrink below 30 %, 5 s / 30 s cooldowns,
    /// steps of at most 4 up and 1 down.
    fn default() -> Self {
        PolicyConfig {
            min: 0,
            max: 4,
            slots_per_worker: 4,
            scale_up_at: 0.8,
            scale_down_at: 0.3,
            up_cooldown: Duration::from_secs(5),
            down_cooldown: Duration::from_secs(30),
            max_step_up: 4,
            max_step_down: 1,
        }
    }
}

impl PolicyConfig {
    /// Checks the settings, naming the one at fault.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max == 0 || self.min > self.max {
            return Err(PolicyError::Bounds {
                min: self.min,
                max: self.max,
            });
        }
        let (down, up) = (self.scale_down_at, self.scale_up_at);
        if !(down > 0.0 && down < up && up.is_finite()) {
            return Err(PolicyError::Thresholds { down, up });
        }
        for (name, v) in [
            ("jobs", self.slots_per_worker),
            ("max-step-up", self.max_step_up),
            ("max-step-down", self.max_step_down),
        ] {
            if v == 0 {
                return Err(PolicyError::Zero { name });
            }
        }
        Ok(())
    }

    /// The utilisation a step aims at: midway between the thresholds.
    pub fn target_utilisation(&self) -> f64 {
        (self.scale_up_at + self.scale_down_at) / 2.0
    }
}

/// What the policy decided at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep the workers there are.
    Hold,
    /// Start workers until there are `to`.
    Grow {
        /// Workers before.
        from: usize,
        /// Workers after.
        to: usize,
    },
    /// Stop workers (gracefully) until there are `to`.
    Shrink {
        /// Workers before.
        from: usize,
        /// Workers after.
        to: usize,
    },
}

/// The policy and the times of its last changes.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    last_up: Option<Duration>,
    last_change: Option<Duration>,
}

impl Policy {
    /// A policy with checked settings.
    pub fn new(config: PolicyConfig) -> Result<Policy, PolicyError> {
        config.validate()?;
        Ok(Policy {
            config,
            last_up: None,
            last_change: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Decides at time `now` (monotonic, from any origin) given the forecast `demand`
    /// (actions queued plus running) and the `current` workers; a change is recorded as
    /// made (the caller applies it).
    pub fn decide(&mut self, now: Duration, demand: f64, current: usize) -> Decision {
        let c = &self.config;
        let since =
            |t: Option<Duration>, cool: Duration| t.is_none_or(|t| now.saturating_sub(t) >= cool);
        let decision = if current < c.min {
            // Up to min in one step, but a worker that keeps dying is not restarted faster
            // than the up cooldown.
            if since(self.last_up, c.up_cooldown) {
                Decision::Grow {
                    from: current,
                    to: c.min,
                }
            } else {
                Decision::Hold
            }
        } else if current > c.max {
            Decision::Shrink {
                from: current,
                to: c.max,
            }
        } else {
            let demand = if demand.is_finite() && demand >= IDLE_DEMAND {
                demand
            } else {
                0.0
            };
            let slots = (current * c.slots_per_worker) as f64;
            let utilisation = if current == 0 {
                if demand > 0.0 { f64::INFINITY } else { 0.0 }
            } else {
                demand / slots
            };
            let per_worker = c.slots_per_worker as f64 * c.target_utilisation();
            let want = ((demand / per_worker).ceil() as usize).clamp(c.min, c.max);
            if utilisation > c.scale_up_at && want > current && since(self.last_up, c.up_cooldown) {
                Decision::Grow {
                    from: current,
                    to: want.min(current + c.max_step_up),
                }
            } else if utilisation < c.scale_down_at
                && want < current
                && since(self.last_change, c.down_cooldown)
            {
                Decision::Shrink {
                    from: current,
                    to: want.max(current.saturating_sub(c.max_step_down)),
                }
            } else {
                Decision::Hold
            }
        };
        match decision {
            Decision::Grow { .. } => {
                self.last_up = Some(now);
                self.last_change = Some(now);
            }
            Decision::Shrink { .. } => self.last_change = Some(now),
            Decision::Hold => {}
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn policy(min: usize, max: usize) -> Policy {
        Policy::new(PolicyConfig {
            min,
            max,
            ..PolicyConfig::default()
        })
        .unwrap()
    }

    /// Applies decisions: returns the workers after each tick (1 s apart) and the changes.
    fn run(p: &mut Policy, start: usize, demand: &[f64]) -> (Vec<usize>, usize) {
        let mut current = start;
        let mut changes = 0;
        let mut trace = Vec::new();
        for (t, d) in demand.iter().enumerate() {
            match p.decide(secs(t as u64), *d, current) {
                Decision::Hold => {}
                Decision::Grow { to, .. } | Decision::Shrink { to, .. } => {
                    current = to;
                    changes += 1;
                }
            }
            trace.push(current);
        }
        (trace, changes)
    }

    #[test]
    fn bad_settings_are_refused_naming_them() {
        let bad = [
            (
                PolicyConfig {
                    min: 3,
                    max: 2,
                    ..Default::default()
                },
                "min 3 and max 2",
            ),
            (
                PolicyConfig {
                    max: 0,
                    ..Default::default()
                },
                "max 0",
            ),
            (
                PolicyConfig {
                    scale_down_at: 0.9,
                    ..Default::default()
                },
                "scale-down (0.9)",
            ),
            (
                PolicyConfig {
                    scale_down_at: 0.0,
                    ..Default::default()
                },
                "scale-down (0)",
            ),
            (
                PolicyConfig {
                    slots_per_worker: 0,
                    ..Default::default()
                },
                "jobs 0",
            ),
            (
                PolicyConfig {
                    max_step_down: 0,
                    ..Default::default()
                },
                "max-step-down 0",
            ),
        ];
        for (c, needle) in bad {
            let e = Policy::new(c).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
    }

    #[test]
    fn a_flat_load_settles_once_and_holds() {
        let mut p = policy(0, 10);
        let (trace, changes) = run(&mut p, 0, &[12.0; 100]);
        // 12 actions aim at 6 workers (55 % of 4 slots); a step of at most 4 gives 4, where
        // utilisation is 75 %: inside the band, so it holds there.
        assert_eq!(trace[0], 4);
        assert_eq!(changes, 1, "{trace:?}");
        assert!(trace.iter().all(|w| *w == 4), "{trace:?}");
    }

    #[test]
    fn no_demand_at_min_zero_starts_nothing() {
        let mut p = policy(0, 4);
        let (trace, changes) = run(&mut p, 0, &[0.0, 0.01, 0.0, 0.04]);
        assert_eq!((trace, changes), (vec![0, 0, 0, 0], 0));
    }

    #[test]
    fn demand_from_zero_workers_grows_at_once() {
        let mut p = policy(0, 4);
        assert_eq!(p.decide(secs(0), 1.0, 0), Decision::Grow { from: 0, to: 1 });
    }

    #[test]
    fn a_spike_grows_by_bounded_steps_up_to_max() {
        let mut p = Policy::new(PolicyConfig {
            max: 5,
            max_step_up: 2,
            up_cooldown: secs(2),
            ..Default::default()
        })
        .unwrap();
        let (trace, _) = run(&mut p, 0, &[1000.0; 10]);
        assert_eq!(trace, vec![2, 2, 4, 4, 5, 5, 5, 5, 5, 5]);
    }

    #[test]
    fn min_is_restored_at_once_and_max_enforced_without_cooldown() {
        let mut p = policy(2, 3);
        assert_eq!(p.decide(secs(0), 0.0, 0), Decision::Grow { from: 0, to: 2 });
        // A worker that died at once is not restarted within the up cooldown (5 s).
        assert_eq!(p.decide(secs(1), 0.0, 1), Decision::Hold);
        assert_eq!(p.decide(secs(5), 0.0, 1), Decision::Grow { from: 1, to: 2 });
        // Right after that growth, a pool above max still shrinks (cooldowns do not apply).
        assert_eq!(
            p.decide(secs(0), 0.0, 7),
            Decision::Shrink { from: 7, to: 3 }
        );
        // And idle never goes below min.
        let (trace, _) = run(&mut p, 3, &[0.0; 200]);
        assert_eq!(*trace.last().unwrap(), 2);
    }

    #[test]
    fn cooldowns_are_respected_separately() {
        let mut p = Policy::new(PolicyConfig {
            max: 10,
            max_step_up: 1,
            max_step_down: 1,
            up_cooldown: secs(5),
            down_cooldown: secs(20),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            p.decide(secs(0), 40.0, 1),
            Decision::Grow { from: 1, to: 2 }
        );
        assert_eq!(p.decide(secs(4), 40.0, 2), Decision::Hold, "up cooldown");
        assert_eq!(
            p.decide(secs(5), 40.0, 2),
            Decision::Grow { from: 2, to: 3 }
        );
        // Load gone: no shrink until 20 s after the last change (at 5 s).
        assert_eq!(p.decide(secs(24), 0.0, 3), Decision::Hold, "down cooldown");
        assert_eq!(
            p.decide(secs(25), 0.0, 3),
            Decision::Shrink { from: 3, to: 2 }
        );
        assert_eq!(p.decide(secs(44), 0.0, 2), Decision::Hold);
        // A shrink does not hold back growth.
        assert_eq!(
            p.decide(secs(26), 40.0, 2),
            Decision::Grow { from: 2, to: 3 }
        );
    }

    #[test]
    fn noise_around_the_scale_up_threshold_does_not_flap() {
        // 2 workers x 4 slots: scale-up at 6.4 actions. Noise of +-0.8 around it.
        let mut p = Policy::new(PolicyConfig {
            max: 10,
            up_cooldown: secs(1),
            down_cooldown: secs(1),
            ..Default::default()
        })
        .unwrap();
        let noise: Vec<f64> = (0..500)
            .map(|i| 6.4 + 0.8 * ((i * 7919 % 17) as f64 / 8.0 - 1.0))
            .collect();
        let (trace, changes) = run(&mut p, 2, &noise);
        assert_eq!(changes, 1, "one growth, then steady: {trace:?}");
        assert_eq!(*trace.last().unwrap(), 4);
    }

    #[test]
    fn noise_around_the_scale_down_threshold_does_not_flap() {
        // 4 workers x 4 slots: scale-down below 4.8 actions; noise of +-1 around it.
        let mut p = Policy::new(PolicyConfig {
            max: 10,
            up_cooldown: secs(1),
            down_cooldown: secs(1),
            max_step_down: 4,
            ..Default::default()
        })
        .unwrap();
        let noise: Vec<f64> = (0..500)
            .map(|i| 4.8 + ((i * 104_729 % 13) as f64 / 6.0 - 1.0))
            .collect();
        let (trace, changes) = run(&mut p, 4, &noise);
        assert!(changes <= 2, "{changes} changes: {trace:?}");
    }

    #[test]
    fn a_sawtooth_is_followed_without_a_change_every_tick() {
        let mut p = Policy::new(PolicyConfig {
            max: 8,
            up_cooldown: secs(2),
            down_cooldown: secs(10),
            ..Default::default()
        })
        .unwrap();
        // Ramps 0 -> 20 over 40 ticks, drops to 0, four times.
        let saw: Vec<f64> = (0..160).map(|t| (t % 40) as f64 / 2.0).collect();
        let (trace, changes) = run(&mut p, 0, &saw);
        assert!(trace.iter().all(|w| *w <= 8));
        assert!(trace.contains(&8), "reaches max on the peaks: {trace:?}");
        assert!(changes < 40, "{changes} changes: {trace:?}");
    }
}
