//! The processor's configuration: the `[processor]` section
//! ([`ProcessorConfig`]) and the parts of the shared Hookline file the
//! processor reads ([`Config`]: `nats`, `stream`, `processor`, `telemetry`;
//! other sections, such as ingest's, are ignored).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::DeliverPolicy;
use hookline_platform::config::duration;
use hookline_platform::contract::{SUBJECT_PREFIX, is_valid_name};
use hookline_platform::nats::NatsConfig;
use hookline_platform::runtime;
use hookline_platform::streams::StreamConfig;
use hookline_platform::telemetry::TelemetryConfig;
use serde::Deserialize;

use crate::Error;

/// What `hookline-processor` reads from the shared Hookline TOML file.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `[nats]`: where to connect.
    #[serde(default)]
    pub nats: NatsConfig,
    /// `[stream]`: the `WEBHOOKS` and `WEBHOOKS_DLQ` streams.
    #[serde(default)]
    pub stream: StreamConfig,
    /// `[processor]`: this processor group.
    pub processor: ProcessorConfig,
    /// `[telemetry]`: log format.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

impl Config {
    /// A config with default `nats`, `stream` and `telemetry` sections.
    pub fn new(processor: ProcessorConfig) -> Self {
        Self {
            nats: NatsConfig::default(),
            stream: StreamConfig::default(),
            processor,
            telemetry: TelemetryConfig::default(),
        }
    }

    /// Checks every section the processor uses.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key and the rule it breaks.
    pub fn validate(&self) -> Result<(), Error> {
        self.stream
            .validate()
            .map_err(|e| Error::InvalidConfig(e.to_string()))?;
        self.processor.validate()
    }
}

/// The `[processor]` section: one processor group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    /// The durable consumer's name; instances with the same group share work.
    pub group: String,
    /// Filter subjects, each under `webhooks.` (e.g. `webhooks.stripe.>`).
    #[serde(default = "default_subjects")]
    pub subjects: Vec<String>,
    /// Handlers running at once in one instance (also the pull batch size).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Runtime threads of the `hookline-processor` binary: 1 (one core per
    /// instance; scale with instances), 0 for one per core, or n. A library
    /// user runs [`run`](crate::run) on a runtime of its own.
    #[serde(default = "default_worker_threads")]
    pub worker_threads: usize,
    /// How long the server waits for an ack (or an in-progress ack) before
    /// redelivering; also the lease of an idempotency claim.
    #[serde(default = "default_ack_wait", deserialize_with = "duration")]
    pub ack_wait: Duration,
    /// Deliveries that may run the handler ([`Delivery::attempt`](crate::Delivery)
    /// counts them); a failure on the last one dead-letters the webhook. The
    /// consumer's server-side `MaxDeliver` is one more (see the crate docs).
    #[serde(default = "default_max_deliver")]
    pub max_deliver: u32,
    /// Exponential redelivery delays.
    #[serde(default)]
    pub backoff: BackoffConfig,
    /// How long a "handled" record is kept: late provider retries and replays
    /// within this horizon are acked without running the handler.
    #[serde(default = "default_idempotency_ttl", deserialize_with = "duration")]
    pub idempotency_ttl: Duration,
    /// The JetStream KV bucket holding idempotency records (shared by groups;
    /// keys are prefixed with the group).
    #[serde(default = "default_idempotency_bucket")]
    pub idempotency_bucket: String,
    /// A handler call running longer is abandoned and retried.
    #[serde(default = "default_handler_timeout", deserialize_with = "duration")]
    pub handler_timeout: Duration,
    /// On shutdown, how long running handlers may take to finish before they
    /// are abandoned and their messages released for immediate redelivery.
    #[serde(default = "default_drain_timeout", deserialize_with = "duration")]
    pub drain_timeout: Duration,
    /// The consumer's `MaxAckPending`: at least instances × concurrency × 2
    /// plus the backlog of messages waiting in backoff (they count too).
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: usize,
    /// The built-in handler the binary runs (library users pass their own).
    #[serde(default)]
    pub handler: Option<HandlerConfig>,
    /// Where the binary serves `/metrics`, `/healthz` and `/readyz`.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
    /// Where a new group starts reading the stream: applied once, when the
    /// group's consumer is created. `None` (unset) means [`Start::New`] for
    /// a new group and whatever an existing group was created with.
    #[serde(default)]
    pub start: Option<Start>,
}

