//! Ingest's configuration: the sections of the Hookline config file that
//! ingest reads (`[nats]`, `[stream]`, `[ingest]`, `[[sources]]`,
//! `[telemetry]`); other sections (e.g. `[processor]`) are ignored.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use hookline_platform::config::{self, ByteSize};
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
    /// Body limit for sources that set none.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
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
    /// Memory for request bodies in flight (declared `Content-Length`, or
    /// the source's `max_body` when undeclared). A request waits for its
    /// share before its body is read (the rest stays in the socket) and
    /// gets 503 with `Retry-After` when none frees up within
    /// `publish_timeout`. Bounds ingest's memory under bursts of large
    /// bodies; small bodies never notice it.
    #[serde(default = "default_max_in_flight_bytes")]
    pub max_in_flight_bytes: ByteSize,
    /// Runtime threads: 1 (one core per instance; scale with instances),
    /// 0 for one per core, or n.
    #[serde(default = "default_worker_threads")]
    pub worker_threads: usize,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_max_body() -> ByteSize {
    ByteSize(1 << 20)
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
fn default_worker_threads() -> usize {
    1
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            metrics_listen: None,
            max_body: default_max_body(),
            publish_timeout: default_publish_timeout(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            retry_after: default_retry_after(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            worker_threads: default_worker_threads(),
        }
    }
}

/// One `[[sources]]` entry: a URL path segment with its provider scheme and secrets.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceConfig {
    /// URL path segment and subject token: lower-case letters, digits, `-`, `_`.
    pub name: String,
    /// One or more secrets; any of them verifies (rotation).
    pub secrets: Vec<SecretSource>,
    /// Replay window override for schemes that sign a timestamp.
    #[serde(default, deserialize_with = "config::opt_duration")]
    pub tolerance: Option<Duration>,
    /// Body limit override.
    #[serde(default)]
    pub max_body: Option<ByteSize>,
    /// `provider = "…"` and the provider's own keys.
    #[serde(flatten)]
    pub provider: ProviderSpec,
}

/// The keys of a `[[sources]]` table that ingest itself reads.
const SOURCE_KEYS: &[&str] = &["name", "secrets", "tolerance", "max_body"];

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
            if source.secrets.is_empty() {
                return Err(SettingsError::NoSecrets(source.name.clone()));
            }
            if source.max_body.is_some_and(|b| b.0 == 0) {
                return Err(SettingsError::NotPositive("sources.max_body"));
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
        if ingest.max_body.0 == 0 {
            return Err(SettingsError::NotPositive("ingest.max_body"));
        }
        if ingest.max_in_flight_bytes.0 < 1024 {
            return Err(SettingsError::NotPositive(
                "ingest.max_in_flight_bytes (at least 1KiB)",
            ));
        }
        if ingest.worker_threads > runtime::MAX_WORKER_THREADS {
            return Err(SettingsError::TooManyThreads {
                max: runtime::MAX_WORKER_THREADS,
            });
        }
        Ok(())
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

    #[test]
    fn bad_sources_are_named() {
        let err = parse(
            "[[sources]]\nname = \"gh\"\nprovider = \"gitlab\"\nsecrets = [{ value = \"s\" }]",
        )
        .unwrap_err();
        assert!(err.contains("gitlab"), "{err}");
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
}
