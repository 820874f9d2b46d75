//! Test support: sources written as an operator writes them, parsed the way ingest
//! embeds `ProviderSpec` (flattened into its `[[sources]]` table).

// Each test file uses a different subset; helpers panic with a message on
// broken fixtures, which is what a test wants.
#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookline_signature::{ProviderSpec, Rejection, Request, Signer, Verified, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

/// The four declarative configurations, verbatim as in the `HmacSpec` docs.
pub const LINEAR: &str = r#"[[sources]]
name = "linear"
provider = "hmac"
secrets = [{ env = "LINEAR_WEBHOOK_SECRET" }]
tolerance = "60s"
header = "Linear-Signature"
encoding = "hex"
timestamp_json = "webhookTimestamp"
timestamp_unit = "ms"
id_header = "Linear-Delivery"
event_header = "Linear-Event"
"#;

pub const PADDLE: &str = r#"[[sources]]
name = "paddle"
provider = "hmac"
secrets = [{ env = "PADDLE_WEBHOOK_SECRET" }]
tolerance = "5s"
reject_future = false
header = "Paddle-Signature"
separator = ";"
signature_param = "h1"
timestamp_param = "ts"
signed = "{timestamp}:{body}"
id_json = "event_id"
event_json = "event_type"
"#;

pub const PAGERDUTY: &str = r#"[[sources]]
name = "pagerduty"
provider = "hmac"
secrets = [{ env = "PAGERDUTY_WEBHOOK_SECRET" }]
header = "X-PagerDuty-Signature"
separator = ","
prefix = "v1="
id_header = "X-Webhook-Id"
event_json = "event.event_type"
"#;

pub const ZOOM: &str = r#"[[sources]]
name = "zoom"
provider = "hmac"
secrets = [{ env = "ZOOM_WEBHOOK_SECRET_TOKEN" }]
header = "x-zm-signature"
prefix = "v0="
timestamp_header = "x-zm-request-timestamp"
signed = "v0:{timestamp}:{body}"
event_json = "event"
"#;

/// A built-in provider's source table.
pub fn builtin(provider: &str) -> String {
    format!(
        "[[sources]]\nname = \"{provider}\"\nprovider = \"{provider}\"\nsecrets = [{{ env = \"SECRET\" }}]\n"
    )
}

/// A mirror of ingest's source table: its own keys plus the flattened provider.
#[derive(Debug, Deserialize)]
pub struct Source {
    pub name: String,
    #[serde(default)]
    pub secrets: Vec<toml::Value>,
    #[serde(default)]
    pub tolerance: Option<String>,
    #[serde(default)]
    pub max_body: Option<String>,
    #[serde(flatten)]
    pub provider: ProviderSpec,
}

#[derive(Debug, Deserialize)]
struct Config {
    sources: Vec<Source>,
}

/// Parses a document holding one `[[sources]]` table.
pub fn parse_source(text: &str) -> Result<Source, toml::de::Error> {
    let mut config: Config = toml::from_str(text)?;
    assert_eq!(config.sources.len(), 1, "one source per snippet");
    Ok(config.sources.remove(0))
}

pub fn source(text: &str) -> Source {
    parse_source(text).unwrap_or_else(|error| panic!("source does not parse: {error}\n{text}"))
}

impl Source {
    pub fn tolerance(&self) -> Option<Duration> {
        self.tolerance
            .as_deref()
            .map(|text| humantime::parse_duration(text).expect("tolerance parses"))
    }

    pub fn verifier(&self, secrets: &[&[u8]]) -> Verifier {
        Verifier::new(&self.provider, secrets, self.tolerance())
            .unwrap_or_else(|error| panic!("{}: {error}", self.name))
    }

    pub fn signer(&self, secret: &[u8]) -> Signer {
        Signer::new(&self.provider, secret).unwrap_or_else(|error| panic!("{}: {error}", self.name))
    }
}

pub fn at(unix_seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_seconds)
}

pub fn header_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    headers
}

pub fn signed_headers(pairs: Vec<(HeaderName, String)>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            name,
            HeaderValue::from_str(&value).expect("signer writes valid values"),
        );
    }
    headers
}

pub fn verify(
    verifier: &Verifier,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<Verified, Rejection> {
    verifier.verify(&Request::new(headers, body), now)
}

/// Any bytes made acceptable to `HeaderValue` (which refuses control characters):
/// obs-text (0x80..=0xff, not UTF-8) is kept.
pub fn header_value(bytes: &[u8]) -> HeaderValue {
    let cleaned: Vec<u8> = bytes
        .iter()
        .map(|&b| {
            if (b < 0x20 && b != b'\t') || b == 0x7f {
                b'x'
            } else {
                b
            }
        })
        .collect();
    HeaderValue::from_bytes(&cleaned).expect("cleaned bytes are a valid header value")
}