/// `start = "new" | "all" | "<RFC 3339 time>"`: the first webhook a new
/// group receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Webhooks stored after the group was created (the default: a group
    /// added to a live pipeline does not run the history it never owned).
    New,
    /// Every webhook the stream still holds.
    All,
    /// Webhooks stored at or after this time.
    Since(SystemTime),
}

impl Start {
    /// The consumer's deliver policy for this start.
    pub fn deliver_policy(self) -> DeliverPolicy {
        match self {
            Self::New => DeliverPolicy::New,
            Self::All => DeliverPolicy::All,
            Self::Since(at) => DeliverPolicy::ByStartTime {
                start_time: at.into(),
            },
        }
    }

    /// The start an existing consumer was created with, if it is one of ours.
    pub fn from_deliver_policy(policy: DeliverPolicy) -> Option<Self> {
        match policy {
            DeliverPolicy::New => Some(Self::New),
            DeliverPolicy::All => Some(Self::All),
            DeliverPolicy::ByStartTime { start_time } => Some(Self::Since(start_time.into())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::New => f.write_str("new"),
            Self::All => f.write_str("all"),
            Self::Since(at) => write!(f, "{}", humantime::format_rfc3339(*at)),
        }
    }
}

impl std::str::FromStr for Start {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "new" => Ok(Self::New),
            "all" => Ok(Self::All),
            _ => humantime::parse_rfc3339_weak(text).map(Self::Since).map_err(|_| {
                format!(
                    "{text:?} is not \"new\", \"all\" or an RFC 3339 time (2026-12-01T00:00:00Z)"
                )
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Start {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `backoff = { initial = "1s", max = "10m" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    /// The first redelivery delay; each later one doubles.
    #[serde(default = "default_backoff_initial", deserialize_with = "duration")]
    pub initial: Duration,
    /// The largest delay (also caps a handler's `Retry-After`).
    #[serde(default = "default_backoff_max", deserialize_with = "duration")]
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: default_backoff_initial(),
            max: default_backoff_max(),
        }
    }
}

/// The built-in handler: `{ http = { … } }` or `{ file = { … } }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum HandlerConfig {
    /// POST each webhook to an internal URL.
    Http(HttpHandlerConfig),
    /// Append each webhook as a JSON line to a file.
    File(FileHandlerConfig),
}

/// `handler = { http = { url = "…", timeout = "10s" } }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHandlerConfig {
    /// The URL that receives `POST`s.
    pub url: String,
    /// Per-request timeout; a timeout is a retryable failure.
    #[serde(default = "default_http_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

/// `handler = { file = { path = "events.jsonl" } }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHandlerConfig {
    /// The file lines are appended to (created if missing).
    pub path: PathBuf,
}

fn default_subjects() -> Vec<String> {
    vec![format!("{SUBJECT_PREFIX}.>")]
}
fn default_concurrency() -> usize {
    32
}
fn default_worker_threads() -> usize {
    1
}
fn default_ack_wait() -> Duration {
    Duration::from_secs(30)
}
fn default_max_deliver() -> u32 {
    8
}
fn default_backoff_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(600)
}
fn default_idempotency_ttl() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_idempotency_bucket() -> String {
    "hookline_idempotency".to_owned()
}
fn default_handler_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_drain_timeout() -> Duration {
    Duration::from_secs(25)
}
fn default_max_ack_pending() -> usize {
    10_000
}
fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 9091))
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(10)
}

