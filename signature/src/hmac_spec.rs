//! The declarative `hmac` provider: HMAC-SHA256 schemes described in configuration
//! instead of code.
//!
//! [`HmacSpec`] is what the operator writes; [`HmacSpec::compile`] checks it once
//! at start-up and yields the [`HmacScheme`](crate::hmac_scheme::HmacScheme) that
//! verifies requests.

use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;

use crate::body::JsonPath;
use crate::candidates::Encoding;
use crate::error::ConfigError;
use crate::hmac_scheme::{Field, HmacScheme, Layout, TimestampSource};
use crate::mac::Keys;
use crate::template::Template;
use crate::timestamp::{DEFAULT_TOLERANCE, TimestampUnit, Window};

/// Settings of `provider = "hmac"`, written in the same `[[sources]]` table.
///
/// The signature header holds one signature (`header`, optional `prefix`), several
/// (`separator` between entries, each with the `prefix`), or `key=value` pairs
/// (`separator` plus `signature_param`, and `timestamp_param` when the timestamp
/// rides along). The MAC is HMAC-SHA256 with the secret's bytes as the key, over
/// the `signed` template. Every setting is checked at start-up.
///
/// | key | meaning | default |
/// |---|---|---|
/// | `header` | signature header name (required) | |
/// | `encoding` | `"hex"` or `"base64"` | `"hex"` |
/// | `prefix` | text before each signature, e.g. `"v1="`; entries without it are skipped | none |
/// | `separator` | between several entries (`","`) or `key=value` pairs (`";"`) | one entry |
/// | `signature_param` | key of the signature entries in a `key=value` header (`"h1"`) | |
/// | `timestamp_param` | key of the timestamp in that header (`"ts"`) | |
/// | `signed` | what is MACed: `{body}` (required), `{timestamp}`, `{id}` and literal text | `"{body}"` |
/// | `timestamp_header` | header holding the signed timestamp | |
/// | `timestamp_json` | body field (dot path) holding the timestamp, checked after the signature | |
/// | `timestamp_unit` | `"s"` or `"ms"` | `"s"` |
/// | `reject_future` | also reject timestamps more than `tolerance` ahead | `true` |
/// | `id_header` / `id_json` | delivery id (header first, then body field); `{id}` needs `id_header` | none |
/// | `event_header` / `event_json` | event type (header first, then body field) | none |
///
/// The replay window is the source's `tolerance` (default 5 minutes when a
/// timestamp source is set; a distance equal to it still passes). A header or
/// param timestamp must be part of `signed` (an unsigned timestamp gives no replay
/// protection) and enters the signed string exactly as received.
///
/// # Examples
///
/// Linear (the timestamp is the signed body's `webhookTimestamp`, in ms, 60 s):
/// ```toml
/// [[sources]]
/// name = "linear"
/// provider = "hmac"
/// secrets = [{ env = "LINEAR_WEBHOOK_SECRET" }]
/// tolerance = "60s"
/// header = "Linear-Signature"
/// encoding = "hex"
/// timestamp_json = "webhookTimestamp"
/// timestamp_unit = "ms"
/// id_header = "Linear-Delivery"
/// event_header = "Linear-Event"
/// ```
///
/// Paddle Billing (`Paddle-Signature: ts=<unix>;h1=<hex>`; like Paddle's SDKs, only
/// the age is limited, to 5 s):
/// ```toml
/// [[sources]]
/// name = "paddle"
/// provider = "hmac"
/// secrets = [{ env = "PADDLE_WEBHOOK_SECRET" }]
/// tolerance = "5s"
/// reject_future = false
/// header = "Paddle-Signature"
/// separator = ";"
/// signature_param = "h1"
/// timestamp_param = "ts"
/// signed = "{timestamp}:{body}"
/// id_json = "event_id"
/// event_json = "event_type"
/// ```
///
/// PagerDuty v3 (`v1=<hex>[,v1=<hex>]`, one entry per active secret, no timestamp):
/// ```toml
/// [[sources]]
/// name = "pagerduty"
/// provider = "hmac"
/// secrets = [{ env = "PAGERDUTY_WEBHOOK_SECRET" }]
/// header = "X-PagerDuty-Signature"
/// separator = ","
/// prefix = "v1="
/// id_header = "X-Webhook-Id"
/// event_json = "event.event_type"
/// ```
///
/// Zoom (`x-zm-signature: v0=<hex>` over `v0:{timestamp}:{body}`):
/// ```toml
/// [[sources]]
/// name = "zoom"
/// provider = "hmac"
/// secrets = [{ env = "ZOOM_WEBHOOK_SECRET_TOKEN" }]
/// header = "x-zm-signature"
/// prefix = "v0="
/// timestamp_header = "x-zm-request-timestamp"
/// signed = "v0:{timestamp}:{body}"
/// event_json = "event"
/// ```
///
/// Zoom's `endpoint.url_validation` challenge must still be answered by the
/// application (only for requests that verified); Zoom sends no delivery id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HmacSpec {
    /// Signature header name.
    pub header: String,
    /// How the signature is written.
    #[serde(default)]
    pub encoding: Encoding,
    /// Text before each signature (`"v1="`, `"sha256="`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Separator between several entries or `key=value` pairs.
    #[serde(default)]
    pub separator: Option<String>,
    /// Key of the signature entries in a `key=value` header.
    #[serde(default)]
    pub signature_param: Option<String>,
    /// Key of the timestamp in a `key=value` header.
    #[serde(default)]
    pub timestamp_param: Option<String>,
    /// The signed-string template.
    #[serde(default = "default_signed")]
    pub signed: String,
    /// Header holding the signed timestamp.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Body field (dot path) holding the timestamp.
    #[serde(default)]
    pub timestamp_json: Option<String>,
    /// Unit of the timestamp.
    #[serde(default)]
    pub timestamp_unit: TimestampUnit,
    /// Whether timestamps too far ahead are rejected too.
    #[serde(default = "default_reject_future")]
    pub reject_future: bool,
    /// Header holding the delivery id.
    #[serde(default)]
    pub id_header: Option<String>,
    /// Body field (dot path) holding the delivery id.
    #[serde(default)]
    pub id_json: Option<String>,
    /// Header holding the event type.
    #[serde(default)]
    pub event_header: Option<String>,
    /// Body field (dot path) holding the event type.
    #[serde(default)]
    pub event_json: Option<String>,
}

