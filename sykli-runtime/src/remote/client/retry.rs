//! Backoff with jitter for calls a server may refuse for a while (UNAVAILABLE,
//! RESOURCE_EXHAUSTED): a bounded number of attempts, delays growing to a cap.

use std::future::Future;
use std::time::Duration;

/// Attempts of a unary call before its error is returned.
pub(crate) const UNARY_ATTEMPTS: u32 = 6;
/// First delay; each later one doubles, up to [`MAX_DELAY`].
const BASE_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(2);

/// Whether a status means "try again later".
pub(crate) fn transient(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted
    )
}

/// The delay before attempt `attempt + 1` (1-based `attempt`): exponential with "full
/// jitter" between half and all of it.
pub(crate) fn delay(attempt: u32) -> Duration {
    let exp = BASE_DELAY
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(10))
        .min(MAX_DELAY);
    let half = exp / 2;
    let jitter = rand::random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// Runs `call` until it succeeds, fails with a non-transient status, or
/// [`UNARY_ATTEMPTS`] attempts failed.
pub(crate) async fn unary<T, F, Fut>(_what: &str, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(s) if transient(s.code()) && attempt < UNARY_ATTEMPTS => {
                tokio::time::sleep(delay(attempt)).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_stay_under_the_cap() {
        for attempt in 1..20 {
            let d = delay(attempt);
            assert!(d <= MAX_DELAY, "{attempt}: {d:?}");
            assert!(d >= BASE_DELAY / 2, "{attempt}: {d:?}");
        }
        assert!(delay(1) <= BASE_DELAY);
    }
}
