//! Exponential redelivery delays, computed client-side (the consumer has no
//! server-side `BackOff`, which would skew nak delays: NATS.md §1).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::config::BackoffConfig;

/// `delay(n) = min(initial · 2^(n-1), max)` for the failure of attempt `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

/// Jitter spreads a herd of retries: each delay is scaled by a factor in
/// `1 ± JITTER` (then capped at `max`).
const JITTER: f64 = 0.1;

impl Backoff {
    /// The policy of a `backoff = { initial, max }` setting.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            initial: config.initial,
            max: config.max,
        }
    }

    /// The delay after attempt `attempt` (1-based) failed, without jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        u32::try_from(factor)
            .ok()
            .and_then(|factor| self.initial.checked_mul(factor))
            .map_or(self.max, |delay| delay.min(self.max))
    }

    /// [`delay`](Self::delay) scaled by a random factor in 0.9–1.1, capped at `max`.
    pub fn jittered(&self, attempt: u32) -> Duration {
        let factor = 1.0 + JITTER * (2.0 * unit_random() - 1.0);
        self.delay(attempt).mul_f64(factor).min(self.max)
    }

    /// A delay a handler asked for, capped at `max`.
    pub fn requested(&self, after: Duration) -> Duration {
        after.min(self.max)
    }

    /// The largest delay.
    pub fn max(&self) -> Duration {
        self.max
    }
}

/// A uniform value in [0, 1): std's randomly seeded hasher is enough for
/// jitter and saves a dependency.
fn unit_random() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    // 53 random bits → [0, 1)
    #[allow(clippy::cast_precision_loss)]
    let value = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(initial_ms: u64, max_ms: u64) -> Backoff {
        Backoff::new(BackoffConfig {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
        })
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let backoff = policy(200, 1_000);
        let delays: Vec<u128> = (1..=6).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1_000, 1_000, 1_000]);
        assert_eq!(backoff.delay(0).as_millis(), 200);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(1));
        assert_eq!(
            policy(1_000, u64::MAX / 2).delay(200),
            Duration::from_millis(u64::MAX / 2)
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_the_cap() {
        let backoff = policy(1_000, 3_000);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let first = backoff.jittered(1).as_millis();
            assert!((900..=1_100).contains(&first), "{first}");
            seen.insert(first);
            let capped = backoff.jittered(10).as_millis();
            assert!((2_700..=3_000).contains(&capped), "{capped}");
        }
        assert!(seen.len() > 10, "jitter is not random: {seen:?}");
        assert_eq!(
            backoff.requested(Duration::from_secs(60)),
            Duration::from_secs(3)
        );
    }
}
