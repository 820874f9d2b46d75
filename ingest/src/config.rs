//! Ingest's configuration: the sections of the Hookline config file that
//! ingest reads (`[nats]`, `[stream]`, `[ingest]`, `[[sources]]`,
//! `[telemetry]`); other sections (e.g. `[processor]`) are ignored.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use hookline_platform::config::{self, ByteSize};

use crate::envelope::MAX_ENVELOPE_OVERHEAD;
use hookline_platform::contract::is_valid_name;
use hookline_platform::nats::NatsConfig;
use hookline_platform::runtime;
use hookline_platform::secret::SecretSource;
use hookline_platform::streams::StreamConfig;
use hookline_platform::telemetry::TelemetryConfig;
use hookline_signature::ProviderSpec;
use serde::Deserialize;

/// Everything `hookline-ingest` reads from the config file.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// `[nats]`.
    #[serde(default)]
    pub nats: NatsConfig,
    /// `[stream]`.
    #[serde(default)]
    pub stream: StreamConfig,
    /// `[ingest]`.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// `[[sources]]`.
    #[serde(default, deserialize_with = "sources_without_unknown_keys")]
    pub sources: Vec<SourceConfig>,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// The `[ingest]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Where `/webhooks/{source}`, `/healthz`, `/readyz` and `/metrics` listen.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serve `/metrics` (and health) on this separate address instead, and
    /// not on `listen` (keep metrics off the public port).
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Body limit for sources that set none; by default the largest body
    /// whose Envelope fits the NATS server's `max_payload` (see
    /// [`IngestSettings::check_payload_fit`]).
    #[serde(default)]
    pub max_body: Option<ByteSize>,
    /// Total time allowed for publishing and awaiting the PubAck (retries
    /// included) before answering 503.
    #[serde(
        default = "default_publish_timeout",
        deserialize_with = "config::duration"
    )]
    pub publish_timeout: Duration,
    /// Time allowed to receive a request's head (request line and headers),
    /// and how long an idle keep-alive connection is kept; slower clients
    /// are disconnected (slowloris).
    #[serde(
        default = "default_header_timeout",
        deserialize_with = "config::duration"
    )]
    pub header_timeout: Duration,
    /// Time allowed to receive a request body; slower clients get 408.
    #[serde(
        default = "default_body_timeout",
        deserialize_with = "config::duration"
    )]
    pub body_timeout: Duration,
    /// The `Retry-After` (seconds) sent with 503.
    #[serde(default = "default_retry_after", deserialize_with = "config::duration")]
    pub retry_after: Duration,
    /// Memory for request bodies in flight, reserved when a body's first
    /// bytes arrive (a declared `Content-Length` alone reserves nothing),
    /// for its whole declared length (`max_body` when undeclared). Bodies
    /// still arriving (unauthenticated) hold at most half; when none is
    /// free, bodies holding budget for over a second while still arriving
    /// are shed (503) in favour of the newcomer, which otherwise waits up to `publish_timeout` and gets 503
    /// with `Retry-After`. Bounds ingest's memory under bursts of large
    /// bodies; small bodies never notice it.
    #[serde(default = "default_max_in_flight_bytes")]
    pub max_in_flight_bytes: ByteSize,
    /// Slowest accepted body data rate, in bytes per second, checked over
    /// every 5 s window while a body arrives (408 below it); 0 disables.
    #[serde(default = "default_min_body_rate")]
    pub min_body_rate: ByteSize,
    /// Most connections open at once on each listener; more are answered
    /// 503 and closed at once (`hookline_ingest_connections_refused_total`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Runtime threads: 1 (one core per instance; scale with instances),
    /// 0 for one per core, or n.
    #[serde(default = "default_worker_threads")]
    pub worker_threads: usize,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_publish_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_retry_after() -> Duration {
    Duration::from_secs(5)
}
fn default_max_in_flight_bytes() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_min_body_rate() -> ByteSize {
    ByteSize(1024)
}
fn default_max_connections() -> usize {
    1024
}
fn default_worker_threads() -> usize {
    1
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            metrics_listen: None,
            max_body: None,
            publish_timeout: default_publish_timeout(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            retry_after: default_retry_after(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            min_body_rate: default_min_body_rate(),
            max_connections: default_max_connections(),
            worker_threads: default_worker_threads(),
        }
    }
}

