//! The declarative `hmac` provider: HMAC (SHA-1/256/512), plain-hash and token
//! schemes described in configuration instead of code. Most named presets are
//! data over this same description (see `presets`).
//!
//! [`HmacSpec`] is what the operator writes; [`HmacSpec::compile`] checks it once
//! at start-up and yields the [`HmacScheme`](crate::hmac_scheme::HmacScheme) that
//! verifies requests.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderName;
use serde::Deserialize;

use crate::body::JsonPath;
use crate::candidates::Encoding;
use crate::digest::{Algorithm, MacKeys, SecretBytes};
use crate::error::ConfigError;
use crate::hmac_scheme::{
    Field, HeaderSelector, HmacScheme, Layout, Source, TimestampSource, Verify,
};
use crate::template::Template;
use crate::timestamp::{TimestampUnit, Window};

/// Settings of `provider = "hmac"`, written in the same `[[sources]]` table.
///
/// The signature header holds one signature (`header`, optional `prefix`), several
/// (`separator` between entries, each with the `prefix`), or `key=value` pairs
/// (`separator` plus `signature_param`, and `timestamp_param` when the timestamp
/// rides along). A `header` ending in `*` reads every header with that prefix
/// (DocuSign's `X-DocuSign-Signature-1..N`). The MAC is HMAC over the `signed`
/// template with the secret as the key. Every setting is checked at start-up.
///
/// | key | meaning | default |
/// |---|---|---|
/// | `header` | signature header name (required; `*` suffix = every header with that prefix) | |
/// | `mode` | `"hmac"`, `"hash"` (plain digest of `signed`, which names `{secret}`) or `"token"` (the header, or `token_json` body field, equals the secret) | `"hmac"` |
/// | `algorithm` | `"sha1"`, `"sha256"` or `"sha512"` | `"sha256"` |
/// | `encoding` | `"hex"`, `"base64"` or `"base64url"` (unpadded) | `"hex"` |
/// | `key_encoding` | how the secret becomes the key: `"raw"`, `"base64"` or `"hex"` | `"raw"` |
/// | `key_prefix` | text stripped from the secret first, when present (`"whsec_"`, `"v1,whsec_"`) | none |
/// | `prefix` | text before each signature, e.g. `"v1="`; entries without it are skipped | none |
/// | `prefix_optional` | also accept an entry without the `prefix` | `false` |
/// | `separator` | between several entries (`","`, `" "`) or `key=value` pairs (`";"`, `", "`) | one entry |
/// | `signature_param` | key of the signature entries in a `key=value` header (`"h1"`) | |
/// | `timestamp_param` | key of the timestamp in that header (`"ts"`) | |
/// | `exact_params` | the header must be exactly `<timestamp_param>=..<separator><signature_param>=..` | `false` |
/// | `signed` | what is MACed: `{body}` (required), `{timestamp}`/`{ts}`, `{id}`, `{url}`, `{method}`, `{header:NAME}`, `{secret}` (hash mode) and literal text | `"{body}"` |
/// | `timestamp_header` | header holding the signed timestamp | |
/// | `timestamp_json` | body field (dot path) holding the timestamp, checked after the signature | |
/// | `timestamp_unit` | `"s"`, `"ms"` or `"rfc3339"` | `"s"` |
/// | `reject_future` | also reject timestamps ahead of now | `true` |
/// | `future_tolerance` | how far ahead is still accepted (e.g. `"0s"`) | the `tolerance` |
/// | `require_headers` | table of headers that must carry exactly these values | none |
/// | `token_json` | token mode: body field (dot path) holding the token | |
/// | `token_format` | token mode: `"plain"` or `"basic"` (the secret is `user:pass`, sent as `Authorization: Basic`) | `"plain"` |
/// | `id_header` / `id_json` | delivery id: headers first (`"A, B"`: the first present), then a body field (`a+b` joins fields with `:`) | none |
/// | `event_header` / `event_json` | event type, read the same way | none |
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
/// Paystack (HMAC-SHA512), Twitch (RFC 3339 timestamp, id header in the signed
/// string) and a token sender:
/// ```toml
/// [[sources]]
/// name = "paystack"
/// provider = "hmac"
/// secrets = [{ env = "PAYSTACK_SECRET_KEY" }]
/// header = "x-paystack-signature"
/// algorithm = "sha512"
///
/// [[sources]]
/// name = "twitch"
/// provider = "hmac"
/// secrets = [{ env = "TWITCH_EVENTSUB_SECRET" }]
/// tolerance = "10m"
/// header = "Twitch-Eventsub-Message-Signature"
/// prefix = "sha256="
/// timestamp_header = "Twitch-Eventsub-Message-Timestamp"
/// timestamp_unit = "rfc3339"
/// signed = "{header:Twitch-Eventsub-Message-Id}{ts}{body}"
///
/// [[sources]]
/// name = "gitlab-like"
/// provider = "hmac"
/// secrets = [{ env = "HOOK_TOKEN" }]
/// mode = "token"
/// header = "X-Gitlab-Token"
/// ```
///
/// For the providers Hookline knows, prefer the named preset
/// (`provider = "zoom"`, ...): it also answers the provider's handshakes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HmacSpec {
    /// Signature (or token) header name.
    pub header: String,
    /// HMAC, plain hash or token.
    #[serde(default)]
    pub mode: Mode,
    /// Hash under the MAC.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// How the signature is written.
    #[serde(default)]
    pub encoding: Encoding,
    /// How the secret text becomes key bytes.
    #[serde(default)]
    pub key_encoding: KeyEncoding,
    /// Text stripped from the secret before decoding, when present.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// Text before each signature (`"v1="`, `"sha256="`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Whether an entry without the prefix is accepted too.
    #[serde(default)]
    pub prefix_optional: bool,
    /// Separator between several entries or `key=value` pairs.
    #[serde(default)]
    pub separator: Option<String>,
    /// Key of the signature entries in a `key=value` header.
    #[serde(default)]
    pub signature_param: Option<String>,
    /// Key of the timestamp in a `key=value` header.
    #[serde(default)]
    pub timestamp_param: Option<String>,
    /// Whether the `key=value` header must be exactly timestamp then signature.
    #[serde(default)]
    pub exact_params: bool,
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
    /// How far ahead a timestamp may be (humantime, e.g. `"0s"`); default the tolerance.
    #[serde(default)]
    pub future_tolerance: Option<String>,
    /// Headers that must be present with exactly these values.
    #[serde(default)]
    pub require_headers: BTreeMap<String, String>,
    /// Token mode: body field holding the token.
    #[serde(default)]
    pub token_json: Option<String>,
    /// Token mode: how the secret appears in the header.
    #[serde(default)]
    pub token_format: TokenFormat,
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

