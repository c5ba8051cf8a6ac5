//! Load forecast by Holt's double exponential smoothing: a smoothed level plus a smoothed
//! trend, so a rising load is met before it arrives and a one-tick spike is damped.

/// Why a forecast could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// A smoothing factor outside (0, 1].
    #[error("{name} {value}: a smoothing factor must be more than 0 and at most 1")]
    Factor {
        /// `alpha` or `beta`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
}

/// Holt's linear exponential smoothing of one series sampled at a regular tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Holt {
    alpha: f64,
    beta: f64,
    state: Option<(f64, f64)>,
}

impl Holt {
    /// A forecast with level factor `alpha` and trend factor `beta`, both in (0, 1]: higher
    /// follows the load faster, lower smooths more.
    pub fn new(alpha: f64, beta: f64) -> Result<Holt, ForecastError> {
        for (name, value) in [("alpha", alpha), ("beta", beta)] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(ForecastError::Factor { name, value });
            }
        }
        Ok(Holt {
            alpha,
            beta,
            state: None,
        })
    }

    /// Takes one observation (a negative or non-finite one counts as 0).
    pub fn observe(&mut self, value: f64) {
        let x = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        self.state = Some(match self.state {
            None => (x, 0.0),
            Some((level, trend)) => {
                let next = self.alpha * x + (1.0 - self.alpha) * (level + trend);
                let trend = self.beta * (next - level) + (1.0 - self.beta) * trend;
                (next, trend)
            }
        });
    }

    /// The value expected `ticks` ticks ahead (never negative; 0 before any observation).
    pub fn forecast(&self, ticks: f64) -> f64 {
        match self.state {
            None => 0.0,
            Some((level, trend)) => (level + ticks.max(0.0) * trend).max(0.0),
        }
    }

    /// The smoothed level now (0 before any observation).
    pub fn level(&self) -> f64 {
        self.state.map_or(0.0, |(l, _)| l.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_outside_zero_one_are_refused_by_name() {
        for (a, b, name) in [
            (0.0, 0.5, "alpha"),
            (1.5, 0.5, "alpha"),
            (0.5, -0.1, "beta"),
        ] {
            let e = Holt::new(a, b).unwrap_err();
            assert!(e.to_string().starts_with(name), "{e}");
        }
        assert!(Holt::new(f64::NAN, 0.5).is_err());
        assert!(Holt::new(1.0, 1.0).is_ok());
    }

    #[test]
    fn a_flat_load_is_forecast_flat() {
        let mut h = Holt::new(0.5, 0.3).unwrap();
        for _ in 0..50 {
            h.observe(6.0);
        }
        assert!((h.forecast(0.0) - 6.0).abs() < 1e-9);
        assert!((h.forecast(10.0) - 6.0).abs() < 1e-9);
    }

    #[test]
    fn a_linear_ramp_is_followed_with_its_trend() {
        let mut h = Holt::new(0.5, 0.5).unwrap();
        for t in 0..100 {
            h.observe(t as f64);
        }
        // Holt is exact on a line once converged: 99 now, 104 five ticks ahead.
        assert!(
            (h.forecast(5.0) - 104.0).abs() < 0.01,
            "{}",
            h.forecast(5.0)
        );
    }

    #[test]
    fn a_one_tick_spike_is_damped_and_fades() {
        let mut h = Holt::new(0.3, 0.1).unwrap();
        for _ in 0..20 {
            h.observe(2.0);
        }
        h.observe(40.0);
        let peak = h.forecast(0.0);
        assert!(peak < 40.0 * 0.5, "a spike is damped: {peak}");
        for _ in 0..60 {
            h.observe(2.0);
        }
        assert!((h.forecast(0.0) - 2.0).abs() < 0.2, "{}", h.forecast(0.0));
    }

    #[test]
    fn the_forecast_is_never_negative_and_bad_samples_count_as_zero() {
        let mut h = Holt::new(0.9, 0.9).unwrap();
        for x in [10.0, 5.0, 0.0, 0.0] {
            h.observe(x);
        }
        assert_eq!(h.forecast(20.0), 0.0);
        let mut h = Holt::new(0.5, 0.5).unwrap();
        h.observe(f64::NAN);
        h.observe(-3.0);
        assert_eq!(h.forecast(1.0), 0.0);
        assert_eq!(Holt::new(0.5, 0.5).unwrap().forecast(3.0), 0.0);
    }
}
