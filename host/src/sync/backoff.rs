//! When a transient failure is tried again: exponential backoff with
//! jitter, never sooner than the store asked.

use std::time::Duration;

/// The time (ms since the epoch) of the next attempt after `attempts`
/// failures. `jitter` in [0, 1) spreads retries of a batch over ±50 %, so
/// that a recovering store is not hit by all of them at once.
pub fn retry_at(
    now_ms: i64,
    attempts: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> i64 {
    let exponent = attempts.saturating_sub(1).min(30);
    let delay = base.saturating_mul(1u32 << exponent).min(max);
    let spread = delay.mul_f64(0.5 + jitter.clamp(0.0, 1.0)).min(max);
    let delay = match retry_after {
        Some(asked) if asked > spread => asked,
        _ => spread,
    };
    now_ms.saturating_add(delay.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(30);
    const MAX: Duration = Duration::from_secs(3600);

    #[test]
    fn delays_double_within_the_jitter_band_up_to_the_cap() {
        for attempts in 1..=12u32 {
            let nominal = (30_000i64 << (attempts - 1)).min(3_600_000);
            let low = retry_at(0, attempts, BASE, MAX, None, 0.0);
            let high = retry_at(0, attempts, BASE, MAX, None, 0.999_999);
            assert_eq!(low, nominal / 2, "attempt {attempts}");
            let expected_high = (nominal * 3 / 2).min(3_600_000);
            assert!(
                high <= expected_high && high >= expected_high - 10,
                "attempt {attempts}: {high}"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(
            retry_at(1_000, 1, BASE, MAX, Some(Duration::from_secs(120)), 0.0),
            121_000
        );
        assert_eq!(
            retry_at(0, 1, BASE, MAX, Some(Duration::from_secs(1)), 0.0),
            15_000
        );
    }
}