fn default_signed() -> String {
    "{body}".to_owned()
}

fn default_reject_future() -> bool {
    true
}

impl HmacSpec {
    /// Every key this provider reads from its table, `provider` included.
    pub const KEYS: &'static [&'static str] = &[
        "provider",
        "header",
        "encoding",
        "prefix",
        "separator",
        "signature_param",
        "timestamp_param",
        "signed",
        "timestamp_header",
        "timestamp_json",
        "timestamp_unit",
        "reject_future",
        "id_header",
        "id_json",
        "event_header",
        "event_json",
    ];

    /// Whether a timestamp source is configured (then a replay window applies).
    pub fn has_timestamp(&self) -> bool {
        self.timestamp_header.is_some()
            || self.timestamp_param.is_some()
            || self.timestamp_json.is_some()
    }

    /// Checks every setting and prepares the scheme.
    pub(crate) fn compile(
        &self,
        keys: Keys,
        tolerance: Option<Duration>,
    ) -> Result<HmacScheme, ConfigError> {
        let layout = self.layout()?;
        let template = Template::parse(&self.signed)?;
        let timestamp = self.timestamp_source()?;
        match &timestamp {
            Some(TimestampSource::Json(_)) if template.uses_timestamp() => {
                return Err(ConfigError::InvalidHmacSetting(
                    "{timestamp} in `signed` cannot come from timestamp_json: the body is read only after the signature holds",
                ));
            }
            Some(TimestampSource::Header(_) | TimestampSource::Param)
                if !template.uses_timestamp() =>
            {
                return Err(ConfigError::InvalidHmacSetting(
                    "timestamp_header/timestamp_param is set but `signed` does not include {timestamp}: an unsigned timestamp gives no replay protection",
                ));
            }
            None if template.uses_timestamp() => {
                return Err(ConfigError::InvalidHmacSetting(
                    "`signed` uses {timestamp} but no timestamp source is set (timestamp_header, timestamp_param or timestamp_json)",
                ));
            }
            _ => {}
        }
        let id = Field {
            header: optional_header("id_header", self.id_header.as_deref())?,
            json: optional_path("id_json", self.id_json.as_deref())?,
        };
        if template.uses_id() && id.header.is_none() {
            return Err(ConfigError::InvalidHmacSetting(
                "`signed` uses {id} but `id_header` is not set",
            ));
        }
        let window = Window {
            tolerance: tolerance.unwrap_or(DEFAULT_TOLERANCE),
            reject_future: self.reject_future,
            unit: self.timestamp_unit,
        };
        Ok(HmacScheme {
            keys,
            header: header_name("header", &self.header)?,
            encoding: self.encoding,
            layout,
            template,
            timestamp: timestamp.map(|source| (source, window)),
            id,
            event: Field {
                header: optional_header("event_header", self.event_header.as_deref())?,
                json: optional_path("event_json", self.event_json.as_deref())?,
            },
        })
    }

    fn layout(&self) -> Result<Layout, ConfigError> {
        let separator = non_empty("separator", self.separator.as_deref())?;
        let prefix = non_empty("prefix", self.prefix.as_deref())?;
        let signature_param = non_empty("signature_param", self.signature_param.as_deref())?;
        let timestamp_param = non_empty("timestamp_param", self.timestamp_param.as_deref())?;
        match (signature_param, separator) {
            (Some(signature), Some(separator)) => {
                if prefix.is_some() {
                    return Err(ConfigError::InvalidHmacSetting(
                        "`prefix` cannot be combined with `signature_param`; the param key already labels the signature",
                    ));
                }
                Ok(Layout::Params {
                    separator: separator.to_owned(),
                    signature: signature.to_owned(),
                    timestamp: timestamp_param.map(str::to_owned),
                })
            }
            (Some(_), None) => Err(ConfigError::InvalidHmacSetting(
                "`signature_param` needs `separator` (the character between the key=value pairs)",
            )),
            (None, _) if timestamp_param.is_some() => Err(ConfigError::InvalidHmacSetting(
                "`timestamp_param` needs `signature_param` (the header is then read as key=value pairs)",
            )),
            (None, separator) => Ok(Layout::Entries {
                separator: separator.map(str::to_owned),
                prefix: prefix.map(str::to_owned),
            }),
        }
    }

    fn timestamp_source(&self) -> Result<Option<TimestampSource>, ConfigError> {
        let sources = [
            self.timestamp_header.is_some(),
            self.timestamp_param.is_some(),
            self.timestamp_json.is_some(),
        ];
        if sources.into_iter().filter(|set| *set).count() > 1 {
            return Err(ConfigError::InvalidHmacSetting(
                "set at most one of timestamp_header, timestamp_param and timestamp_json",
            ));
        }
        Ok(
            if let Some(name) =
                optional_header("timestamp_header", self.timestamp_header.as_deref())?
            {
                Some(TimestampSource::Header(name))
            } else if let Some(path) =
                optional_path("timestamp_json", self.timestamp_json.as_deref())?
            {
                Some(TimestampSource::Json(path))
            } else {
                self.timestamp_param
                    .as_ref()
                    .map(|_| TimestampSource::Param)
            },
        )
    }
}

fn non_empty<'a>(
    key: &'static str,
    value: Option<&'a str>,
) -> Result<Option<&'a str>, ConfigError> {
    match value {
        Some("") => Err(ConfigError::EmptySetting(key)),
        other => Ok(other),
    }
}

fn header_name(key: &'static str, value: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(value.as_bytes()).map_err(|_| ConfigError::InvalidHeaderName {
        key,
        value: value.to_owned(),
    })
}

fn optional_header(
    key: &'static str,
    value: Option<&str>,
) -> Result<Option<HeaderName>, ConfigError> {
    value.map(|value| header_name(key, value)).transpose()
}

fn optional_path(key: &'static str, value: Option<&str>) -> Result<Option<JsonPath>, ConfigError> {
    value
        .map(|value| {
            JsonPath::parse(value).ok_or_else(|| ConfigError::InvalidJsonPath {
                key,
                value: value.to_owned(),
            })
        })
        .transpose()
}
