//! The `[stream]` section, and who may create or change the two streams:
//! `WEBHOOKS` (`webhooks.>`, plus `replay.>` for replays meant for one
//! group) and `WEBHOOKS_DLQ` (`dlq.>`).
//!
//! One owner: ingest creates a stream that does not exist
//! ([`StreamConfig::declare`], after binding its ports); every other binary
//! only checks ([`StreamConfig::check`]). No binary changes an existing
//! stream: a difference from the config is a warning and the
//! [`DRIFT_METRIC`] gauge. Changes are made by an operator with
//! `hookline streams apply`, which shows each [`Difference`] and what it
//! would delete ([`Effect`]) before applying it.

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

/// Why the streams could not be declared or checked.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The settings contradict each other.
    #[error("invalid [stream] settings: {0}")]
    Invalid(String),
    /// The stream does not exist (yet).
    #[error(
        "stream {name} does not exist: hookline-ingest creates it at start-up, or run `hookline streams apply`"
    )]
    Missing {
        /// The stream.
        name: String,
    },
    /// The server did not answer or refused to describe the stream.
    #[error("cannot read stream {name}")]
    Read {
        /// The stream.
        name: String,
        /// The JetStream error.
        #[source]
        source: jetstream::context::GetStreamError,
    },
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

    /// Both streams' JetStream configs, `WEBHOOKS` first.
    pub fn wanted(&self) -> [stream::Config; 2] {
        [self.webhooks(), self.dead_letters()]
    }

    /// What ingest does at start-up (after binding its ports): creates a
    /// stream that does not exist; an existing one is only checked, never
    /// changed ([`check`](Self::check)). Changes are the operator's, through
    /// `hookline streams apply`, which shows what they would delete.
    ///
    /// # Errors
    /// Invalid settings, or the server refused or did not answer.
    pub async fn declare(&self, js: &jetstream::Context) -> Result<(), StreamError> {
        self.validate()?;
        for wanted in self.wanted() {
            match current(js, &wanted.name).await? {
                Some(current) => report_drift(&current, &wanted),
                None => create(js, wanted).await?,
            }
        }
        Ok(())
    }

    /// What every binary but ingest does: checks that both streams exist,
    /// and warns (log and `hookline_stream_config_drift`) where an existing
    /// stream differs from this config. Never changes a stream.
    ///
    /// # Errors
    /// Invalid settings, a stream missing ([`StreamError::Missing`]), or the
    /// server did not answer.
    pub async fn check(&self, js: &jetstream::Context) -> Result<(), StreamError> {
        self.validate()?;
        for wanted in self.wanted() {
            match current(js, &wanted.name).await? {
                Some(current) => report_drift(&current, &wanted),
                None => return Err(StreamError::Missing { name: wanted.name }),
            }
        }
        Ok(())
    }
}

