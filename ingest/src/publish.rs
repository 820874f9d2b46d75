//! Publishing to JetStream: one message per webhook with `Nats-Msg-Id`,
//! awaiting the PubAck within a bounded time. Transient failures (no
//! responders during a leader election, a timed-out ack, a broken pipe) are
//! retried with the same id, which the stream's duplicate window makes safe.

use std::time::Duration;

use async_nats::HeaderName;
use async_nats::connection::State;
use async_nats::header::IntoHeaderName as _;
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use bytes::Bytes;
use hookline_platform::contract::{HEADER_EVENT, HEADER_SOURCE};
use tokio::time::Instant;

/// Longest `Hookline-Event` header value; the Envelope keeps the full name.
const MAX_EVENT_HEADER: usize = 256;

/// A persisted webhook: the stream sequence and whether the stream already
/// held this `Nats-Msg-Id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persisted {
    /// Stream sequence (the original one for a duplicate).
    pub sequence: u64,
    /// The stream already had this id within its duplicate window.
    pub duplicate: bool,
}

/// Why a webhook was not persisted: 503, except [`PublishError::TooLarge`] (413).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The client is not connected right now.
    #[error("not connected to NATS")]
    Disconnected,
    /// No PubAck within the publish timeout.
    #[error("no PubAck within {0:?}")]
    TimedOut(Duration),
    /// The server refused the message (e.g. stream full with `discard: new`).
    #[error("JetStream refused the message")]
    Refused(#[source] jetstream::context::PublishError),
    /// The message is larger than the server's `max_payload`: no retry
    /// can succeed (answered 413, not 503).
    #[error("message larger than the server's max_payload")]
    TooLarge(#[source] jetstream::context::PublishError),
}

impl PublishError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::TimedOut(_) => "timeout",
            Self::Refused(_) => "refused",
            Self::TooLarge(_) => "too_large",
        }
    }
}

/// One outgoing message.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// `webhooks.<source>.<event token>`.
    pub subject: String,
    /// `<source>:<id>`.
    pub dedup_id: &'a str,
    /// Source name header.
    pub source: &'a str,
    /// Event header (unsanitised; cut and cleaned for the header).
    pub event: &'a str,
    /// Encoded Envelope.
    pub payload: Bytes,
}

/// Publishes through one JetStream context.
#[derive(Debug, Clone)]
pub struct Publisher {
    js: jetstream::Context,
    timeout: Duration,
    /// `Hookline-Source` and `Hookline-Event`, parsed once (a custom
    /// header name is otherwise copied into a new allocation per message).
    source_header: HeaderName,
    event_header: HeaderName,
}

impl Publisher {
    /// `timeout` bounds the whole attempt, retries included.
    pub fn new(client: async_nats::Client, timeout: Duration) -> Self {
        let js = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .build(client);
        Self {
            js,
            timeout,
            source_header: HEADER_SOURCE.into_header_name(),
            event_header: HEADER_EVENT.into_header_name(),
        }
    }

    /// The JetStream context (for stream declarations and readiness checks).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Publishes and waits for the PubAck.
    ///
    /// # Errors
    /// Disconnected (answered at once, not buffered for later), no ack in
    /// time, or refused by the server.
    pub async fn publish(&self, outgoing: Outgoing<'_>) -> Result<Persisted, PublishError> {
        if self.js.client().connection_state() != State::Connected {
            return Err(PublishError::Disconnected);
        }
        let event = event_header(outgoing.event);
        // Built per attempt rather than cloned: the first attempt moves its
        // headers; retries are rare. The subject and payload are shared bytes.
        let message = || {
            PublishMessage::build()
                .message_id(outgoing.dedup_id)
                .header(self.source_header.clone(), outgoing.source)
                .header(self.event_header.clone(), event.as_str())
                .payload(outgoing.payload.clone())
        };
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(50);
        let subject = async_nats::Subject::from(outgoing.subject);
        let mut first = true;
        loop {
            let enqueued =
                tokio::time::timeout_at(deadline, self.js.send_publish(subject.clone(), message()))
                    .await;
            let result = match enqueued {
                Err(_elapsed) => return Err(PublishError::TimedOut(self.timeout)),
                Ok(Err(error)) => Err(error),
                // The first wait is bounded by the PubAck's own timeout (the
                // context's, which is `publish_timeout`): no second timer on
                // every request. Retries get what is left of the deadline.
                Ok(Ok(ack)) if first => ack.await,
                Ok(Ok(ack)) => match tokio::time::timeout_at(deadline, ack).await {
                    Err(_elapsed) => return Err(PublishError::TimedOut(self.timeout)),
                    Ok(result) => result,
                },
            };
            first = false;
            match result {
                Ok(ack) => {
                    return Ok(Persisted {
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    });
                }
                Err(error) if is_transient(error.kind()) && Instant::now() + pause < deadline => {
                    tracing::debug!(%error, "transient publish failure; retrying with the same id");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(error) if is_transient(error.kind()) => {
                    return Err(PublishError::TimedOut(self.timeout));
                }
                Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(PublishError::TooLarge(error));
                }
                Err(error) => return Err(PublishError::Refused(error)),
            }
        }
    }
}

fn is_transient(kind: PublishErrorKind) -> bool {
    matches!(
        kind,
        PublishErrorKind::TimedOut
            | PublishErrorKind::StreamNotFound
            | PublishErrorKind::BrokenPipe
    )
}

/// A header-safe copy of the event name: printable ASCII, bounded length.
fn event_header(event: &str) -> String {
    event
        .chars()
        .take(MAX_EVENT_HEADER)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The event name is attacker-chosen; its header copy must never be
        /// a value async-nats refuses (it panics on CR/LF in `From<&str>`).
        #[test]
        fn event_header_is_always_a_valid_bounded_header_value(event in any::<String>()) {
            let value = event_header(&event);
            prop_assert!(value.parse::<async_nats::HeaderValue>().is_ok(), "{value:?}");
            prop_assert!(value.len() <= MAX_EVENT_HEADER);
        }
    }
}