/// One `[[sources]]` entry: a URL path segment with its provider scheme and secrets.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceConfig {
    /// URL path segment and subject token: lower-case letters, digits, `-`, `_`.
    pub name: String,
    /// One or more secrets; any of them verifies (rotation). May be empty only
    /// for providers whose handshake hands the secret over (Asana, Notion).
    #[serde(default)]
    pub secrets: Vec<SecretSource>,
    /// Replay window override for schemes that sign a timestamp.
    #[serde(default, deserialize_with = "config::opt_duration")]
    pub tolerance: Option<Duration>,
    /// Body limit override.
    #[serde(default)]
    pub max_body: Option<ByteSize>,
    /// The URL the provider calls, as registered with it (URL-signed schemes:
    /// Twilio, Square, Trello, Mandrill, HubSpot, Contentful). The request's
    /// query string is appended; `X-Forwarded-*` headers are never trusted.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Meta's verify token, a secret reference like `secrets` entries.
    #[serde(default)]
    pub verify_token: Option<SecretSource>,
    /// Braintree's public key id.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Replay guard window: remember body hashes this long and answer a
    /// body re-sent with another id or event as a duplicate. Opt-in; meant
    /// for schemes that sign no timestamp (GitHub, Shopify, `hmac` without
    /// `{ts}` or `{id}`).
    #[serde(default, deserialize_with = "config::opt_duration")]
    pub replay_guard: Option<Duration>,
    /// `provider = "…"` and the provider's own keys.
    #[serde(flatten)]
    pub provider: ProviderSpec,
}

/// The keys of a `[[sources]]` table that ingest itself reads.
const SOURCE_KEYS: &[&str] = &[
    "name",
    "secrets",
    "tolerance",
    "max_body",
    "public_url",
    "verify_token",
    "public_key",
    "replay_guard",
];

impl SourceConfig {
    /// `public_url`, `verify_token` and `public_key`: present exactly where the
    /// provider uses them (Meta's `verify_token` is required: without it the
    /// subscription handshake could never succeed).
    fn validate_provider_keys(&self) -> Result<(), SettingsError> {
        let provider = self.provider.scheme();
        let checks = [
            (
                "public_url",
                self.public_url.is_some(),
                self.provider.uses_public_url(),
                "the URL the provider calls, which it signs",
            ),
            (
                "verify_token",
                self.verify_token.is_some(),
                self.provider.uses_verify_token(),
                "the token typed into the provider's console",
            ),
            (
                "public_key",
                self.public_key.is_some(),
                self.provider.uses_public_key(),
                "the public key id its signatures name",
            ),
        ];
        for (key, set, used, why) in checks {
            match (set, used) {
                (true, false) => {
                    return Err(SettingsError::InapplicableKey {
                        source_name: self.name.clone(),
                        key,
                        provider,
                    });
                }
                (false, true) => {
                    return Err(SettingsError::MissingKey {
                        source_name: self.name.clone(),
                        key,
                        provider,
                        why,
                    });
                }
                _ => {}
            }
        }
        if let Some(url) = &self.public_url {
            let absolute = url.starts_with("https://") || url.starts_with("http://");
            if !absolute || url.contains('?') || url.contains('#') {
                return Err(SettingsError::BadPublicUrl(self.name.clone()));
            }
        }
        Ok(())
    }
}

