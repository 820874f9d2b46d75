//! The processor's one error type: what stopped it from starting or running.
//! Per-message failures are not errors: they become retries or dead letters.

use std::path::PathBuf;

use async_nats::jetstream::context::{CreateKeyValueError, GetStreamError, PublishError};
use async_nats::jetstream::stream::{ConsumerError, RawMessageError};

/// Why the processor cannot start (or had to stop).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value breaks a rule; the message names the key.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The streams cannot be checked (invalid `[stream]` settings, NATS trouble).
    #[error(transparent)]
    Streams(#[from] hookline_platform::streams::StreamError),
    /// A stream the processor needs does not exist or cannot be read.
    #[error("stream {name} is not available")]
    Stream {
        /// The stream.
        name: String,
        /// The JetStream error.
        #[source]
        source: GetStreamError,
    },
    /// The group's durable consumer could not be created or updated.
    #[error("cannot create or update consumer {group} on stream {stream}")]
    Consumer {
        /// The group (consumer name).
        group: String,
        /// The stream.
        stream: String,
        /// The JetStream error.
        #[source]
        source: ConsumerError,
    },
    /// The group's consumer could not be looked up.
    #[error("cannot read consumer {group} on stream {stream}")]
    ConsumerInfo {
        /// The group (consumer name).
        group: String,
        /// The stream.
        stream: String,
        /// The JetStream error.
        #[source]
        source: async_nats::jetstream::context::ConsumerInfoError,
    },
    /// `processor.start` names a start other than the one the existing
    /// group was created with.
    #[error(
        "processor.start = \"{wanted}\", but group {group} already exists and started at \"{existing}\"; \
         a group's start applies only when it is created. Remove processor.start to keep the group as it is, \
         feed it history with `hookline replay --group {group} --source S --since T`, \
         or delete its consumer (every instance stopped) to create it again"
    )]
    StartChanged {
        /// The group.
        group: String,
        /// The configured start.
        wanted: crate::config::Start,
        /// The start the group was created with.
        existing: String,
    },
    /// The idempotency KV bucket could not be created or opened.
    #[error("cannot open idempotency bucket {bucket}")]
    IdempotencyBucket {
        /// The bucket.
        bucket: String,
        /// The JetStream error.
        #[source]
        source: CreateKeyValueError,
    },
    /// The `file` handler's output cannot be opened.
    #[error("cannot open handler output file {path}")]
    HandlerFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `http` handler's client cannot be built.
    #[error("cannot build the HTTP handler's client")]
    HttpClient(#[source] reqwest::Error),
    /// A dead letter to re-drive cannot be read.
    #[error("cannot read dead letter {sequence}")]
    DeadLetterRead {
        /// Its sequence in the dead-letter stream.
        sequence: u64,
        /// The JetStream error.
        #[source]
        source: RawMessageError,
    },
    /// The message to re-drive is not on a `dlq.<group>.<source>.<event>` subject.
    #[error("message {sequence} on {subject} is not a dead letter")]
    NotADeadLetter {
        /// Its sequence.
        sequence: u64,
        /// Its subject.
        subject: String,
    },
    /// The re-driven copy was not acknowledged by the `WEBHOOKS` stream.
    #[error("cannot re-drive dead letter {sequence}")]
    Redrive {
        /// Its sequence in the dead-letter stream.
        sequence: u64,
        /// The publish error.
        #[source]
        source: PublishError,
    },
}
