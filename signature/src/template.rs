//! The `signed` template of the `hmac` provider: which bytes the provider MACs,
//! e.g. `{timestamp}:{body}` or `v0:{timestamp}:{body}`.
//!
//! Parsed once at start-up; verifying only walks the parts, so the body is never
//! copied into a concatenated buffer.

use crate::error::ConfigError;

/// One piece of the signed string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Body,
    Timestamp,
    Id,
}

/// A parsed `signed` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// The request values a template is filled with.
pub(crate) struct Values<'a> {
    pub(crate) body: &'a [u8],
    /// The timestamp text exactly as received.
    pub(crate) timestamp: &'a str,
    pub(crate) id: &'a str,
}

impl Template {
    /// Parses `{body}`, `{timestamp}` and `{id}` placeholders between literal text.
    /// `{body}` is required: a signature that does not cover the payload proves nothing.
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(ConfigError::UnclosedPlaceholder)?;
            parts.push(match &after[..close] {
                "body" => Part::Body,
                "timestamp" => Part::Timestamp,
                "id" => Part::Id,
                other => return Err(ConfigError::UnknownPlaceholder(other.to_owned())),
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        if !parts.contains(&Part::Body) {
            return Err(ConfigError::InvalidHmacSetting(
                "`signed` must include {body}, or the signature would not cover the payload",
            ));
        }
        Ok(Self { parts })
    }

    pub(crate) fn uses_timestamp(&self) -> bool {
        self.parts.contains(&Part::Timestamp)
    }

    pub(crate) fn uses_id(&self) -> bool {
        self.parts.contains(&Part::Id)
    }

    /// The signed bytes, as slices to feed the MAC in order.
    pub(crate) fn pieces<'a>(&'a self, values: &Values<'a>) -> Vec<&'a [u8]> {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.as_bytes(),
                Part::Body => values.body,
                Part::Timestamp => values.timestamp.as_bytes(),
                Part::Id => values.id.as_bytes(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(template: &str) -> Vec<u8> {
        let template = Template::parse(template).unwrap();
        let values = Values {
            body: b"BODY",
            timestamp: "123",
            id: "ID",
        };
        template.pieces(&values).concat()
    }

    #[test]
    fn fills_placeholders() {
        assert_eq!(joined("{body}"), b"BODY");
        assert_eq!(joined("{timestamp}:{body}"), b"123:BODY");
        assert_eq!(joined("v0:{timestamp}:{body}"), b"v0:123:BODY");
        assert_eq!(joined("{id}.{timestamp}.{body}"), b"ID.123.BODY");
        assert_eq!(joined("{body}}tail"), b"BODY}tail");
    }

    #[test]
    fn refuses_bad_templates() {
        assert!(matches!(
            Template::parse("{ts}:{body}"),
            Err(ConfigError::UnknownPlaceholder(name)) if name == "ts"
        ));
        assert!(matches!(
            Template::parse("{timestamp:{body}"),
            Err(ConfigError::UnknownPlaceholder(_))
        ));
        assert!(matches!(
            Template::parse("{body"),
            Err(ConfigError::UnclosedPlaceholder)
        ));
        assert!(matches!(
            Template::parse("{timestamp}"),
            Err(ConfigError::InvalidHmacSetting(_))
        ));
        assert!(matches!(
            Template::parse(""),
            Err(ConfigError::InvalidHmacSetting(_))
        ));
    }
}
