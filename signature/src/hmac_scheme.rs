//! The compiled `hmac` provider: verifying and signing what an
//! [`HmacSpec`](crate::HmacSpec) describes.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName};
use serde_json::Value;

use crate::body::{self, JsonPath};
use crate::candidates::{Candidates, Encoding};
use crate::error::Rejection;
use crate::headers;
use crate::mac::Keys;
use crate::request::{Request, Verified};
use crate::template::{Template, Values};
use crate::timestamp::{self, Window};

/// How signatures are laid out in the header.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// One signature, or several split by `separator`, each after `prefix`.
    Entries {
        separator: Option<String>,
        prefix: Option<String>,
    },
    /// `key=value` pairs split by `separator`.
    Params {
        separator: String,
        signature: String,
        timestamp: Option<String>,
    },
}

/// Where the signed timestamp comes from.
#[derive(Debug, Clone)]
pub(crate) enum TimestampSource {
    Header(HeaderName),
    /// The `timestamp` key of [`Layout::Params`].
    Param,
    Json(JsonPath),
}

/// Where an informational value (id, event) comes from: header first, then body.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) header: Option<HeaderName>,
    pub(crate) json: Option<JsonPath>,
}

impl Field {
    fn extract(&self, headers: &HeaderMap, json: Option<&Value>) -> Option<String> {
        self.header
            .as_ref()
            .and_then(|name| headers::optional(headers, name))
            .or_else(|| self.json.as_ref()?.text(json))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct HmacScheme {
    pub(crate) keys: Keys,
    pub(crate) header: HeaderName,
    pub(crate) encoding: Encoding,
    pub(crate) layout: Layout,
    pub(crate) template: Template,
    pub(crate) timestamp: Option<(TimestampSource, Window)>,
    pub(crate) id: Field,
    pub(crate) event: Field,
}

impl HmacScheme {
    pub(crate) fn verify(
        &self,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<Verified, Rejection> {
        let value = headers::signature(request.headers, &self.header)?;
        let (candidates, param_timestamp) = self.parse_header(value);
        let candidates = candidates.finish()?;

        // A timestamp in the headers is checked before any hashing; one in the body
        // can only be read after the signature holds.
        let signed_timestamp = match &self.timestamp {
            Some((TimestampSource::Header(name), window)) => {
                let text = headers::timestamp(request.headers, name)?;
                window.check(timestamp::parse(text)?, now)?;
                text
            }
            Some((TimestampSource::Param, window)) => {
                let text = param_timestamp.ok_or(Rejection::MissingTimestamp)?;
                window.check(timestamp::parse(text)?, now)?;
                text
            }
            Some((TimestampSource::Json(_), _)) | None => "",
        };
        let id = match (&self.id.header, self.template.uses_id()) {
            (Some(name), true) => headers::required(request.headers, name)?,
            _ => "",
        };
        let values = Values {
            body: request.body,
            timestamp: signed_timestamp,
            id,
        };
        self.keys
            .verify(&self.template.pieces(&values), &candidates)?;

        let wants_json = matches!(self.timestamp, Some((TimestampSource::Json(_), _)))
            || self.id.json.is_some()
            || self.event.json.is_some();
        let json = if wants_json {
            body::parse(request.body)
        } else {
            None
        };
        if let Some((TimestampSource::Json(path), window)) = &self.timestamp {
            let value = json.as_ref().and_then(|root| path.lookup(root));
            window.check(json_timestamp(value)?, now)?;
        }
        Ok(Verified {
            id: self.id.extract(request.headers, json.as_ref()),
            event: self.event.extract(request.headers, json.as_ref()),
        })
    }

    /// Candidate signatures and, for `key=value` headers, the timestamp text.
    fn parse_header<'v>(&self, value: &'v str) -> (Candidates, Option<&'v str>) {
        let mut candidates = Candidates::default();
        let mut param_timestamp = None;
        match &self.layout {
            Layout::Entries { separator, prefix } => {
                let mut take = |entry: &str| {
                    // Entries without the prefix (other versions) are skipped.
                    let entry = entry.trim();
                    let digest = match prefix {
                        Some(prefix) => entry.strip_prefix(prefix.as_str()),
                        None => Some(entry),
                    };
                    if let Some(digest) = digest {
                        candidates.push(self.encoding, digest);
                    }
                };
                match separator {
                    Some(separator) => value.split(separator.as_str()).for_each(&mut take),
                    None => take(value),
                }
            }
            Layout::Params {
                separator,
                signature,
                timestamp,
            } => {
                for pair in value.split(separator.as_str()).map(str::trim) {
                    let Some((key, text)) = pair.split_once('=') else {
                        continue;
                    };
                    if key == signature {
                        candidates.push(self.encoding, text);
                    } else if Some(key) == timestamp.as_deref() && param_timestamp.is_none() {
                        param_timestamp = Some(text);
                    }
                }
            }
        }
        (candidates, param_timestamp)
    }

    pub(crate) fn is_secret_header(&self, name: &HeaderName) -> bool {
        *name == self.header
    }

    pub(crate) fn sign(
        &self,
        body: &[u8],
        id: &str,
        event: &str,
        unix_seconds: u64,
    ) -> Vec<(HeaderName, String)> {
        let unit = self
            .timestamp
            .as_ref()
            .map(|(_, window)| window.unit)
            .unwrap_or_default();
        let timestamp = unit.scale_unix_seconds(unix_seconds).to_string();
        let values = Values {
            body,
            timestamp: &timestamp,
            id,
        };
        let tag = self.keys.signing().sign(&self.template.pieces(&values));
        let signature = self.encoding.encode(&tag);
        let value = match &self.layout {
            Layout::Entries { prefix, .. } => {
                format!("{}{signature}", prefix.as_deref().unwrap_or(""))
            }
            Layout::Params {
                separator,
                signature: key,
                timestamp: Some(timestamp_key),
            } => format!("{timestamp_key}={timestamp}{separator}{key}={signature}"),
            Layout::Params { signature: key, .. } => format!("{key}={signature}"),
        };
        let mut out = vec![(self.header.clone(), value)];
        if let Some((TimestampSource::Header(name), _)) = &self.timestamp {
            out.push((name.clone(), timestamp));
        }
        if let Some(name) = &self.id.header {
            out.push((name.clone(), id.to_owned()));
        }
        if let Some(name) = &self.event.header {
            out.push((name.clone(), event.to_owned()));
        }
        out
    }
}

/// A body timestamp: an integer, a non-negative finite number (rounded down), or a
/// string of digits.
fn json_timestamp(value: Option<&Value>) -> Result<u64, Rejection> {
    match value.ok_or(Rejection::MissingTimestamp)? {
        Value::Number(number) => number
            .as_u64()
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|float| float.is_finite() && *float >= 0.0 && *float < 1e19)
                    // In range by the filter above; `as` saturates anyway.
                    .map(|float| float as u64)
            })
            .ok_or(Rejection::MalformedTimestamp),
        Value::String(text) => timestamp::parse(text),
        _ => Err(Rejection::MalformedTimestamp),
    }
}
