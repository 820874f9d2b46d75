//! Configured sources, resolved once at start-up: secrets read, verifier
//! keys prepared, per-source metric handles registered.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use hookline_platform::secret::SecretError;
use hookline_signature::{Credentials, Verifier};

use crate::config::{IngestSettings, SourceConfig};
use crate::replay::{ReplayError, ReplayGuard};
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
    /// `public_url` as configured (no query).
    pub public_url: Option<String>,
    /// For providers that hand their secret over in a handshake (Asana,
    /// Notion): the spec to verify with the captured secret.
    pub(crate) captures: Option<hookline_signature::ProviderSpec>,
    /// `max_body` was configured (else it is what fits the server).
    explicit_max_body: bool,
    /// `replay_guard`, declared once NATS is connected.
    pub(crate) replay_guard: Option<ReplayGuard>,
    replay_window: Option<std::time::Duration>,
    /// `webhooks.<name>.` — the subject prefix, built once.
    pub(crate) subject_prefix: String,
    pub(crate) metrics: SourceMetrics,
}

/// What time it is for verification: the system clock, or a fixed instant in
/// tests that replay the providers' vectors (the binaries never change it).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// All sources by name, and the clock their replay windows are checked against.
#[derive(Clone)]
pub struct Sources {
    map: HashMap<String, Arc<Source>>,
    clock: Clock,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            clock: Arc::new(SystemTime::now),
        }
    }
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("names", &self.names())
            .finish_non_exhaustive()
    }
}

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
    /// Resolves every `[[sources]]` entry. Sources that set no `max_body`
    /// take `ingest.max_body`, until [`Sources::default_max_body`] says
    /// what fits the server.
    ///
    /// # Errors
    /// The first source whose secrets or provider settings are unusable.
    pub fn build(settings: &IngestSettings) -> Result<Self, SourceError> {
        let mut map = HashMap::new();
        for config in &settings.sources {
            let max_body = config.max_body.or(settings.ingest.max_body).map(|b| b.0);
            let source = Source::build(config, max_body)?;
            map.insert(config.name.clone(), Arc::new(source));
        }
        Ok(Self {
            map,
            ..Self::default()
        })
    }

    /// Sets the body limit of sources without one of their own (from
    /// [`IngestSettings::check_payload_fit`], once the server is known).
    /// Call before the sources are shared.
    pub fn default_max_body(&mut self, limit: u64) {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        for source in self.map.values_mut() {
            if let Some(source) = Arc::get_mut(source)
                && !source.explicit_max_body
            {
                source.max_body = limit;
            }
        }
    }

    /// Declares the replay guard of every source that has one. Call before
    /// the sources are shared.
    ///
    /// # Errors
    /// A bucket JetStream refused.
    pub async fn declare_replay_guards(
        &mut self,
        js: &async_nats::jetstream::Context,
        replicas: usize,
    ) -> Result<(), ReplayError> {
        for source in self.map.values_mut() {
            if let Some(source) = Arc::get_mut(source)
                && let Some(window) = source.replay_window
            {
                source.replay_guard =
                    Some(ReplayGuard::declare(js, &source.name, window, replicas).await?);
            }
        }
        Ok(())
    }

    /// The source named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Source>> {
        self.map.get(name)
    }

    /// Now, by the verification clock.
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// Whether any source captures its secret from a handshake (then ingest
    /// opens the capture bucket).
    pub fn any_captures(&self) -> bool {
        self.map.values().any(|source| source.captures_secret())
    }

    /// Replaces the verification clock (tests replaying signed vectors).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The configured names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.map.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl Source {
    fn build(config: &SourceConfig, max_body: Option<u64>) -> Result<Self, SourceError> {
        let secrets = config
            .secrets
            .iter()
            .map(|s| s.resolve())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| SourceError::Secret {
                source_name: config.name.clone(),
                source,
            })?;
        let verify_token = config
            .verify_token
            .as_ref()
            .map(|token| token.resolve())
            .transpose()
            .map_err(|source| SourceError::Secret {
                source_name: config.name.clone(),
                source,
            })?;
        let keys: Vec<&[u8]> = secrets.iter().map(|s| s.expose().as_bytes()).collect();
        let credentials = Credentials {
            secrets: &keys,
            verify_token: verify_token.as_ref().map(|token| token.expose().as_bytes()),
            public_key: config.public_key.as_deref(),
        };
        let captures = config
            .provider
            .provider()
            .is_some_and(hookline_signature::Provider::captures_secret)
            .then(|| config.provider.clone());
        let verifier = if keys.is_empty() && captures.is_some() {
            Verifier::awaiting_capture(&config.provider)
        } else {
            Verifier::with_credentials(&config.provider, &credentials, config.tolerance)
        }
        .map_err(|source| SourceError::Provider {
            source_name: config.name.clone(),
            source,
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
            max_body: max_body.map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX)),
            explicit_max_body: max_body.is_some(),
            public_url: config.public_url.clone(),
            captures,
            replay_guard: None,
            replay_window: config.replay_guard,
        })
    }

    /// Whether any source captures its secret from a handshake.
    pub(crate) fn captures_secret(&self) -> bool {
        self.captures.is_some()
    }

    /// Whether `method` reaches this source: `POST` always, `GET`/`HEAD` only for
    /// providers whose handshakes (or deliveries) use them.
    pub fn accepts(&self, method: &http::Method) -> bool {
        *method == http::Method::POST
            || self
                .verifier
                .provider()
                .is_some_and(|provider| provider.extra_methods().contains(&method.as_str()))
    }

    /// The URL the provider called: `public_url` (or, without one, the request's
    /// own path) with the request's query string appended.
    /// Borrowed (no allocation on the hot path) when there is no query.
    pub fn request_url<'a>(&'a self, path: &'a str, query: Option<&str>) -> Cow<'a, str> {
        let base = self.public_url.as_deref().unwrap_or(path);
        match query.filter(|query| !query.is_empty()) {
            Some(query) => Cow::Owned(format!("{base}?{query}")),
            None => Cow::Borrowed(base),
        }
    }

    /// The limits in force, for logs.
    pub fn describe(&self) -> String {
        let guard = self
            .replay_guard
            .as_ref()
            .map(|guard| format!(", replay guard {:?}", guard.window()))
            .unwrap_or_default();
        format!(
            "{} ({}, max body {} bytes{guard})",
            self.name,
            self.verifier.scheme(),
            self.max_body
        )
    }
}