impl ProcessorConfig {
    /// A config for `group` with every other key at its default (no handler).
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            subjects: default_subjects(),
            concurrency: default_concurrency(),
            worker_threads: default_worker_threads(),
            ack_wait: default_ack_wait(),
            max_deliver: default_max_deliver(),
            backoff: BackoffConfig::default(),
            idempotency_ttl: default_idempotency_ttl(),
            idempotency_bucket: default_idempotency_bucket(),
            handler_timeout: default_handler_timeout(),
            drain_timeout: default_drain_timeout(),
            max_ack_pending: default_max_ack_pending(),
            handler: None,
            metrics_listen: default_metrics_listen(),
            start: None,
        }
    }

    /// Checks the rules the server or the runtime would otherwise trip over.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key and the rule it breaks.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |message: String| Err(Error::InvalidConfig(message));
        if !is_valid_name(&self.group) {
            return invalid(format!(
                "processor.group {:?} must be 1-64 lower-case letters, digits, '-' or '_'",
                self.group
            ));
        }
        if self.subjects.is_empty() {
            return invalid("processor.subjects must list at least one subject".to_owned());
        }
        for subject in &self.subjects {
            if !is_valid_filter(subject) {
                return invalid(format!(
                    "processor.subjects entry {subject:?} must start with \"{SUBJECT_PREFIX}.\" \
                     and be a valid subject filter (e.g. \"{SUBJECT_PREFIX}.stripe.>\")"
                ));
            }
        }
        if !(1..=10_000).contains(&self.concurrency) {
            return invalid("processor.concurrency must be between 1 and 10000".to_owned());
        }
        if self.worker_threads > runtime::MAX_WORKER_THREADS {
            return invalid(format!(
                "processor.worker_threads must be at most {} (0 means one per core)",
                runtime::MAX_WORKER_THREADS
            ));
        }
        if self.ack_wait < Duration::from_millis(100) {
            return invalid("processor.ack_wait must be at least 100ms".to_owned());
        }
        if self.max_deliver < 1 {
            return invalid("processor.max_deliver must be at least 1".to_owned());
        }
        if self.backoff.initial.is_zero() {
            return invalid("processor.backoff.initial must be positive".to_owned());
        }
        if self.backoff.initial > self.backoff.max {
            return invalid(format!(
                "processor.backoff.initial ({}) must not exceed processor.backoff.max ({})",
                humantime::format_duration(self.backoff.initial),
                humantime::format_duration(self.backoff.max)
            ));
        }
        if self.idempotency_ttl <= self.ack_wait {
            return invalid(
                "processor.idempotency_ttl must be longer than processor.ack_wait".to_owned(),
            );
        }
        if self.idempotency_bucket.is_empty()
            || !self
                .idempotency_bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return invalid(format!(
                "processor.idempotency_bucket {:?} may only hold letters, digits, '-' and '_'",
                self.idempotency_bucket
            ));
        }
        if self.handler_timeout.is_zero() {
            return invalid("processor.handler_timeout must be positive".to_owned());
        }
        if self.max_ack_pending < self.concurrency {
            return invalid(
                "processor.max_ack_pending must be at least processor.concurrency".to_owned(),
            );
        }
        if let Some(HandlerConfig::Http(http)) = &self.handler {
            match reqwest::Url::parse(&http.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                _ => {
                    return invalid(format!(
                        "processor.handler.http.url {:?} must be an http:// or https:// URL",
                        http.url
                    ));
                }
            }
            if http.timeout.is_zero() {
                return invalid("processor.handler.http.timeout must be positive".to_owned());
            }
        }
        Ok(())
    }

    /// The consumer's server-side `MaxDeliver`: `max_deliver` handler
    /// attempts plus one delivery reserved for dead-lettering a last attempt
    /// that timed out.
    pub fn server_max_deliver(&self) -> i64 {
        i64::from(self.max_deliver) + 1
    }
}

