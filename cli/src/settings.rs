//! The configuration the CLI reads: the same file and `HOOKLINE_*`
//! overrides as the other binaries, loaded with platform's loader into
//! ingest's and the processor's own config types.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use async_nats::jetstream;
use hookline_ingest::config::{IngestSettings, SourceConfig};
use hookline_platform::config::{self, ENV_PREFIX};
use hookline_platform::nats;
use hookline_platform::secret::SecretSource;
use hookline_processor::ProcessorConfig;
use serde::Deserialize;

use crate::error::{Context as _, Error, Result};

/// The idempotency bucket when no `[processor]` names one.
const DEFAULT_BUCKET: &str = "hookline_idempotency";

/// Everything the CLI reads from the Hookline config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file, when one was given.
    pub path: Option<PathBuf>,
    /// `[nats]`, `[stream]`, `[ingest]`, `[[sources]]`, `[telemetry]`, as ingest reads them.
    pub ingest: IngestSettings,
    /// `[processor]`, when the file has one.
    pub processor: Option<ProcessorConfig>,
    /// `[console]`.
    pub console: ConsoleConfig,
    /// Whether `nats.url` was set in the file or by `HOOKLINE_NATS_URL`.
    pub nats_url_explicit: bool,
}

#[derive(Deserialize)]
struct ProcessorSection {
    #[serde(default)]
    processor: Option<ProcessorConfig>,
    #[serde(default)]
    console: ConsoleConfig,
}

/// The `[console]` section (`hookline console`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where it listens (default `127.0.0.1:8899`).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The token requests must carry; required for a non-loopback address.
    #[serde(default)]
    pub token: Option<SecretSource>,
}

impl Settings {
    /// Loads `path` (or only defaults and the environment) with the
    /// `HOOKLINE_*` overrides in `env`.
    ///
    /// # Errors
    /// The file cannot be read, or a key is unknown or has a bad value (exit 2).
    pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Self> {
        let ingest: IngestSettings = config::load(path, env.iter().cloned())?;
        let section: ProcessorSection = config::load(path, env.iter().cloned())?;
        if let Some(processor) = &section.processor {
            processor
                .validate()
                .map_err(|e| Error::Usage(e.to_string()))?;
        }
        ingest
            .stream
            .validate()
            .map_err(|e| Error::Usage(e.to_string()))?;
        let in_env = env
            .iter()
            .any(|(k, v)| k == &format!("{ENV_PREFIX}NATS_URL") && !v.is_empty());
        let in_file = match path {
            Some(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|text| text.parse::<toml::Table>().ok())
                .and_then(|t| t.get("nats")?.as_table()?.get("url").cloned())
                .is_some(),
            None => false,
        };
        Ok(Self {
            path: path.map(Path::to_path_buf),
            ingest,
            processor: section.processor,
            console: section.console,
            nats_url_explicit: in_env || in_file,
        })
    }

    /// The `[[sources]]` entry named `name`.
    ///
    /// # Errors
    /// No such source (exit 3), naming the configured ones.
    pub fn source(&self, name: &str) -> Result<&SourceConfig> {
        self.ingest
            .sources
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .ingest
                    .sources
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                Error::NotFound(format!(
                    "unknown source {name:?}{}",
                    if known.is_empty() {
                        format!(
                            " (no [[sources]] in {})",
                            self.path.as_deref().map_or_else(
                                || "the configuration".to_owned(),
                                |p| p.display().to_string()
                            )
                        )
                    } else {
                        format!("; configured: {}", known.join(", "))
                    }
                ))
            })
    }

    /// The idempotency bucket (`[processor] idempotency_bucket`, or the default).
    pub fn idempotency_bucket(&self) -> &str {
        self.processor
            .as_ref()
            .map_or(DEFAULT_BUCKET, |p| p.idempotency_bucket.as_str())
    }

    /// Ingest's address as a client reaches it (`0.0.0.0` → `127.0.0.1`).
    pub fn ingest_addr(&self) -> SocketAddr {
        reachable(self.ingest.ingest.listen)
    }

    /// Connects to NATS with the configured options and returns a
    /// JetStream context bounded by `nats.request_timeout`.
    ///
    /// # Errors
    /// Bad settings or no server reachable within `nats.connect_timeout` (exit 1).
    pub async fn connect(&self) -> Result<jetstream::Context> {
        let client = nats::connect(&self.ingest.nats, "hookline-cli")
            .await
            .context(|| {
                "cannot reach NATS (is the pipeline running? `hookline up` starts one)".to_owned()
            })?;
        Ok(jetstream::ContextBuilder::new()
            .timeout(self.ingest.nats.request_timeout)
            .build(client))
    }
}

/// An address a client can connect to: unspecified addresses become loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}
