//! Times on the command line (`--since`, `--until`) and in output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Parses `text` as an RFC 3339 time (`2026-11-29T10:00:00Z`) or as an age
/// before `now` (`90s`, `15m`, `2h`, `3d`).
///
/// # Errors
/// Neither form (exit 2), naming the flag.
pub fn parse_time(flag: &str, text: &str, now: SystemTime) -> Result<SystemTime> {
    let text = text.trim();
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(at);
    }
    match humantime::parse_duration(text) {
        // Before 1970 nothing was stored, and such times cannot be printed
        // or sent to NATS (they used to panic further on).
        Ok(age) => now
            .checked_sub(age)
            .filter(|at| *at >= UNIX_EPOCH)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{flag} {text:?} is too far in the past (before 1970); use a shorter age or a time"
                ))
            }),
        Err(_) => Err(Error::Usage(format!(
            "{flag} {text:?} is neither a time (2026-11-29T10:00:00Z) nor an age (2h, 30m, 7d)"
        ))),
    }
}

/// A closed time range; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// Earliest time included.
    pub since: Option<SystemTime>,
    /// Latest time included.
    pub until: Option<SystemTime>,
}

impl Range {
    /// Parses `--since` / `--until`.
    ///
    /// # Errors
    /// A bad time, or `since` after `until` (exit 2).
    pub fn parse(since: Option<&str>, until: Option<&str>, now: SystemTime) -> Result<Self> {
        let since = since.map(|t| parse_time("--since", t, now)).transpose()?;
        let until = until.map(|t| parse_time("--until", t, now)).transpose()?;
        if let (Some(since), Some(until)) = (since, until)
            && since > until
        {
            return Err(Error::Usage(format!(
                "bad time range: --since {} is after --until {}",
                rfc3339(since),
                rfc3339(until)
            )));
        }
        Ok(Self { since, until })
    }

    /// Whether `at` lies in the range.
    pub fn contains(&self, at: SystemTime) -> bool {
        self.since.is_none_or(|since| at >= since) && self.until.is_none_or(|until| at <= until)
    }
}

/// A time as RFC 3339 with milliseconds, UTC.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// A NATS timestamp as `SystemTime`.
pub fn system_time(at: OffsetDateTime) -> SystemTime {
    SystemTime::from(at)
}

/// A NATS timestamp as RFC 3339; the zero time (never) as `-`.
pub fn format_nats(at: OffsetDateTime) -> String {
    if at.unix_timestamp() <= 0 {
        "-".to_owned()
    } else {
        rfc3339(system_time(at))
    }
}

/// A short human duration: `3s`, `2m 5s`, `1h 2m`.
pub fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {}s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{}h {}m", secs / 3600, (secs % 3600) / 60)
    } else {
        format!("{}d {}h", secs / 86_400, (secs % 86_400) / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_ages() {
        let now = humantime::parse_rfc3339("2026-11-29T12:00:00Z").unwrap();
        assert_eq!(
            parse_time("--since", "2h", now).unwrap(),
            humantime::parse_rfc3339("2026-11-29T10:00:00Z").unwrap()
        );
        assert_eq!(
            parse_time("--since", "2026-11-29T11:00:00Z", now).unwrap(),
            humantime::parse_rfc3339("2026-11-29T11:00:00Z").unwrap()
        );
        let err = parse_time("--since", "yesterday-ish", now).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--since"), "{err}");
        let err = Range::parse(Some("1h"), Some("2h"), now).unwrap_err();
        assert!(err.to_string().contains("bad time range"), "{err}");
        // Issue 12 finding 7: ages past 1970 panicked (exit 101).
        for age in ["300000y", "99999999999d", "57y"] {
            let err = parse_time("--since", age, now).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{age}");
            assert!(err.to_string().contains("too far in the past"), "{err}");
        }
        let range = Range::parse(Some("2h"), Some("1h"), now).unwrap();
        assert!(range.contains(now - Duration::from_secs(5400)));
        assert!(!range.contains(now));
    }
}