/// Deserializes `[[sources]]`, refusing keys neither ingest nor the chosen
/// provider reads (a typo such as `tolerence` must not pass silently;
/// `deny_unknown_fields` cannot see through the flattened provider keys).
fn sources_without_unknown_keys<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<SourceConfig>, D::Error> {
    use serde::de::Error as _;
    let tables = Vec::<toml::Table>::deserialize(deserializer)?;
    tables
        .into_iter()
        .enumerate()
        .map(|(index, table)| {
            let name = table
                .get("name")
                .and_then(toml::Value::as_str)
                .map_or_else(|| format!("#{}", index + 1), |n| format!("{n:?}"));
            let source = SourceConfig::deserialize(toml::Value::Table(table.clone()))
                .map_err(|e| D::Error::custom(format!("source {name}: {}", e.message())))?;
            let known = source.provider.known_keys();
            if let Some(key) = table
                .keys()
                .find(|key| !SOURCE_KEYS.contains(&key.as_str()) && !known.contains(&key.as_str()))
            {
                return Err(D::Error::custom(format!(
                    "source {name}: unknown key `{key}` for provider {:?}",
                    source.provider.scheme()
                )));
            }
            Ok(source)
        })
        .collect()
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// No `[[sources]]`.
    #[error("no [[sources]] configured: ingest would reject every request")]
    NoSources,
    /// A name that cannot be a URL segment and subject token.
    #[error("source name {0:?} must be 1-64 of a-z, 0-9, '-', '_'")]
    BadSourceName(String),
    /// Two sources with one name.
    #[error("source {0:?} is configured twice")]
    DuplicateSource(String),
    /// A source without secrets (fail closed).
    #[error("source {0:?} has no secrets; every source must verify signatures")]
    NoSecrets(String),
    /// A zero limit or timeout.
    #[error("{0} must be positive")]
    NotPositive(&'static str),
    /// A source sets a key its provider does not use.
    #[error("source {source_name:?}: `{key}` does not apply to provider {provider:?}; remove it")]
    InapplicableKey {
        /// The source.
        source_name: String,
        /// The key.
        key: &'static str,
        /// The provider.
        provider: &'static str,
    },
    /// A source lacks a key its provider needs.
    #[error("source {source_name:?}: provider {provider:?} needs `{key}` ({why})")]
    MissingKey {
        /// The source.
        source_name: String,
        /// The key.
        key: &'static str,
        /// The provider.
        provider: &'static str,
        /// What it is for.
        why: &'static str,
    },
    /// `public_url` is not an absolute http(s) URL without a query.
    #[error(
        "source {0:?}: `public_url` must be an absolute http:// or https:// URL without a query string (the request's query is appended)"
    )]
    BadPublicUrl(String),
    /// A body limit whose Envelope cannot fit the server's `max_payload`.
    #[error(
        "{key} = {max_body} bytes cannot fit the NATS server's max_payload of {max_payload} bytes \
         with the Envelope around it (up to {overhead} bytes): set {key} to at most {fits} \
         or raise max_payload in the server's configuration"
    )]
    BodyExceedsPayload {
        /// The config key.
        key: String,
        /// Its value.
        max_body: u64,
        /// The server's limit.
        max_payload: u64,
        /// The Envelope overhead bound.
        overhead: u64,
        /// The largest body limit that fits.
        fits: u64,
    },
    /// A server whose `max_payload` leaves no room for a body.
    #[error(
        "the NATS server's max_payload of {max_payload} bytes leaves no room for a body \
         with the Envelope around it (up to {overhead} bytes): raise max_payload"
    )]
    PayloadTooSmall {
        /// The server's limit.
        max_payload: u64,
        /// The Envelope overhead bound.
        overhead: u64,
    },
    /// `ingest.worker_threads` above the sanity limit.
    #[error("ingest.worker_threads must be at most {max} (0 means one per core)")]
    TooManyThreads {
        /// The limit.
        max: usize,
    },
}

