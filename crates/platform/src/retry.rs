//! Retrying a request's whole unit of work when storage fails transiently (busy, locked,
//! interrupted, unreachable), with jittered exponential backoff inside a bounded budget.
//!
//! A component instance serves one request, so sleeping blocks nothing else. What still fails
//! when the budget is spent is answered `503 storage_unavailable` with `Retry-After`.

use std::time::Duration;

use wasi::clocks::monotonic_clock;

use crate::ApiError;

/// Time after which no new attempt starts. One attempt can still take longer when a single
/// storage call stalls (Spin's SQLite `busy_timeout` is 5 s).
pub const BUDGET: Duration = Duration::from_millis(2_000);

/// The first backoff; each retry doubles it, up to [`MAX_DELAY`], and sleeps a random part of
/// it ("full jitter"), so retrying writers spread out instead of colliding again.
const FIRST_DELAY: Duration = Duration::from_millis(20);
const MAX_DELAY: Duration = Duration::from_millis(400);

/// The `attempt`-th backoff (0-based) before jitter.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_DELAY
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(MAX_DELAY)
}

/// A random part of `delay`, at least a tenth of it.
fn jittered(delay: Duration) -> Duration {
    let random = crate::clock::random::<2>().map_or(u16::MAX / 2, u16::from_le_bytes);
    let fraction = 0.1 + 0.9 * f64::from(random) / f64::from(u16::MAX);
    delay.mul_f64(fraction)
}

fn elapsed_since(start: u64) -> Duration {
    Duration::from_nanos(monotonic_clock::now().saturating_sub(start))
}

/// Runs `work` until it succeeds, fails for a reason other than transient storage, or the
/// budget is spent.
pub fn with_retries<T>(mut work: impl FnMut() -> Result<T, ApiError>) -> Result<T, ApiError> {
    let start = monotonic_clock::now();
    let mut attempt = 0u32;
    loop {
        match work() {
            Err(ApiError::StorageUnavailable {
                retry_after_secs,
                cause,
            }) => {
                let delay = jittered(backoff(attempt));
                if elapsed_since(start) + delay >= BUDGET {
                    return Err(ApiError::StorageUnavailable {
                        retry_after_secs,
                        cause: cause.context(format!(
                            "gave up after {} attempts in {:?}",
                            attempt + 1,
                            elapsed_since(start)
                        )),
                    });
                }
                eprintln!(
                    "storage unavailable (attempt {}): {cause:#}; retrying",
                    attempt + 1
                );
                monotonic_clock::subscribe_duration(
                    u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX),
                )
                .block();
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_millis(20));
        assert_eq!(backoff(1), Duration::from_millis(40));
        assert_eq!(backoff(3), Duration::from_millis(160));
        assert_eq!(backoff(5), MAX_DELAY);
        assert_eq!(backoff(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn the_jitter_stays_within_the_delay() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(100));
        }
    }
}
