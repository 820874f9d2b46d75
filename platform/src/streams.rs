//! The `[stream]` section and the idempotent declaration of the two
//! streams: `WEBHOOKS` (`webhooks.>`, plus `replay.>` for replays meant
//! for one group) and `WEBHOOKS_DLQ` (`dlq.>`).

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use serde::Deserialize;

use crate::config::{self, ByteSize};
use crate::contract::{DLQ_SUBJECT_PREFIX, REPLAY_SUBJECT_PREFIX, SUBJECT_PREFIX};

/// The `[stream]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The main stream's name.
    #[serde(default = "default_name")]
    pub name: String,
    /// 1 on a single server, 3 (or 5) on a cluster.
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// How long webhooks are kept (replay, audit, late consumers).
    #[serde(default = "default_max_age", deserialize_with = "config::duration")]
    pub max_age: Duration,
    /// How long a `Nats-Msg-Id` is remembered for dedup (≤ `max_age`).
    #[serde(
        default = "default_duplicate_window",
        deserialize_with = "config::duration"
    )]
    pub duplicate_window: Duration,
    /// Size cap; when full, publishes fail (ingest answers 503) rather than
    /// dropping unprocessed webhooks (`discard: new`).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// The dead-letter stream's name.
    #[serde(default = "default_dlq_name")]
    pub dlq_name: String,
    /// How long dead letters are kept.
    #[serde(default = "default_dlq_max_age", deserialize_with = "config::duration")]
    pub dlq_max_age: Duration,
    /// The dead-letter stream's size cap.
    #[serde(default = "default_dlq_max_bytes")]
    pub dlq_max_bytes: ByteSize,
}

fn default_name() -> String {
    "WEBHOOKS".to_owned()
}
fn default_dlq_name() -> String {
    "WEBHOOKS_DLQ".to_owned()
}
fn default_replicas() -> usize {
    1
}
fn default_max_age() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_dlq_max_age() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_duplicate_window() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_max_bytes() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_dlq_max_bytes() -> ByteSize {
    ByteSize(256 << 20)
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            name: default_name(),
            replicas: default_replicas(),
            max_age: default_max_age(),
            duplicate_window: default_duplicate_window(),
            max_bytes: default_max_bytes(),
            dlq_name: default_dlq_name(),
            dlq_max_age: default_dlq_max_age(),
            dlq_max_bytes: default_dlq_max_bytes(),
        }
    }
}

/// Why the streams could not be declared.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The settings contradict each other.
    #[error("invalid [stream] settings: {0}")]
    Invalid(String),
    /// The server refused or did not answer.
    #[error("cannot create or update stream {name}")]
    Declare {
        /// The stream.
        name: String,
        /// The JetStream error.
        #[source]
        source: jetstream::context::CreateStreamError,
    },
}

impl StreamConfig {
    /// Checks what the server would otherwise reject with a cryptic code.
    ///
    /// # Errors
    /// A message naming the offending keys.
    pub fn validate(&self) -> Result<(), StreamError> {
        if self.duplicate_window > self.max_age {
            return Err(StreamError::Invalid(
                "duplicate_window must not exceed max_age".to_owned(),
            ));
        }
        if self.duplicate_window.is_zero() {
            return Err(StreamError::Invalid(
                "duplicate_window must be positive".to_owned(),
            ));
        }
        if !matches!(self.replicas, 1..=5) {
            return Err(StreamError::Invalid(
                "replicas must be between 1 and 5".to_owned(),
            ));
        }
        if self.name == self.dlq_name || self.name.is_empty() || self.dlq_name.is_empty() {
            return Err(StreamError::Invalid(
                "name and dlq_name must be two different non-empty names".to_owned(),
            ));
        }
        Ok(())
    }

    /// The `WEBHOOKS` stream's JetStream config: `webhooks.>` and the
    /// per-group replay subjects `replay.>`.
    pub fn webhooks(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: vec![
                format!("{SUBJECT_PREFIX}.>"),
                format!("{REPLAY_SUBJECT_PREFIX}.>"),
            ],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: self.replicas,
            max_age: self.max_age,
            max_bytes: i64::try_from(self.max_bytes.0).unwrap_or(i64::MAX),
            discard: stream::DiscardPolicy::New,
            duplicate_window: self.duplicate_window,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// The `WEBHOOKS_DLQ` stream's JetStream config.
    pub fn dead_letters(&self) -> stream::Config {
        stream::Config {
            name: self.dlq_name.clone(),
            subjects: vec![format!("{DLQ_SUBJECT_PREFIX}.>")],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: self.replicas,
            max_age: self.dlq_max_age,
            max_bytes: i64::try_from(self.dlq_max_bytes.0).unwrap_or(i64::MAX),
            discard: stream::DiscardPolicy::New,
            duplicate_window: self.duplicate_window.min(self.dlq_max_age),
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Creates both streams, or updates them to match this config.
    ///
    /// # Errors
    /// Invalid settings, or the server refused (e.g. an immutable field changed).
    pub async fn ensure(&self, js: &jetstream::Context) -> Result<(), StreamError> {
        self.validate()?;
        for config in [self.webhooks(), self.dead_letters()] {
            let name = config.name.clone();
            js.create_or_update_stream(config)
                .await
                .map_err(|source| StreamError::Declare { name, source })?;
        }
        Ok(())
    }
}