/// What the declarative scheme checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// HMAC of the `signed` template, keyed with the secret.
    #[default]
    Hmac,
    /// Plain digest of the `signed` template, which contains `{secret}` (HubSpot v1/v2).
    Hash,
    /// The header (or `token_json` body field) equals the secret; no MAC, no replay defence.
    Token,
}

/// How a configured secret becomes key bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEncoding {
    /// The secret's UTF-8 bytes.
    #[default]
    Raw,
    /// Base64-decoded (Standard Webhooks, Airtable); padding optional.
    Base64,
    /// Hex-decoded (Adyen).
    Hex,
}

/// How a token secret is written in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// The header value is the secret.
    #[default]
    Plain,
    /// `Basic base64(secret)`, the secret being `user:pass` (Postmark).
    Basic,
}

fn default_signed() -> String {
    "{body}".to_owned()
}

fn default_reject_future() -> bool {
    true
}

impl Default for HmacSpec {
    /// An empty description (no header): the base presets are written over.
    fn default() -> Self {
        Self {
            header: String::new(),
            mode: Mode::default(),
            algorithm: Algorithm::default(),
            encoding: Encoding::default(),
            key_encoding: KeyEncoding::default(),
            key_prefix: None,
            prefix: None,
            prefix_optional: false,
            separator: None,
            signature_param: None,
            timestamp_param: None,
            exact_params: false,
            signed: default_signed(),
            timestamp_header: None,
            timestamp_json: None,
            timestamp_unit: TimestampUnit::default(),
            reject_future: true,
            future_tolerance: None,
            require_headers: BTreeMap::new(),
            token_json: None,
            token_format: TokenFormat::default(),
            id_header: None,
            id_json: None,
            event_header: None,
            event_json: None,
        }
    }
}

