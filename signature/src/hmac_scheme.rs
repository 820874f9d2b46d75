//! The compiled declarative scheme: verifying and signing what an
//! [`HmacSpec`](crate::HmacSpec) (or a preset built from one) describes.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName};
use serde_json::Value;

use crate::body::{self, JsonPath};
use crate::candidates::{AnyCandidates, Encoding};
use crate::digest::{self, Algorithm, MacKeys, SecretBytes};
use crate::error::{ConfigError, Rejection};
use crate::headers;
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
        prefix_optional: bool,
    },
    /// `key=value` pairs split by `separator`.
    Params {
        separator: String,
        signature: String,
        timestamp: Option<String>,
        /// Only `timestamp=..<sep>signature=..`, nothing else (Sanity).
        exact: bool,
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

/// One place a value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Header(HeaderName),
    Json(JsonPath),
}

/// Where an informational value (id, event) comes from: the first alternative
/// whose every part is present; the parts are joined with `:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) alternatives: Vec<Vec<Source>>,
}

impl Field {
    fn part(source: &Source, headers: &HeaderMap, json: Option<&Value>) -> Option<String> {
        match source {
            Source::Header(name) => headers::optional(headers, name),
            Source::Json(path) => path.text(json),
        }
    }

    pub(crate) fn extract(&self, headers: &HeaderMap, json: Option<&Value>) -> Option<String> {
        self.alternatives.iter().find_map(|parts| {
            let texts = parts
                .iter()
                .map(|source| Self::part(source, headers, json))
                .collect::<Option<Vec<_>>>()?;
            Some(texts.join(":"))
        })
    }

    pub(crate) fn wants_json(&self) -> bool {
        self.alternatives
            .iter()
            .flatten()
            .any(|source| matches!(source, Source::Json(_)))
    }

    pub(crate) fn first_header(&self) -> Option<&HeaderName> {
        self.alternatives
            .iter()
            .flatten()
            .find_map(|source| match source {
                Source::Header(name) => Some(name),
                Source::Json(_) => None,
            })
    }
}

/// Which header(s) carry the signature.
#[derive(Debug, Clone)]
pub(crate) enum HeaderSelector {
    One(HeaderName),
    /// Several named headers (`"A, B"`: Box's primary and secondary).
    Many(Vec<HeaderName>),
    /// Every header whose (lower-case) name starts with this prefix.
    Prefix(String),
}

impl HeaderSelector {
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.strip_suffix('*') {
            Some(prefix) if !prefix.is_empty() => {
                // Validate the prefix as a header name would be.
                crate::hmac_spec::header_name("header", prefix)?;
                Ok(Self::Prefix(prefix.to_ascii_lowercase()))
            }
            _ if text.contains(',') => Ok(Self::Many(
                text.split(',')
                    .map(|name| crate::hmac_spec::header_name("header", name.trim()))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Ok(Self::One(crate::hmac_spec::header_name("header", text)?)),
        }
    }

    pub(crate) fn matches(&self, name: &HeaderName) -> bool {
        match self {
            Self::One(one) => one == name,
            Self::Many(names) => names.contains(name),
            Self::Prefix(prefix) => name.as_str().starts_with(prefix.as_str()),
        }
    }

    /// The signature header values as text; none is [`Rejection::MissingSignature`].
    fn values<'h>(&self, headers: &'h HeaderMap) -> Result<Vec<&'h str>, Rejection> {
        match self {
            Self::One(name) => Ok(vec![headers::signature(headers, name)?]),
            Self::Many(names) => {
                let values: Vec<&str> = names
                    .iter()
                    .filter_map(|name| headers::optional_str(headers, name))
                    .collect();
                if values.is_empty() {
                    Err(Rejection::MissingSignature)
                } else {
                    Ok(values)
                }
            }
            Self::Prefix(prefix) => {
                let values: Vec<&str> = headers
                    .iter()
                    .filter(|(name, _)| name.as_str().starts_with(prefix.as_str()))
                    .filter_map(|(_, value)| value.to_str().ok())
                    .filter(|value| value.len() <= headers::MAX_HEADER_LEN)
                    .collect();
                if values.is_empty() {
                    Err(Rejection::MissingSignature)
                } else {
                    Ok(values)
                }
            }
        }
    }

    /// The name a signer writes.
    fn signer_name(&self) -> Option<HeaderName> {
        match self {
            Self::One(name) => Some(name.clone()),
            Self::Many(names) => names.first().cloned(),
            Self::Prefix(prefix) => HeaderName::from_bytes(format!("{prefix}1").as_bytes()).ok(),
        }
    }
}

