//! Signed timestamps and the replay window around `now`.
//!
//! Arithmetic is done in `i128` so that no value a header can carry (at most 19
//! digits) and no `SystemTime` can overflow or panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::error::Rejection;

/// The scheme default where a timestamp is signed: five minutes, as Stripe,
/// Standard Webhooks and Slack ship it.
pub(crate) const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// 19 digits always fit in a `u64`; longer is absurd for a unix time.
const MAX_DIGITS: usize = 19;

/// The unit a provider writes its timestamp in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TimestampUnit {
    /// Unix seconds.
    #[default]
    #[serde(rename = "s")]
    Seconds,
    /// Unix milliseconds (Linear's `webhookTimestamp`).
    #[serde(rename = "ms")]
    Millis,
}

impl TimestampUnit {
    fn millis(self) -> i128 {
        match self {
            Self::Seconds => 1000,
            Self::Millis => 1,
        }
    }

    /// Whole units in `duration` (rounded down).
    fn count(self, duration: Duration) -> i128 {
        match self {
            Self::Seconds => i128::from(duration.as_secs()),
            Self::Millis => i128::try_from(duration.as_millis()).unwrap_or(i128::MAX),
        }
    }

    /// `unix_seconds` written in this unit (saturating; used by the signer).
    pub(crate) fn scale_unix_seconds(self, unix_seconds: u64) -> u64 {
        match self {
            Self::Seconds => unix_seconds,
            Self::Millis => unix_seconds.saturating_mul(1000),
        }
    }
}

/// Parses a timestamp written as plain ASCII digits (no sign, no spaces, no
/// fraction), as every supported provider sends it.
pub(crate) fn parse(text: &str) -> Result<u64, Rejection> {
    if text.is_empty() || text.len() > MAX_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::MalformedTimestamp);
    }
    text.parse().map_err(|_| Rejection::MalformedTimestamp)
}

/// How far a signed timestamp may be from `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Largest accepted distance; a distance equal to it still passes
    /// (the libraries reject only `> tolerance`).
    pub(crate) tolerance: Duration,
    /// Standard Webhooks and Slack also reject timestamps too far ahead; Stripe
    /// checks only the age.
    pub(crate) reject_future: bool,
    pub(crate) unit: TimestampUnit,
}

impl Window {
    /// A window over unix-seconds timestamps.
    pub(crate) fn seconds(tolerance: Duration, reject_future: bool) -> Self {
        Self {
            tolerance,
            reject_future,
            unit: TimestampUnit::Seconds,
        }
    }

    /// Accepts `timestamp` (in `self.unit`) when it lies within the window around
    /// `now`. `now` is rounded down to the unit first, as the libraries do.
    pub(crate) fn check(&self, timestamp: u64, now: SystemTime) -> Result<(), Rejection> {
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(since) => self.unit.count(since),
            Err(before) => -self.unit.count(before.duration()),
        };
        let age_ms = (now - i128::from(timestamp)) * self.unit.millis();
        let tolerance_ms = i128::try_from(self.tolerance.as_millis()).unwrap_or(i128::MAX);
        if age_ms > tolerance_ms {
            Err(Rejection::StaleTimestamp)
        } else if self.reject_future && -age_ms > tolerance_ms {
            Err(Rejection::FutureTimestamp)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    const BOTH: Window = Window {
        tolerance: DEFAULT_TOLERANCE,
        reject_future: true,
        unit: TimestampUnit::Seconds,
    };

    #[test]
    fn parse_accepts_digits_only() {
        assert_eq!(parse("1760000000"), Ok(1_760_000_000));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("9999999999999999999"), Ok(9_999_999_999_999_999_999));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.5",
            "1e9",
            "hello",
            "99999999999999999999",
            "١٢",
        ] {
            assert_eq!(parse(bad), Err(Rejection::MalformedTimestamp), "{bad:?}");
        }
    }

    #[test]
    fn boundaries_are_inclusive() {
        let now = at(1_760_000_000);
        assert_eq!(BOTH.check(1_760_000_000 - 300, now), Ok(()));
        assert_eq!(
            BOTH.check(1_760_000_000 - 301, now),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(BOTH.check(1_760_000_000 + 300, now), Ok(()));
        assert_eq!(
            BOTH.check(1_760_000_000 + 301, now),
            Err(Rejection::FutureTimestamp)
        );
        let age_only = Window {
            reject_future: false,
            ..BOTH
        };
        assert_eq!(age_only.check(1_760_000_000 + 100_000, now), Ok(()));
    }

    #[test]
    fn subsecond_now_is_rounded_down() {
        let now = at(1_760_000_000) + Duration::from_millis(999);
        assert_eq!(BOTH.check(1_760_000_000 - 300, now), Ok(()));
    }

    #[test]
    fn millis() {
        let window = Window {
            tolerance: Duration::from_secs(60),
            reject_future: true,
            unit: TimestampUnit::Millis,
        };
        let now = at(1_760_000_000);
        assert_eq!(window.check(1_759_999_940_000, now), Ok(()));
        assert_eq!(
            window.check(1_759_999_939_999, now),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            window.check(1_760_000_060_001, now),
            Err(Rejection::FutureTimestamp)
        );
    }

    #[test]
    fn absurd_values_do_not_overflow() {
        let huge = Window {
            tolerance: Duration::MAX,
            ..BOTH
        };
        assert_eq!(huge.check(u64::MAX, at(0)), Ok(()));
        assert_eq!(BOTH.check(u64::MAX, at(0)), Err(Rejection::FutureTimestamp));
        assert_eq!(BOTH.check(0, at(1 << 40)), Err(Rejection::StaleTimestamp));
        let before_epoch = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(BOTH.check(0, before_epoch), Ok(()));
        let millis = Window {
            unit: TimestampUnit::Millis,
            ..BOTH
        };
        assert_eq!(
            millis.check(u64::MAX, at(1 << 40)),
            Err(Rejection::FutureTimestamp)
        );
    }
}