/// The stream's current config, `None` when it does not exist.
///
/// # Errors
/// The server did not answer or refused.
pub async fn current(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<stream::Config>, StreamError> {
    match js.get_stream(name).await {
        Ok(stream) => Ok(Some(stream.cached_info().config.clone())),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(source) => Err(StreamError::Read {
            name: name.to_owned(),
            source,
        }),
    }
}

fn is_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(e)
            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Creates a missing stream. Another process (a second ingest) may be
/// creating it at the same moment; on a cluster its creation can take a
/// while to become visible, and the server refuses ours meanwhile: the
/// stream is looked for again for a few seconds, then checked instead.
async fn create(js: &jetstream::Context, wanted: stream::Config) -> Result<(), StreamError> {
    const TRIES: u32 = 20;
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(250);
    let name = wanted.name.clone();
    let mut tries = 0;
    loop {
        let Err(source) = js.create_stream(wanted.clone()).await else {
            tracing::info!(stream = %name, "stream created");
            metrics::gauge!(DRIFT_METRIC, "stream" => name).set(0.0);
            return Ok(());
        };
        if let Ok(Some(current)) = current(js, &name).await {
            report_drift(&current, &wanted);
            return Ok(());
        }
        tries += 1;
        if tries >= TRIES {
            return Err(StreamError::Declare { name, source });
        }
        tracing::debug!(stream = %name, error = %crate::error::Chain(&source), "stream not created yet; retrying");
        tokio::time::sleep(PAUSE).await;
    }
}

/// Gauge: how many settings of an existing stream differ from this
/// process's `[stream]` config (0 when they match).
pub const DRIFT_METRIC: &str = "hookline_stream_config_drift";

/// Logs a warning listing the differences, and sets [`DRIFT_METRIC`].
fn report_drift(current: &stream::Config, wanted: &stream::Config) {
    let differences = differences(current, wanted);
    #[allow(clippy::cast_precision_loss)] // a handful of settings
    metrics::gauge!(DRIFT_METRIC, "stream" => wanted.name.clone()).set(differences.len() as f64);
    if differences.is_empty() {
        return;
    }
    let listed: Vec<String> = differences.iter().map(Difference::to_string).collect();
    tracing::warn!(
        stream = %wanted.name,
        differences = %listed.join("; "),
        "stream differs from this process's [stream] settings; left unchanged (only `hookline streams apply` changes a stream, and shows what the change would delete)"
    );
}

/// What changing one setting to the configured value would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Raises a limit or changes no stored message.
    Safe,
    /// Lowers a retention limit: stored messages beyond it are deleted
    /// (any lower `max_age`; a lower size or count limit on a `discard:
    /// old` stream).
    Deletes,
    /// Lowers a size or count limit of a `discard: new` stream: nothing is
    /// deleted, but publishes are refused (ingest answers 503) while the
    /// stream holds more than the new limit.
    Fills,
    /// Fewer replicas: stored messages survive fewer node losses.
    LowersDurability,
    /// Subjects change: publishes to a removed subject are refused.
    Reroutes,
    /// The server cannot change this setting in place.
    Immutable,
}

/// One setting of an existing stream that differs from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The setting (`max_age`, `max_bytes`, `replicas`, …).
    pub setting: &'static str,
    /// Its value on the server.
    pub current: String,
    /// Its value in the config.
    pub wanted: String,
    /// What applying it would do.
    pub effect: Effect,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (config: {})",
            self.setting, self.current, self.wanted
        )
    }
}

/// A limit where 0 or less means unlimited.
fn limit(value: i64) -> Option<i64> {
    (value > 0).then_some(value)
}

fn show_limit(value: i64, unit: impl Fn(i64) -> String) -> String {
    limit(value).map_or_else(|| "unlimited".to_owned(), unit)
}

fn show_age(age: std::time::Duration) -> String {
    if age.is_zero() {
        "unlimited".to_owned()
    } else {
        humantime::format_duration(age).to_string()
    }
}