impl IngestSettings {
    /// Checks what serde cannot: names, duplicates, secrets present, limits.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.sources.is_empty() {
            return Err(SettingsError::NoSources);
        }
        let mut seen = HashSet::new();
        for source in &self.sources {
            if !is_valid_name(&source.name) {
                return Err(SettingsError::BadSourceName(source.name.clone()));
            }
            if !seen.insert(source.name.as_str()) {
                return Err(SettingsError::DuplicateSource(source.name.clone()));
            }
            // Asana and Notion hand their secret over in a handshake: such a
            // source may start without one and reject deliveries until then.
            let captures = source
                .provider
                .provider()
                .is_some_and(hookline_signature::Provider::captures_secret);
            if source.secrets.is_empty() && !captures {
                return Err(SettingsError::NoSecrets(source.name.clone()));
            }
            if source.max_body.is_some_and(|b| b.0 == 0) {
                return Err(SettingsError::NotPositive("sources.max_body"));
            }
            source.validate_provider_keys()?;
            if source
                .replay_guard
                .is_some_and(|window| window < Duration::from_secs(1))
            {
                return Err(SettingsError::NotPositive(
                    "sources.replay_guard (at least 1s)",
                ));
            }
        }
        let ingest = &self.ingest;
        for (value, name) in [
            (ingest.publish_timeout, "ingest.publish_timeout"),
            (ingest.header_timeout, "ingest.header_timeout"),
            (ingest.body_timeout, "ingest.body_timeout"),
        ] {
            if value.is_zero() {
                return Err(SettingsError::NotPositive(name));
            }
        }
        if ingest.max_body.is_some_and(|b| b.0 == 0) {
            return Err(SettingsError::NotPositive("ingest.max_body"));
        }
        if ingest.max_in_flight_bytes.0 < 1024 {
            return Err(SettingsError::NotPositive(
                "ingest.max_in_flight_bytes (at least 1KiB)",
            ));
        }
        if ingest.max_connections == 0 {
            return Err(SettingsError::NotPositive("ingest.max_connections"));
        }
        if ingest.worker_threads > runtime::MAX_WORKER_THREADS {
            return Err(SettingsError::TooManyThreads {
                max: runtime::MAX_WORKER_THREADS,
            });
        }
        Ok(())
    }
}