/// How the candidate is checked.
#[derive(Debug, Clone)]
pub(crate) enum Verify {
    Mac(MacKeys),
    Hash(SecretBytes),
    Token(SecretBytes),
}

#[derive(Debug, Clone)]
pub(crate) struct HmacScheme {
    pub(crate) verify: Verify,
    pub(crate) algorithm: Algorithm,
    /// `None` only for a token read from the body.
    pub(crate) header: Option<HeaderSelector>,
    pub(crate) token_json: Option<JsonPath>,
    pub(crate) encoding: Encoding,
    pub(crate) layout: Layout,
    pub(crate) template: Template,
    pub(crate) timestamp: Option<(TimestampSource, Window)>,
    pub(crate) require: Vec<(HeaderName, String)>,
    pub(crate) id: Field,
    pub(crate) event: Field,
}

/// What the signer is asked to produce.
pub(crate) struct SignInput<'a> {
    pub(crate) body: &'a [u8],
    pub(crate) id: &'a str,
    pub(crate) event: &'a str,
    pub(crate) unix_seconds: u64,
    pub(crate) url: &'a str,
    pub(crate) method: &'a str,
}

impl HmacScheme {
    pub(crate) fn verify(
        &self,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<Verified, Rejection> {
        for (name, value) in &self.require {
            if headers::required(request.headers, name)? != value {
                return Err(Rejection::MalformedHeader(name.clone()));
            }
        }
        if let Verify::Token(tokens) = &self.verify {
            return self.verify_token(tokens, request);
        }
        let Some(header) = &self.header else {
            return Err(Rejection::MissingSignature);
        };
        let mut candidates = AnyCandidates::new(self.algorithm.len());
        let mut param_timestamp = None;
        for value in header.values(request.headers)? {
            let found = self.parse_header(value, &mut candidates);
            param_timestamp = param_timestamp.or(found);
        }
        let candidates = candidates.finish()?;

        // A timestamp in the headers is checked before any hashing; one in the body
        // can only be read after the signature holds.
        let signed_timestamp = match &self.timestamp {
            Some((TimestampSource::Header(name), window)) => {
                let text = headers::timestamp(request.headers, name)?;
                window.check(window.unit.parse(text)?, now)?;
                text
            }
            Some((TimestampSource::Param, window)) => {
                let text = param_timestamp.ok_or(Rejection::MissingTimestamp)?;
                window.check(window.unit.parse(text)?, now)?;
                text
            }
            Some((TimestampSource::Json(_), _)) | None => "",
        };
        let id = match (self.id.first_header(), self.template.uses_id()) {
            (Some(name), true) => headers::required(request.headers, name)?,
            _ => "",
        };
        let mut values = Values {
            body: request.body,
            timestamp: signed_timestamp,
            id,
            url: request.url.unwrap_or(""),
            method: request.method,
            secret: b"",
            headers: request.headers,
        };
        match &self.verify {
            Verify::Mac(keys) => keys.verify(&self.template.pieces(&values)?, &candidates)?,
            Verify::Hash(secrets) => {
                let matched = secrets.0.iter().try_fold(false, |found, secret| {
                    values.secret = secret;
                    let digest = self.algorithm.hash(&self.template.pieces(&values)?);
                    Ok::<_, Rejection>(found | digest::any_equal(&digest, &candidates))
                })?;
                if !matched {
                    return Err(Rejection::InvalidSignature);
                }
            }
            // Token mode returned above, before any digest.
            Verify::Token(_) => {}
        }

        let wants_json = matches!(self.timestamp, Some((TimestampSource::Json(_), _)))
            || self.id.wants_json()
            || self.event.wants_json();
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

    fn verify_token(
        &self,
        tokens: &SecretBytes,
        request: &Request<'_>,
    ) -> Result<Verified, Rejection> {
        let json = body::parse(request.body);
        let presented = match (&self.token_json, &self.header) {
            (Some(path), _) => path
                .text(json.as_ref())
                .ok_or(Rejection::MissingSignature)?,
            (None, Some(HeaderSelector::One(name))) => {
                // The raw header value: no trimming beyond HTTP's own.
                headers::signature(request.headers, name)?.to_owned()
            }
            (None, _) => return Err(Rejection::MissingSignature),
        };
        let matched = tokens.0.iter().fold(false, |found, token| {
            found | digest::equal(presented.as_bytes(), token)
        });
        if !matched {
            return Err(Rejection::InvalidSignature);
        }
        Ok(Verified {
            id: self.id.extract(request.headers, json.as_ref()),
            event: self.event.extract(request.headers, json.as_ref()),
        })
    }

    /// Adds the header's candidate signatures; returns a `key=value` timestamp.
    fn parse_header<'v>(&self, value: &'v str, candidates: &mut AnyCandidates) -> Option<&'v str> {
        parse_signature_header(&self.layout, self.encoding, value, candidates)
    }

