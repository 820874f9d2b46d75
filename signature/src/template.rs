//! The `signed` template of the `hmac` provider: which bytes the provider MACs,
//! e.g. `{timestamp}:{body}`, `v0:{ts}:{body}`, `{method}{url}{body}{ts}` or
//! `{header:Twitch-Eventsub-Message-Id}{ts}{body}`.
//!
//! Parsed once at start-up; verifying only walks the parts, so the body is never
//! copied into a concatenated buffer.

use http::{HeaderMap, HeaderName};

use crate::error::{ConfigError, Rejection};
use crate::headers;

/// One piece of the signed string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Body,
    Timestamp,
    Id,
    /// The public URL the provider called, query included.
    Url,
    /// The request method (`POST`).
    Method,
    /// The secret itself (plain-hash schemes only: HubSpot v1/v2).
    Secret,
    /// A request header's value, exactly as received.
    Header(HeaderName),
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
    pub(crate) url: &'a str,
    pub(crate) method: &'a str,
    pub(crate) secret: &'a [u8],
    pub(crate) headers: &'a HeaderMap,
}

impl Template {
    /// Parses `{body}`, `{timestamp}` (or `{ts}`), `{id}`, `{url}`, `{method}`,
    /// `{secret}` and `{header:NAME}` placeholders between literal text. `{body}`
    /// is required: a signature that does not cover the payload proves nothing.
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
                "timestamp" | "ts" => Part::Timestamp,
                "id" => Part::Id,
                "url" => Part::Url,
                "method" => Part::Method,
                "secret" => Part::Secret,
                other => match other.strip_prefix("header:") {
                    Some(name) => Part::Header(
                        HeaderName::from_bytes(name.as_bytes())
                            .map_err(|_| ConfigError::UnknownPlaceholder(other.to_owned()))?,
                    ),
                    None => return Err(ConfigError::UnknownPlaceholder(other.to_owned())),
                },
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

    pub(crate) fn uses_secret(&self) -> bool {
        self.parts.contains(&Part::Secret)
    }

    /// The headers the template reads, in order.
    pub(crate) fn headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.parts.iter().filter_map(|part| match part {
            Part::Header(name) => Some(name),
            _ => None,
        })
    }

    /// The signed bytes, as slices to feed the MAC in order. A header the template
    /// names and the request lacks is [`Rejection::MissingHeader`].
    pub(crate) fn pieces<'a>(&'a self, values: &Values<'a>) -> Result<Vec<&'a [u8]>, Rejection> {
        self.parts
            .iter()
            .map(|part| {
                Ok(match part {
                    Part::Literal(text) => text.as_bytes(),
                    Part::Body => values.body,
                    Part::Timestamp => values.timestamp.as_bytes(),
                    Part::Id => values.id.as_bytes(),
                    Part::Url => values.url.as_bytes(),
                    Part::Method => values.method.as_bytes(),
                    Part::Secret => values.secret,
                    Part::Header(name) => headers::required(values.headers, name)?.as_bytes(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(template: &str) -> Vec<u8> {
        let template = Template::parse(template).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-one", "ONE".parse().unwrap());
        let values = Values {
            body: b"BODY",
            timestamp: "123",
            id: "ID",
            url: "https://h/p?q",
            method: "POST",
            secret: b"S",
            headers: &headers,
        };
        template.pieces(&values).unwrap().concat()
    }

    proptest::proptest! {
        /// Any text either parses or is refused with a config error; parsed
        /// templates with literal text only around `{body}` reproduce it.
        #[test]
        fn parse_never_panics(text in "\\PC{0,64}") {
            let _ = Template::parse(&text);
        }

        #[test]
        fn literals_survive(before in "[^{}]{0,16}", after in "[^{}]{0,16}") {
            let joined = joined(&format!("{before}{{body}}{after}"));
            proptest::prop_assert_eq!(joined, format!("{before}BODY{after}").into_bytes());
        }
    }

    #[test]
    fn fills_placeholders() {
        assert_eq!(joined("{body}"), b"BODY");
        assert_eq!(joined("{timestamp}:{body}"), b"123:BODY");
        assert_eq!(joined("v0:{timestamp}:{body}"), b"v0:123:BODY");
        assert_eq!(joined("{id}.{timestamp}.{body}"), b"ID.123.BODY");
        assert_eq!(joined("{body}}tail"), b"BODY}tail");
        assert_eq!(
            joined("{method}{url}{body}{ts}"),
            b"POSThttps://h/p?qBODY123"
        );
        assert_eq!(joined("{header:X-One}{body}"), b"ONEBODY");
        assert_eq!(joined("{secret}{body}"), b"SBODY");
    }

    #[test]
    fn refuses_bad_templates() {
        assert!(matches!(
            Template::parse("{tz}:{body}"),
            Err(ConfigError::UnknownPlaceholder(name)) if name == "tz"
        ));
        assert!(matches!(
            Template::parse("{header:bad name}{body}"),
            Err(ConfigError::UnknownPlaceholder(_))
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