/// `webhooks.` followed by non-empty tokens without whitespace, `>` only last.
fn is_valid_filter(subject: &str) -> bool {
    let Some(rest) = subject
        .strip_prefix(SUBJECT_PREFIX)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    let tokens: Vec<&str> = rest.split('.').collect();
    tokens.iter().enumerate().all(|(i, token)| {
        !token.is_empty()
            && token.chars().all(|c| c.is_ascii_graphic())
            && (*token == "*" || *token == ">" || !token.contains(['*', '>']))
            && (*token != ">" || i == tokens.len() - 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        let config: Config = hookline_platform::config::load(Some(file.path()), vec![])
            .map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    const FULL: &str = r#"
        [nats]
        url = "nats://127.0.0.1:4222"
        [ingest]
        listen = "0.0.0.0:8080"
        [[sources]]
        name = "github"
        [processor]
        group = "billing"
        subjects = ["webhooks.stripe.>"]
        concurrency = 32
        ack_wait = "30s"
        max_deliver = 8
        backoff = { initial = "1s", max = "10m" }
        idempotency_ttl = "7d"
        handler = { http = { url = "http://127.0.0.1:9000/hooks", timeout = "10s" } }
    "#;

    #[test]
    fn reads_the_design_keys_and_ignores_other_sections() {
        let config = parse(FULL).unwrap();
        let p = &config.processor;
        assert_eq!(p.group, "billing");
        assert_eq!(p.subjects, vec!["webhooks.stripe.>"]);
        assert_eq!(p.backoff.max, Duration::from_secs(600));
        assert_eq!(p.server_max_deliver(), 9);
        assert_eq!(
            p.handler,
            Some(HandlerConfig::Http(HttpHandlerConfig {
                url: "http://127.0.0.1:9000/hooks".into(),
                timeout: Duration::from_secs(10)
            }))
        );
        let file = parse(&FULL.replace(
            r#"{ http = { url = "http://127.0.0.1:9000/hooks", timeout = "10s" } }"#,
            r#"{ file = { path = "events.jsonl" } }"#,
        ))
        .unwrap();
        assert!(matches!(
            file.processor.handler,
            Some(HandlerConfig::File(_))
        ));
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            (
                "group = \"billing\"",
                "group = \"Billing\"",
                "processor.group",
            ),
            (
                "[\"webhooks.stripe.>\"]",
                "[\"orders.>\"]",
                "processor.subjects",
            ),
            (
                "[\"webhooks.stripe.>\"]",
                "[\"webhooks.>.x\"]",
                "processor.subjects",
            ),
            (
                "max_deliver = 8",
                "max_deliver = 0",
                "processor.max_deliver",
            ),
            (
                "initial = \"1s\"",
                "initial = \"20m\"",
                "processor.backoff.initial",
            ),
            (
                "ack_wait = \"30s\"",
                "ack_wait = \"30 parsecs\"",
                "30 parsecs",
            ),
            (
                "concurrency = 32",
                "concurrency = 32\ncolour = \"red\"",
                "colour",
            ),
            (
                "concurrency = 32",
                "concurrency = 32\nworker_threads = 5000",
                "processor.worker_threads",
            ),
            (
                "http://127.0.0.1:9000/hooks",
                "ftp://x",
                "processor.handler.http.url",
            ),
        ];
        for (from, to, expected) in cases {
            let err = parse(&FULL.replace(from, to)).unwrap_err();
            assert!(err.contains(expected), "{to}: {err}");
        }
        let err = parse("[nats]\nurl = \"nats://x:1\"\n").unwrap_err();
        assert!(err.contains("processor"), "{err}");
    }

    #[test]
    fn subject_filters() {
        for good in [
            "webhooks.>",
            "webhooks.stripe.>",
            "webhooks.*.push",
            "webhooks.a.b",
        ] {
            assert!(is_valid_filter(good), "{good}");
        }
        for bad in [
            "webhooks",
            "webhooks.",
            "dlq.>",
            "webhooks..x",
            "webhooks.a b",
            "webhooks.>.x",
            "webhooks.a*",
        ] {
            assert!(!is_valid_filter(bad), "{bad}");
        }
    }
}