    pub(crate) fn is_secret_header(&self, name: &HeaderName) -> bool {
        self.header
            .as_ref()
            .is_some_and(|header| header.matches(name))
    }

    pub(crate) fn sign(&self, input: &SignInput<'_>) -> Vec<(HeaderName, String)> {
        let unit = self
            .timestamp
            .as_ref()
            .map(|(_, window)| window.unit)
            .unwrap_or_default();
        let timestamp = unit.format_unix_seconds(input.unix_seconds);
        let mut out: Vec<(HeaderName, String)> = Vec::new();
        for (name, value) in &self.require {
            out.push((name.clone(), value.clone()));
        }
        if let Some((TimestampSource::Header(name), _)) = &self.timestamp {
            out.push((name.clone(), timestamp.clone()));
        }
        for (field, value) in [(&self.id, input.id), (&self.event, input.event)] {
            if let Some(name) = field.first_header() {
                out.push((name.clone(), value.to_owned()));
            }
        }
        // Headers the template names and no setting fills: a timestamp header
        // gets the unix time, any other the id.
        for name in self.template.headers() {
            if !out.iter().any(|(have, _)| have == name) {
                let value = if name.as_str().contains("timestamp") {
                    input.unix_seconds.to_string()
                } else {
                    input.id.to_owned()
                };
                out.push((name.clone(), value));
            }
        }
        let signature = match &self.verify {
            Verify::Token(tokens) => tokens
                .0
                .first()
                .map(|token| String::from_utf8_lossy(token).into_owned())
                .unwrap_or_default(),
            Verify::Mac(_) | Verify::Hash(_) => {
                let mut headers = HeaderMap::new();
                for (name, value) in &out {
                    if let Ok(value) = value.parse() {
                        headers.insert(name.clone(), value);
                    }
                }
                let secret = match &self.verify {
                    Verify::Hash(secrets) => secrets.0.first().map_or(&[][..], Vec::as_slice),
                    _ => b"",
                };
                let values = Values {
                    body: input.body,
                    timestamp: &timestamp,
                    id: input.id,
                    url: input.url,
                    method: input.method,
                    secret,
                    headers: &headers,
                };
                let pieces = self.template.pieces(&values).unwrap_or_default();
                let tag = match &self.verify {
                    Verify::Mac(keys) => keys.first().sign(&pieces),
                    _ => self.algorithm.hash(&pieces),
                };
                let encoded = self.encoding.encode_bytes(&tag);
                match &self.layout {
                    Layout::Entries { prefix, .. } => {
                        format!("{}{encoded}", prefix.as_deref().unwrap_or(""))
                    }
                    Layout::Params {
                        separator,
                        signature: key,
                        timestamp: Some(timestamp_key),
                        ..
                    } => format!("{timestamp_key}={timestamp}{separator}{key}={encoded}"),
                    Layout::Params { signature: key, .. } => format!("{key}={encoded}"),
                }
            }
        };
        if self.token_json.is_none()
            && let Some(name) = self.header.as_ref().and_then(HeaderSelector::signer_name)
        {
            out.insert(0, (name, signature));
        }
        out
    }

    /// The token a signer puts in the body (token read from a body field).
    pub(crate) fn body_token(&self) -> Option<(&JsonPath, String)> {
        let path = self.token_json.as_ref()?;
        let Verify::Token(tokens) = &self.verify else {
            return None;
        };
        Some((
            path,
            String::from_utf8_lossy(tokens.0.first()?).into_owned(),
        ))
    }
}

