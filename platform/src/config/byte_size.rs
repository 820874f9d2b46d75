//! Byte sizes in config: `1048576`, `"512KiB"`, `"1MiB"`, `"10MB"`, `"2GiB"`.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A size in bytes, written as an integer or with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"1MiB"`-style text.
    ///
    /// # Errors
    /// A message quoting the bad text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let bad =
            || format!("invalid size {text:?}; use e.g. 65536, \"512KiB\", \"1MiB\", \"10MB\"");
        let number: u64 = digits.parse().map_err(|_| bad())?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            _ => return Err(bad()),
        };
        number.checked_mul(factor).map(Self).ok_or_else(bad)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_nonsense() {
        assert_eq!(ByteSize::parse("1MiB"), Ok(ByteSize(1 << 20)));
        assert_eq!(ByteSize::parse("10 MB"), Ok(ByteSize(10_000_000)));
        assert_eq!(ByteSize::parse("42"), Ok(ByteSize(42)));
        for bad in ["", "MiB", "1XB", "-1", "99999999999999999999GiB", "1.5MiB"] {
            assert!(ByteSize::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
