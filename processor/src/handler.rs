//! What a handler sees and what it answers: [`Handler`], [`Webhook`],
//! [`Delivery`] and [`Outcome`]. Handlers know nothing of NATS; the runtime
//! maps their [`Outcome`] to ack, nak with backoff, or dead letter + term.

use std::future::Future;
use std::time::Duration;

use hookline_proto::Envelope;

/// Handles one webhook at a time (the runtime runs up to `concurrency` calls
/// at once, each in its own task).
///
/// The method returns `impl Future + Send`, so an implementation may simply
/// write `async fn handle(&self, webhook: &Webhook) -> Outcome`. The trait is
/// used through generics (`run::<H>`), not as `dyn Handler`: to choose a
/// handler at run time, wrap the candidates in an enum as
/// [`handlers::Builtin`](crate::handlers::Builtin) does.
///
/// A panic inside `handle` is caught and treated as a retryable failure; a
/// call that runs past `handler_timeout` is abandoned (its task aborted) and
/// also retried. Side effects should be idempotent on
/// [`Webhook::idempotency_key`]: "handled once" is guaranteed for Hookline's
/// bookkeeping, not for a side effect interrupted by a crash.
pub trait Handler: Send + Sync + 'static {
    /// Handles `webhook` and says how it went.
    fn handle(&self, webhook: &Webhook) -> impl Future<Output = Outcome> + Send;
}

/// One delivery of one webhook: the decoded [`Envelope`] plus where it came from.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// The message payload as ingest published it.
    pub envelope: Envelope,
    /// Delivery metadata.
    pub delivery: Delivery,
}

/// Delivery metadata of a [`Webhook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The processor group (the durable consumer's name).
    pub group: String,
    /// The webhook's subject, `webhooks.<source>.<event>` (for a copy
    /// replayed to this group, the subject of the original).
    pub subject: String,
    /// The message's sequence in the `WEBHOOKS` stream.
    pub stream_sequence: u64,
    /// 1 for the first delivery, then 2, 3, …: the consumer's delivery count.
    pub attempt: u32,
    /// `max_deliver`: a failure on this attempt dead-letters the webhook.
    pub max_attempts: u32,
    /// The webhook's key ([`WebhookKey`](hookline_platform::contract::WebhookKey)):
    /// `<source>:<id>`, the id hashed when long or unsafe; the `Nats-Msg-Id`,
    /// forwarded as `Idempotency-Key`.
    pub idempotency_key: String,
}

impl Webhook {
    /// The provider's webhook id.
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// The configured source name.
    pub fn source(&self) -> &str {
        &self.envelope.source
    }

    /// The provider's event type as sent (may be empty).
    pub fn event(&self) -> &str {
        &self.envelope.event
    }

    /// The raw request body.
    pub fn body(&self) -> &[u8] {
        &self.envelope.body
    }

    /// `<source>:<id>` (the id hashed when long or unsafe, see
    /// [`WebhookKey`](hookline_platform::contract::WebhookKey)), stable across
    /// redeliveries and provider retries.
    pub fn idempotency_key(&self) -> &str {
        &self.delivery.idempotency_key
    }

    /// Whether a failure now sends the webhook to the dead-letter stream.
    pub fn is_last_attempt(&self) -> bool {
        self.delivery.attempt >= self.delivery.max_attempts
    }
}

/// A handler's verdict on one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the message is acked and recorded as handled.
    Success,
    /// Try again later: after `after` when given (capped at `backoff.max`),
    /// otherwise after the next exponential backoff delay. On the last
    /// attempt the webhook is dead-lettered with `reason`.
    Retry {
        /// A delay the handler asks for (e.g. from a `Retry-After` header).
        after: Option<Duration>,
        /// Why, for logs and the dead-letter header.
        reason: String,
    },
    /// Never going to work: dead-lettered at once with `reason`.
    Permanent {
        /// Why, for logs and the dead-letter header.
        reason: String,
    },
}

impl Outcome {
    /// A retryable failure with the default backoff.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            after: None,
            reason: reason.into(),
        }
    }

    /// A retryable failure that asks for a specific delay.
    pub fn retry_after(after: Duration, reason: impl Into<String>) -> Self {
        Self::Retry {
            after: Some(after),
            reason: reason.into(),
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }
}
