//! Dead letters: a copy of the original message in `WEBHOOKS_DLQ`, on
//! `dlq.<group>.<source>.<event>`, with the original payload bytes
//! unchanged, `Nats-Msg-Id` = `<group>:<original Nats-Msg-Id>` (so two
//! groups can dead-letter one webhook, and a repeated publish is deduped)
//! and the `Hookline-Dlq-*` headers.
//!
//! [`redrive`] puts a dead letter back on its original subject, so that the
//! group that gave up runs it again (its idempotency record was removed
//! when it dead-lettered); groups that already handled the webhook ack the
//! copy as a duplicate.

use async_nats::HeaderMap;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, context::PublishError, message::PublishMessage};
use bytes::Bytes;
use hookline_platform::contract::{
    DLQ_SUBJECT_PREFIX, HEADER_DLQ_ATTEMPTS, HEADER_DLQ_GROUP, HEADER_DLQ_REASON,
    HEADER_DLQ_STREAM_SEQ, HEADER_EVENT, HEADER_SOURCE, SUBJECT_PREFIX, UNKNOWN_EVENT,
    dead_letter_message_id, original_of_dead_letter, redrive_message_id,
};

/// Longest reason kept in the header.
const MAX_REASON_LEN: usize = 1024;

/// `dlq.<group>.<source>.<event>` for a message on `webhooks.<source>.<event>`.
pub fn dlq_subject(group: &str, original_subject: &str) -> String {
    let rest = original_subject
        .strip_prefix(SUBJECT_PREFIX)
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or_default();
    match rest.split_once('.') {
        Some((source, event)) if !source.is_empty() && !event.is_empty() => {
            format!("{DLQ_SUBJECT_PREFIX}.{group}.{source}.{event}")
        }
        _ if !rest.is_empty() && !rest.contains('.') => {
            format!("{DLQ_SUBJECT_PREFIX}.{group}.{rest}.{UNKNOWN_EVENT}")
        }
        _ => format!("{DLQ_SUBJECT_PREFIX}.{group}.{UNKNOWN_EVENT}.{UNKNOWN_EVENT}"),
    }
}

/// One message to dead-letter.
pub(crate) struct DeadLetter<'a> {
    pub(crate) group: &'a str,
    pub(crate) reason: &'a str,
    pub(crate) attempts: u32,
    pub(crate) stream_sequence: u64,
    pub(crate) subject: &'a str,
    pub(crate) headers: Option<&'a HeaderMap>,
    pub(crate) payload: Bytes,
}

impl DeadLetter<'_> {
    /// Publishes the dead letter and waits for the DLQ stream's PubAck.
    pub(crate) async fn publish(self, js: &jetstream::Context) -> Result<(), PublishError> {
        let header = |name: &str| {
            self.headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let original_id = header(NATS_MESSAGE_ID.as_ref());
        let mut message = PublishMessage::build()
            .message_id(dead_letter_message_id(
                self.group,
                original_id.as_deref(),
                self.stream_sequence,
            ))
            .header(HEADER_DLQ_REASON, header_safe(self.reason))
            .header(HEADER_DLQ_ATTEMPTS, self.attempts.to_string())
            .header(HEADER_DLQ_GROUP, self.group)
            .header(HEADER_DLQ_STREAM_SEQ, self.stream_sequence.to_string());
        for name in [HEADER_SOURCE, HEADER_EVENT] {
            if let Some(value) = header(name) {
                message = message.header(name, value);
            }
        }
        let subject = dlq_subject(self.group, self.subject);
        js.send_publish(subject, message.payload(self.payload))
            .await?
            .await?;
        Ok(())
    }
}

/// Header naming the dead letter a re-driven message came from
/// (`<dlq stream>:<sequence>`).
pub const HEADER_REDRIVEN_FROM: &str = "Hookline-Redriven-From";

/// Re-publishes dead letter `sequence` of stream `dlq_stream` to its
/// original subject (`dlq.<group>.<source>.<event>` →
/// `webhooks.<source>.<event>`) with the same payload, the `Hookline-Source`
/// and `Hookline-Event` headers, [`HEADER_REDRIVEN_FROM`], and
/// `Nats-Msg-Id` = `<original Nats-Msg-Id>:redrive:<sequence>` (new to the
/// stream's duplicate window, yet re-driving one dead letter twice in a row
/// publishes it once). The dead letter itself is left in place; delete it
/// with `Stream::delete_message` once the re-drive is handled.
///
/// # Errors
/// The dead letter cannot be read, is not on a `dlq.` subject, or the
/// publish gets no PubAck.
pub async fn redrive(
    js: &jetstream::Context,
    dlq_stream: &str,
    sequence: u64,
) -> Result<PublishAck, crate::Error> {
    let stream = js
        .get_stream(dlq_stream)
        .await
        .map_err(|source| crate::Error::Stream {
            name: dlq_stream.to_owned(),
            source,
        })?;
    let letter = stream
        .get_raw_message(sequence)
        .await
        .map_err(|source| crate::Error::DeadLetterRead { sequence, source })?;
    let original_subject = letter
        .subject
        .strip_prefix(DLQ_SUBJECT_PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.split_once('.'))
        .map(|(_group, rest)| format!("{SUBJECT_PREFIX}.{rest}"))
        .ok_or_else(|| crate::Error::NotADeadLetter {
            sequence,
            subject: letter.subject.to_string(),
        })?;
    let header = |name: &str| letter.headers.get(name).map(|v| v.as_str().to_owned());
    let group = header(HEADER_DLQ_GROUP).unwrap_or_default();
    let original_id = header(NATS_MESSAGE_ID.as_ref()).map_or_else(
        || format!("dlq-{sequence}"),
        |id| original_of_dead_letter(&group, &id).to_owned(),
    );
    let mut message = PublishMessage::build()
        .message_id(redrive_message_id(&original_id, sequence))
        .header(HEADER_REDRIVEN_FROM, format!("{dlq_stream}:{sequence}"));
    for name in [HEADER_SOURCE, HEADER_EVENT] {
        if let Some(value) = header(name) {
            message = message.header(name, value);
        }
    }
    let publish = async {
        js.send_publish(original_subject, message.payload(letter.payload))
            .await?
            .await
    };
    publish
        .await
        .map_err(|source| crate::Error::Redrive { sequence, source })
}

/// One line of printable text, at most [`MAX_REASON_LEN`] bytes.
fn header_safe(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON_LEN));
    for c in reason.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_REASON_LEN {
            break;
        }
        out.push(c);
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_source_and_event() {
        assert_eq!(
            dlq_subject("billing", "webhooks.stripe.invoice_paid"),
            "dlq.billing.stripe.invoice_paid"
        );
        assert_eq!(
            dlq_subject("billing", "webhooks.stripe"),
            "dlq.billing.stripe.unknown"
        );
        assert_eq!(
            dlq_subject("billing", "orders.x"),
            "dlq.billing.unknown.unknown"
        );
        assert_eq!(
            dlq_subject("billing", "webhooks.a.b.c"),
            "dlq.billing.a.b.c"
        );
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(header_safe("bad\r\nthing\0"), "bad  thing");
        assert_eq!(header_safe(&"é".repeat(2_000)).len(), MAX_REASON_LEN);
    }
}
