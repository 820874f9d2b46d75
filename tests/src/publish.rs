//! Publishing test webhooks straight into JetStream, exactly as ingest
//! does: an `Envelope` payload on `webhooks.<source>.<event>`, with
//! `Nats-Msg-Id` = `<source>:<id>` and the `Hookline-Source` /
//! `Hookline-Event` headers. For processor and chaos tests that need
//! traffic without going through HTTP and signatures.

use std::time::SystemTime;

use anyhow::Context;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, publish::PublishAck};
use hookline_platform::contract::{HEADER_EVENT, HEADER_SOURCE, WebhookKey, webhook_subject};
use hookline_proto::{Envelope, Header, Message as _, Timestamp};

/// A webhook to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestWebhook {
    /// The configured source name (subject token).
    pub source: String,
    /// The provider's event type (sanitised into the subject).
    pub event: String,
    /// The provider's webhook id.
    pub id: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// The request's content type.
    pub content_type: String,
    /// Provider headers kept by ingest (lower-case names).
    pub headers: Vec<(String, String)>,
}

impl TestWebhook {
    /// A JSON webhook with no extra headers.
    pub fn new(source: &str, event: &str, id: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            source: source.to_owned(),
            event: event.to_owned(),
            id: id.to_owned(),
            body: body.into(),
            content_type: "application/json".to_owned(),
            headers: Vec::new(),
        }
    }

    /// `webhooks.<source>.<event token>`.
    pub fn subject(&self) -> String {
        webhook_subject(&self.source, Some(&self.event))
    }

    /// The webhook's key: its `Nats-Msg-Id` (`<source>:<id>`, the id hashed
    /// when long or unsafe), the processor's idempotency key.
    ///
    /// # Panics
    /// The source is not a valid source name (a test's mistake).
    pub fn key(&self) -> WebhookKey {
        #[allow(clippy::expect_used)]
        WebhookKey::new(&self.source, &self.id).expect("a test webhook's source is a valid name")
    }

    /// The `Nats-Msg-Id`, and the processor's idempotency key.
    pub fn msg_id(&self) -> String {
        self.key().message_id().to_owned()
    }

    /// The Envelope ingest would build.
    pub fn envelope(&self) -> Envelope {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Envelope {
            id: self.id.clone(),
            source: self.source.clone(),
            event: self.event.clone(),
            received_at: Some(Timestamp {
                seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
            }),
            body: self.body.clone().into(),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            content_type: self.content_type.clone(),
            scheme: "hmac".to_owned(),
        }
    }

    /// The encoded Envelope (the message payload).
    pub fn payload(&self) -> Vec<u8> {
        self.envelope().encode_to_vec()
    }
}

/// Sends `webhook` without waiting for the PubAck (for bulk publishing:
/// collect the futures and await them).
///
/// # Errors
/// The publish could not be sent.
pub async fn send(
    js: &jetstream::Context,
    webhook: &TestWebhook,
) -> anyhow::Result<PublishAckFuture> {
    let message = PublishMessage::build()
        .message_id(webhook.msg_id())
        .header(HEADER_SOURCE, webhook.source.as_str())
        .header(HEADER_EVENT, webhook.event.as_str())
        .payload(webhook.payload().into());
    js.send_publish(webhook.subject(), message)
        .await
        .context("sending a test webhook")
}

/// Publishes `webhook` and waits for its PubAck.
///
/// # Errors
/// No PubAck (e.g. the stream does not exist).
pub async fn publish(js: &jetstream::Context, webhook: &TestWebhook) -> anyhow::Result<PublishAck> {
    send(js, webhook)
        .await?
        .await
        .context("awaiting the PubAck of a test webhook")
}

/// Publishes `count` webhooks `<prefix>-0` … from `source`, awaiting every
/// PubAck (up to 256 in flight).
///
/// # Errors
/// A publish failed.
pub async fn publish_many(
    js: &jetstream::Context,
    source: &str,
    event: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(256);
    for i in 0..count {
        let webhook = TestWebhook::new(
            source,
            event,
            &format!("{prefix}-{i}"),
            format!("{{\"n\":{i}}}"),
        );
        pending.push(send(js, &webhook).await?);
        if pending.len() == 256 {
            for ack in pending.drain(..) {
                ack.await.context("PubAck")?;
            }
        }
    }
    for ack in pending {
        ack.await.context("PubAck")?;
    }
    Ok(())
}

/// Publishes raw `payload` bytes (e.g. not an Envelope) on `subject` with
/// message id `msg_id`.
///
/// # Errors
/// No PubAck.
pub async fn publish_raw(
    js: &jetstream::Context,
    subject: &str,
    msg_id: &str,
    payload: Vec<u8>,
) -> anyhow::Result<PublishAck> {
    let message = PublishMessage::build()
        .message_id(msg_id)
        .payload(payload.into());
    Ok(js.send_publish(subject.to_owned(), message).await?.await?)
}