/// `64MiB`, `1GiB`, `1KiB` when exact (as config writes them), else `N bytes`.
pub fn human_bytes(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// Lowering a limit (`None` = unlimited) has effect `lower`; raising is safe.
fn limit_effect(current: Option<i64>, wanted: Option<i64>, lower: Effect) -> Effect {
    match (current, wanted) {
        (_, None) => Effect::Safe,
        (None, Some(_)) => lower,
        (Some(current), Some(wanted)) if wanted < current => lower,
        _ => Effect::Safe,
    }
}

/// The settings Hookline manages that differ between `current` (the
/// server's) and `wanted` (the config's), with what changing each would do.
pub fn differences(current: &stream::Config, wanted: &stream::Config) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut differ = |setting, current: String, wanted: String, effect| {
        if current != wanted {
            out.push(Difference {
                setting,
                current,
                wanted,
                effect,
            });
        }
    };
    let mut have = current.subjects.clone();
    let mut want = wanted.subjects.clone();
    have.sort();
    want.sort();
    differ(
        "subjects",
        have.join(","),
        want.join(","),
        if have.iter().all(|s| want.contains(s)) {
            Effect::Safe
        } else {
            Effect::Reroutes
        },
    );
    differ(
        "storage",
        format!("{:?}", current.storage).to_lowercase(),
        format!("{:?}", wanted.storage).to_lowercase(),
        Effect::Immutable,
    );
    differ(
        "retention",
        format!("{:?}", current.retention).to_lowercase(),
        format!("{:?}", wanted.retention).to_lowercase(),
        Effect::Immutable,
    );
    differ(
        "replicas",
        current.num_replicas.max(1).to_string(),
        wanted.num_replicas.max(1).to_string(),
        if wanted.num_replicas.max(1) < current.num_replicas.max(1) {
            Effect::LowersDurability
        } else {
            Effect::Safe
        },
    );
    let age = |d: std::time::Duration| {
        (!d.is_zero()).then(|| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    };
    differ(
        "max_age",
        show_age(current.max_age),
        show_age(wanted.max_age),
        limit_effect(age(current.max_age), age(wanted.max_age), Effect::Deletes),
    );
    // nats-server enforces a lower size or count limit by deleting the
    // oldest messages only on a `discard: old` stream.
    let lower_size = if wanted.discard == stream::DiscardPolicy::Old {
        Effect::Deletes
    } else {
        Effect::Fills
    };
    let bytes = |b: i64| show_limit(b, |b| human_bytes(u64::try_from(b).unwrap_or(0)));
    differ(
        "max_bytes",
        bytes(current.max_bytes),
        bytes(wanted.max_bytes),
        limit_effect(
            limit(current.max_bytes),
            limit(wanted.max_bytes),
            lower_size,
        ),
    );
    let count = |n: i64| show_limit(n, |n| n.to_string());
    differ(
        "max_msgs",
        count(current.max_messages),
        count(wanted.max_messages),
        limit_effect(
            limit(current.max_messages),
            limit(wanted.max_messages),
            lower_size,
        ),
    );
    differ(
        "max_msgs_per_subject",
        count(current.max_messages_per_subject),
        count(wanted.max_messages_per_subject),
        limit_effect(
            limit(current.max_messages_per_subject),
            limit(wanted.max_messages_per_subject),
            lower_size,
        ),
    );
    differ(
        "discard",
        format!("{:?}", current.discard).to_lowercase(),
        format!("{:?}", wanted.discard).to_lowercase(),
        Effect::Safe,
    );
    differ(
        "duplicate_window",
        show_age(current.duplicate_window),
        show_age(wanted.duplicate_window),
        Effect::Safe,
    );
    differ(
        "allow_direct",
        current.allow_direct.to_string(),
        wanted.allow_direct.to_string(),
        Effect::Safe,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_retention_deletes_and_raising_is_safe() {
        let config = StreamConfig::default();
        let wanted = config.webhooks();
        assert_eq!(differences(&wanted, &wanted), vec![]);

        let mut longer = wanted.clone();
        longer.max_age = std::time::Duration::from_secs(30 * 24 * 3600);
        longer.max_bytes = 10 << 30;
        longer.num_replicas = 3;
        let found = differences(&longer, &wanted);
        let effects: Vec<_> = found.iter().map(|d| (d.setting, d.effect)).collect();
        assert_eq!(
            effects,
            vec![
                ("replicas", Effect::LowersDurability),
                ("max_age", Effect::Deletes),
                ("max_bytes", Effect::Fills),
            ]
        );
        assert_eq!(found[1].to_string(), "max_age 30days (config: 7days)");
        let back: Vec<_> = differences(&wanted, &longer)
            .iter()
            .map(|d| d.effect)
            .collect();
        assert_eq!(back, vec![Effect::Safe; 3]);

        let mut unlimited = wanted.clone();
        unlimited.max_age = std::time::Duration::ZERO;
        unlimited.max_bytes = -1;
        let effects: Vec<_> = differences(&unlimited, &wanted)
            .iter()
            .map(|d| d.effect)
            .collect();
        assert_eq!(effects, vec![Effect::Deletes, Effect::Fills]);
        let mut old = wanted.clone();
        old.discard = stream::DiscardPolicy::Old;
        let mut bigger = old.clone();
        bigger.max_bytes = 10 << 30;
        assert_eq!(differences(&bigger, &old)[0].effect, Effect::Deletes);

        let mut other = wanted.clone();
        other.subjects = vec!["webhooks.>".to_owned(), "orders.>".to_owned()];
        other.storage = stream::StorageType::Memory;
        let effects: Vec<_> = differences(&other, &wanted)
            .iter()
            .map(|d| (d.setting, d.effect))
            .collect();
        assert_eq!(
            effects,
            vec![
                ("subjects", Effect::Reroutes),
                ("storage", Effect::Immutable)
            ]
        );
    }
}