/// Secrets are pasted by people: accept base64 with or without `=` padding.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl HmacSpec {
    /// Every key this provider reads from its table, `provider` included.
    pub const KEYS: &'static [&'static str] = &[
        "provider",
        "header",
        "mode",
        "algorithm",
        "encoding",
        "key_encoding",
        "key_prefix",
        "prefix",
        "prefix_optional",
        "separator",
        "signature_param",
        "timestamp_param",
        "exact_params",
        "signed",
        "timestamp_header",
        "timestamp_json",
        "timestamp_unit",
        "reject_future",
        "future_tolerance",
        "require_headers",
        "token_json",
        "token_format",
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

    /// Whether the signed string includes the public URL (then ingest needs `public_url`).
    pub fn signs_url(&self) -> bool {
        self.signed.contains("{url}")
    }

    /// Turns one configured secret into key bytes.
    pub(crate) fn decode_key(&self, secret: &[u8]) -> Result<Vec<u8>, ConfigError> {
        let secret = match &self.key_prefix {
            Some(prefix) => secret.strip_prefix(prefix.as_bytes()).unwrap_or(secret),
            None => secret,
        };
        let key = match self.key_encoding {
            KeyEncoding::Raw => secret.to_vec(),
            KeyEncoding::Base64 => KEY_BASE64
                .decode(secret)
                .map_err(ConfigError::SecretNotBase64)?,
            KeyEncoding::Hex => hex::decode(secret).map_err(|_| {
                ConfigError::InvalidHmacSetting("the secret is not hex (key_encoding = \"hex\")")
            })?,
        };
        if key.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        Ok(key)
    }

    /// Checks every setting and prepares the scheme. `tolerance` is the resolved
    /// replay window (the source's, or the preset's default).
    pub(crate) fn compile(
        &self,
        secrets: &[&[u8]],
        tolerance: Duration,
    ) -> Result<HmacScheme, ConfigError> {
        let layout = self.layout()?;
        if secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        let keys = secrets
            .iter()
            .map(|secret| {
                if secret.is_empty() {
                    Err(ConfigError::EmptySecret)
                } else {
                    self.decode_key(secret)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let verify = match self.mode {
            Mode::Hmac => Verify::Mac(MacKeys::new(self.algorithm, &keys)?),
            Mode::Hash => Verify::Hash(SecretBytes(keys)),
            Mode::Token => Verify::Token(SecretBytes(
                keys.into_iter()
                    .map(|key| match self.token_format {
                        TokenFormat::Plain => key,
                        TokenFormat::Basic => format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(&key)
                        )
                        .into_bytes(),
                    })
                    .collect(),
            )),
        };
        let token_json = optional_path("token_json", self.token_json.as_deref())?;
        let header = if self.header.is_empty() && token_json.is_some() {
            None
        } else {
            Some(HeaderSelector::parse(&self.header)?)
        };
        let template = Template::parse(&self.signed)?;
        if template.uses_secret() != (self.mode == Mode::Hash) {
            return Err(ConfigError::InvalidHmacSetting(
                "{secret} belongs in `signed` exactly when mode = \"hash\" (a plain digest must cover the secret; an HMAC must not repeat it)",
            ));
        }
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
        let id = Field::from_config(
            "id_header",
            self.id_header.as_deref(),
            "id_json",
            self.id_json.as_deref(),
        )?;
        if template.uses_id() && id.first_header().is_none() {
            return Err(ConfigError::InvalidHmacSetting(
                "`signed` uses {id} but `id_header` is not set",
            ));
        }
        let future = match (&self.future_tolerance, self.reject_future) {
            (Some(text), _) => Some(humantime::parse_duration(text).map_err(|_| {
                ConfigError::InvalidHmacSetting(
                    "`future_tolerance` is not a duration such as \"0s\" or \"5m\"",
                )
            })?),
            (None, true) => Some(tolerance),
            (None, false) => None,
        };
        let window = Window {
            tolerance,
            future,
            unit: self.timestamp_unit,
        };
        let require = self
            .require_headers
            .iter()
            .map(|(name, value)| Ok((header_name("require_headers", name)?, value.clone())))
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(HmacScheme {
            verify,
            algorithm: self.algorithm,
            header,
            token_json,
            encoding: self.encoding,
            layout,
            template,
            timestamp: timestamp.map(|source| (source, window)),
            require,
            id,
            event: Field::from_config(
                "event_header",
                self.event_header.as_deref(),
                "event_json",
                self.event_json.as_deref(),
            )?,
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
                    exact: self.exact_params,
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
                prefix_optional: self.prefix_optional,
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

impl Field {
    /// Headers (`a, b`: the first present wins), then a body field; `a+b` in the
    /// body path joins several fields with `:`.
    pub(crate) fn from_config(
        header_key: &'static str,
        headers: Option<&str>,
        key: &'static str,
        json: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let mut alternatives = Vec::new();
        if let Some(names) = non_empty(header_key, headers)? {
            for name in names.split(',') {
                alternatives.push(vec![Source::Header(header_name(header_key, name.trim())?)]);
            }
        }
        if let Some(paths) = non_empty(key, json)? {
            alternatives.push(
                paths
                    .split('+')
                    .map(|path| {
                        JsonPath::parse(path).map(Source::Json).ok_or_else(|| {
                            ConfigError::InvalidJsonPath {
                                key,
                                value: paths.to_owned(),
                            }
                        })
                    })
                    .collect::<Result<_, _>>()?,
            );
        }
        Ok(Self { alternatives })
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

pub(crate) fn header_name(key: &'static str, value: &str) -> Result<HeaderName, ConfigError> {
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