/// Reads one signature header value by `layout`, adding every decodable
/// signature to `candidates`; returns the `key=value` timestamp when there is one.
pub(crate) fn parse_signature_header<'v>(
    layout: &Layout,
    encoding: Encoding,
    value: &'v str,
    candidates: &mut AnyCandidates,
) -> Option<&'v str> {
    match layout {
        Layout::Entries {
            separator,
            prefix,
            prefix_optional,
        } => {
            let mut take = |entry: &str| {
                // Entries without the prefix (other versions) are skipped.
                let entry = entry.trim();
                let digest = match prefix {
                    Some(prefix) => entry
                        .strip_prefix(prefix.as_str())
                        .or(prefix_optional.then_some(entry)),
                    None => Some(entry),
                };
                if let Some(digest) = digest {
                    candidates.push(encoding, digest);
                }
            };
            match separator {
                Some(separator) => value.split(separator.as_str()).for_each(&mut take),
                None => take(value),
            }
            None
        }
        Layout::Params {
            separator,
            signature,
            timestamp,
            exact,
        } => {
            if *exact {
                let timestamp_key = timestamp.as_deref()?;
                let (first, second) = value.split_once(separator.as_str())?;
                let stamp = first.strip_prefix(timestamp_key)?.strip_prefix('=')?;
                let text = second.strip_prefix(signature.as_str())?.strip_prefix('=')?;
                if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                candidates.push(encoding, text);
                return Some(stamp);
            }
            let mut param_timestamp = None;
            for pair in value.split(separator.as_str()).map(str::trim) {
                let Some((key, text)) = pair.split_once('=') else {
                    continue;
                };
                if key == signature {
                    candidates.push(encoding, text);
                } else if Some(key) == timestamp.as_deref() && param_timestamp.is_none() {
                    param_timestamp = Some(text);
                }
            }
            param_timestamp
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params(exact: bool) -> Layout {
        Layout::Params {
            separator: ",".into(),
            signature: "v1".into(),
            timestamp: Some("t".into()),
            exact,
        }
    }

    proptest::proptest! {
        /// Any header text parses without panicking, and never yields more than
        /// the cap of candidates.
        #[test]
        fn signature_lists_never_panic(value in "\\PC{0,300}") {
            for layout in [
                params(false),
                params(true),
                Layout::Entries { separator: Some(" ".into()), prefix: Some("v1,".into()), prefix_optional: false },
                Layout::Entries { separator: None, prefix: Some("sha256=".into()), prefix_optional: true },
            ] {
                let mut candidates = AnyCandidates::new(32);
                let _ = parse_signature_header(&layout, Encoding::Base64, &value, &mut candidates);
            }
        }

        /// A well-formed `t=..,v1=..` list yields its timestamp and every signature.
        #[test]
        fn kv_lists_round_trip(t in 0u64..u64::MAX, tags in proptest::collection::vec(proptest::array::uniform32(0u8..), 1..5)) {
            let mut value = format!("t={t}");
            for tag in &tags {
                value.push_str(&format!(",v1={}", hex::encode(tag)));
            }
            let mut candidates = AnyCandidates::new(32);
            let stamp = parse_signature_header(&params(false), Encoding::Hex, &value, &mut candidates);
            let expected = t.to_string();
            proptest::prop_assert_eq!(stamp, Some(expected.as_str()));
            proptest::prop_assert_eq!(candidates.finish().unwrap().len(), tags.len());
        }
    }

    #[test]
    fn exact_params_accept_only_the_exact_form() {
        let tag = Encoding::Base64Url.encode(&[7; 32]);
        let read = |value: &str| {
            let mut candidates = AnyCandidates::new(32);
            let stamp =
                parse_signature_header(&params(true), Encoding::Base64Url, value, &mut candidates);
            (stamp.map(str::to_owned), candidates.finish().is_ok())
        };
        assert_eq!(read(&format!("t=1,v1={tag}")), (Some("1".into()), true));
        assert!(!read(&format!("t=1, v1={tag}")).1);
        assert!(!read(&format!("v1={tag},t=1")).1);
        assert!(!read(&format!("t=1,v1={tag}=")).1);
    }
}
