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
    /// An RFC 3339 date-time with offset (Twitch, Box), compared to the millisecond.
    #[serde(rename = "rfc3339")]
    Rfc3339,
}

impl TimestampUnit {
    fn millis(self) -> i128 {
        match self {
            Self::Seconds => 1000,
            Self::Millis | Self::Rfc3339 => 1,
        }
    }

    /// Whole units in `duration` (rounded down).
    fn count(self, duration: Duration) -> i128 {
        match self {
            Self::Seconds => i128::from(duration.as_secs()),
            Self::Millis | Self::Rfc3339 => {
                i128::try_from(duration.as_millis()).unwrap_or(i128::MAX)
            }
        }
    }

    /// `unix_seconds` written in this unit (saturating; used by the signer).
    pub(crate) fn scale_unix_seconds(self, unix_seconds: u64) -> u64 {
        match self {
            Self::Seconds => unix_seconds,
            Self::Millis | Self::Rfc3339 => unix_seconds.saturating_mul(1000),
        }
    }

    /// Parses `text` written in this unit into the number [`Window::check`] takes
    /// (seconds, or milliseconds for `ms` and RFC 3339).
    pub(crate) fn parse(self, text: &str) -> Result<u64, Rejection> {
        match self {
            Self::Seconds | Self::Millis => parse(text),
            Self::Rfc3339 => parse_rfc3339_millis(text),
        }
    }

    /// How the signer writes `unix_seconds` in this unit.
    pub(crate) fn format_unix_seconds(self, unix_seconds: u64) -> String {
        match self {
            Self::Seconds | Self::Millis => self.scale_unix_seconds(unix_seconds).to_string(),
            Self::Rfc3339 => i64::try_from(unix_seconds)
                .ok()
                .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
                .and_then(|at| {
                    at.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
        }
    }
}

/// Longest RFC 3339 text accepted (nanoseconds and an offset fit in 35).
const MAX_RFC3339_LEN: usize = 40;

/// An RFC 3339 date-time (any offset, fractions down to nanoseconds) as unix
/// milliseconds, rounded down. Dates before 1970 are malformed.
pub(crate) fn parse_rfc3339_millis(text: &str) -> Result<u64, Rejection> {
    use time::format_description::well_known::Rfc3339;
    if text.len() > MAX_RFC3339_LEN {
        return Err(Rejection::MalformedTimestamp);
    }
    let at =
        time::OffsetDateTime::parse(text, &Rfc3339).map_err(|_| Rejection::MalformedTimestamp)?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| Rejection::MalformedTimestamp)
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
    /// Largest accepted age; an age equal to it still passes
    /// (the libraries reject only `> tolerance`).
    pub(crate) tolerance: Duration,
    /// Largest accepted distance into the future; `None` accepts any (Stripe
    /// checks only the age; Box accepts none: `Some(ZERO)`).
    pub(crate) future: Option<Duration>,
    pub(crate) unit: TimestampUnit,
}

impl Window {
    /// A window over unix-seconds timestamps, symmetric or age-only.
    pub(crate) fn seconds(tolerance: Duration, reject_future: bool) -> Self {
        Self {
            tolerance,
            future: reject_future.then_some(tolerance),
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
        } else if self
            .future
            .is_some_and(|future| -age_ms > i128::try_from(future.as_millis()).unwrap_or(i128::MAX))
        {
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
        future: Some(DEFAULT_TOLERANCE),
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
            future: None,
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
            future: Some(Duration::from_secs(60)),
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
    fn rfc3339() {
        assert_eq!(
            parse_rfc3339_millis("2025-10-09T08:53:20Z"),
            Ok(1_760_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2025-10-09T01:53:10-07:00"),
            Ok(1_759_999_990_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2025-10-09T08:53:19.123456789Z"),
            Ok(1_759_999_999_123)
        );
        for bad in [
            "",
            "yesterday",
            "1969-12-31T23:59:59Z",
            "2025-10-09 08:53:20",
        ] {
            assert_eq!(
                parse_rfc3339_millis(bad),
                Err(Rejection::MalformedTimestamp),
                "{bad}"
            );
        }
        let text = TimestampUnit::Rfc3339.format_unix_seconds(1_760_000_000);
        assert_eq!(TimestampUnit::Rfc3339.parse(&text), Ok(1_760_000_000_000));
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_never_panics(text in "\\PC{0,48}") {
            let _ = parse_rfc3339_millis(&text);
        }

        #[test]
        fn rfc3339_round_trips(seconds in 0u64..4_000_000_000) {
            let text = TimestampUnit::Rfc3339.format_unix_seconds(seconds);
            proptest::prop_assert_eq!(TimestampUnit::Rfc3339.parse(&text), Ok(seconds * 1000));
        }
    }

    #[test]
    fn absurd_values_do_not_overflow() {
        let huge = Window {
            tolerance: Duration::MAX,
            future: Some(Duration::MAX),
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