impl IngestSettings {
    /// The body limit of sources that set none, checked against the
    /// connected server's `max_payload`: `ingest.max_body` when set, else the
    /// largest body whose Envelope fits (`max_payload` minus
    /// [`MAX_ENVELOPE_OVERHEAD`]). Every limit set (global or per source)
    /// must fit, so that a body within its limit is never refused by NATS
    /// (that would be 503 forever instead of 413).
    ///
    /// # Errors
    /// The first limit that cannot fit, naming its key and both numbers.
    pub fn check_payload_fit(&self, max_payload: u64) -> Result<u64, SettingsError> {
        let overhead = MAX_ENVELOPE_OVERHEAD;
        let fits = max_payload.saturating_sub(overhead);
        if fits < 1024 {
            return Err(SettingsError::PayloadTooSmall {
                max_payload,
                overhead,
            });
        }
        let explicit = std::iter::once(("ingest.max_body".to_owned(), self.ingest.max_body)).chain(
            self.sources
                .iter()
                .map(|s| (format!("max_body of source {:?}", s.name), s.max_body)),
        );
        for (key, max_body) in explicit {
            if let Some(ByteSize(max_body)) = max_body
                && max_body > fits
            {
                return Err(SettingsError::BodyExceedsPayload {
                    key,
                    max_body,
                    max_payload,
                    overhead,
                    fits,
                });
            }
        }
        Ok(self.ingest.max_body.map_or(fits, |b| b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<IngestSettings, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        IngestSettings::deserialize(table).map_err(|e| e.to_string())
    }

    #[test]
    fn sources_parse_with_provider_keys() {
        let settings = parse(
            r#"
            [[sources]]
            name = "zoom"
            provider = "hmac"
            secrets = [{ value = "s" }]
            header = "x-zm-signature"
            encoding = "hex"
            prefix = "v0="
            timestamp_header = "x-zm-request-timestamp"
            signed = "v0:{timestamp}:{body}"
            max_body = "64KiB"
            "#,
        )
        .unwrap();
        assert_eq!(settings.sources[0].max_body, Some(ByteSize(65536)));
        settings.validate().unwrap();
    }

    /// `public_url`, `verify_token` and `public_key` exactly where the provider
    /// uses them; each mistake names its key.
    #[test]
    fn provider_keys_apply_only_where_used() {
        let source = |provider: &str, extra: &str| {
            format!(
                "[[sources]]\nname = \"s\"\nprovider = \"{provider}\"\nsecrets = [{{ value = \"k\" }}]\n{extra}"
            )
        };
        let invalid = |text: String| parse(&text).unwrap().validate().unwrap_err().to_string();
        let twilio = parse(&source(
            "twilio",
            "public_url = \"https://h.example/twilio\"",
        ))
        .unwrap();
        twilio.validate().unwrap();
        assert!(invalid(source("twilio", "")).contains("needs `public_url`"));
        assert!(
            invalid(source("github", "public_url = \"https://h/x\""))
                .contains("`public_url` does not apply")
        );
        assert!(
            invalid(source("twilio", "public_url = \"https://h/x?a=1\""))
                .contains("without a query")
        );
        assert!(invalid(source("meta", "")).contains("needs `verify_token`"));
        assert!(
            invalid(source("stripe", "verify_token = { value = \"t\" }"))
                .contains("`verify_token` does not apply")
        );
        parse(&source("meta", "verify_token = { value = \"t\" }"))
            .unwrap()
            .validate()
            .unwrap();
        assert!(invalid(source("braintree", "")).contains("needs `public_key`"));
        assert!(
            invalid(source("slack", "public_key = \"pk\"")).contains("`public_key` does not apply")
        );
    }

    #[test]
    fn bad_sources_are_named() {
        let err = parse(
            "[[sources]]\nname = \"gh\"\nprovider = \"gitlub\"\nsecrets = [{ value = \"s\" }]",
        )
        .unwrap_err();
        assert!(err.contains("gitlub"), "{err}");
        let err = parse(
            "[[sources]]\nname = \"gh\"\nprovider = \"github\"\nsecrets = [{ value = \"s\" }]\ntolerence = \"1m\"",
        )
        .unwrap_err();
        assert!(
            err.contains("unknown key `tolerence`") && err.contains("\"gh\""),
            "{err}"
        );
        let err = parse(
            "[[sources]]\nname = \"gh\"\nprovider = \"github\"\nsecrets = [{ value = \"s\" }]\ntolerance = \"soon\"",
        )
        .unwrap_err();
        assert!(err.contains("soon"), "{err}");
        let settings = parse(
            "[[sources]]\nname = \"Git Hub\"\nprovider = \"github\"\nsecrets = [{ value = \"s\" }]",
        )
        .unwrap();
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("Git Hub")
        );
        let settings =
            parse("[[sources]]\nname = \"gh\"\nprovider = \"github\"\nsecrets = []").unwrap();
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::NoSecrets(_))
        ));
        assert!(matches!(
            parse("").unwrap().validate(),
            Err(SettingsError::NoSources)
        ));
    }

    #[test]
    fn worker_threads_default_to_one_and_absurd_counts_are_refused() {
        let source =
            "[[sources]]\nname = \"gh\"\nprovider = \"github\"\nsecrets = [{ value = \"s\" }]";
        let settings = parse(source).unwrap();
        assert_eq!(settings.ingest.worker_threads, 1);
        let settings = parse(&format!("[ingest]\nworker_threads = 100000\n{source}")).unwrap();
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::TooManyThreads { .. })
        ));
        let settings = parse(&format!("[ingest]\nworker_threads = 0\n{source}")).unwrap();
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn body_limits_must_fit_max_payload_with_the_envelope() {
        const MIB: u64 = 1 << 20;
        let source =
            "[[sources]]\nname = \"gh\"\nprovider = \"github\"\nsecrets = [{ value = \"s\" }]";
        // Default: the largest body that fits nats-server's default 1 MiB.
        let settings = parse(source).unwrap();
        assert_eq!(
            settings.check_payload_fit(MIB).unwrap(),
            MIB - MAX_ENVELOPE_OVERHEAD
        );
        let settings = parse(&format!("[ingest]\nmax_body = \"1MiB\"\n{source}")).unwrap();
        let err = settings.check_payload_fit(MIB).unwrap_err().to_string();
        assert!(
            err.contains("ingest.max_body = 1048576 bytes")
                && err.contains("max_payload of 1048576 bytes"),
            "{err}"
        );
        assert_eq!(settings.check_payload_fit(8 * MIB).unwrap(), MIB);
        let settings = parse(&format!("{source}\nmax_body = \"8MiB\"")).unwrap();
        let err = settings.check_payload_fit(MIB).unwrap_err().to_string();
        assert!(
            err.contains("source \"gh\"") && err.contains("8388608"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        let settings = parse(source).unwrap();
        assert!(matches!(
            settings.check_payload_fit(64 * 1024),
            Err(SettingsError::PayloadTooSmall { .. })
        ));
    }
}
