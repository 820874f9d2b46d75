//! Configured sources, resolved once at start-up: secrets read, verifier
//! keys prepared, per-source metric handles registered.

use std::collections::HashMap;
use std::sync::Arc;

use hookline_platform::secret::SecretError;
use hookline_signature::Verifier;

use crate::config::{IngestSettings, SourceConfig};
use crate::telemetry::SourceMetrics;

/// One source, ready to verify requests.
#[derive(Debug)]
pub struct Source {
    /// The configured name (URL segment and subject token).
    pub name: String,
    /// The provider's verifier with this source's secrets.
    pub verifier: Verifier,
    /// Largest accepted body, in bytes.
    pub max_body: usize,
    /// `webhooks.<name>.` — the subject prefix, built once.
    pub(crate) subject_prefix: String,
    pub(crate) metrics: SourceMetrics,
}

/// All sources by name.
#[derive(Debug, Clone, Default)]
pub struct Sources(HashMap<String, Arc<Source>>);

/// A source that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A secret could not be read.
    #[error("source {source_name:?}")]
    Secret {
        /// The source.
        source_name: String,
        /// Why.
        #[source]
        source: SecretError,
    },
    /// The provider settings or secrets are invalid for the scheme.
    #[error("source {source_name:?}")]
    Provider {
        /// The source.
        source_name: String,
        /// Why.
        #[source]
        source: hookline_signature::ConfigError,
    },
}

impl Sources {
    /// Resolves every `[[sources]]` entry.
    ///
    /// # Errors
    /// The first source whose secrets or provider settings are unusable.
    pub fn build(settings: &IngestSettings) -> Result<Self, SourceError> {
        let default_max_body = settings.ingest.max_body;
        let mut map = HashMap::new();
        for config in &settings.sources {
            let max_body = config.max_body.unwrap_or(default_max_body).0;
            let source = Source::build(config, usize::try_from(max_body).unwrap_or(usize::MAX))?;
            map.insert(config.name.clone(), Arc::new(source));
        }
        Ok(Self(map))
    }

    /// The source named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Source>> {
        self.0.get(name)
    }

    /// The configured names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl Source {
    fn build(config: &SourceConfig, max_body: usize) -> Result<Self, SourceError> {
        let secrets = config
            .secrets
            .iter()
            .map(|s| s.resolve())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| SourceError::Secret {
                source_name: config.name.clone(),
                source,
            })?;
        let keys: Vec<&[u8]> = secrets.iter().map(|s| s.expose().as_bytes()).collect();
        let verifier =
            Verifier::new(&config.provider, &keys, config.tolerance).map_err(|source| {
                SourceError::Provider {
                    source_name: config.name.clone(),
                    source,
                }
            })?;
        Ok(Self {
            subject_prefix: format!(
                "{}.{}.",
                hookline_platform::contract::SUBJECT_PREFIX,
                config.name
            ),
            metrics: SourceMetrics::new(&config.name),
            name: config.name.clone(),
            verifier,
            max_body,
        })
    }

    /// The tolerance in force, for logs.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, max body {} bytes)",
            self.name,
            self.verifier.scheme(),
            self.max_body
        )
    }
}
