//! The names the design fixes between the parts: subjects, NATS headers,
//! the sanitising that keeps hostile event names from changing routing, and
//! [`WebhookKey`], the one rule for every webhook key (`Nats-Msg-Id`, KV
//! key, `Idempotency-Key`).

mod key;

pub use key::{
    HASHED_ID_PREFIX, InvalidSource, MAX_MESSAGE_ID_LEN, MAX_READABLE_ID, MAX_RECORD_KEY_LEN,
    WebhookKey, bounded_id, dead_letter_message_id, original_of_dead_letter, redrive_message_id,
    replay_message_id,
};

/// Subject prefix of the `WEBHOOKS` stream: `webhooks.<source>.<event>`.
pub const SUBJECT_PREFIX: &str = "webhooks";
/// Subject prefix of the dead-letter stream: `dlq.<group>.<source>.<event>`.
pub const DLQ_SUBJECT_PREFIX: &str = "dlq";
/// Subject prefix of replayed copies, `replay.<group>.<source>.<event>`:
/// they live in the `WEBHOOKS` stream, but only the named group's consumer
/// filters them, so other groups and downstream consumers of `webhooks.>`
/// never see a replay meant for one group (`hookline replay`).
pub const REPLAY_SUBJECT_PREFIX: &str = "replay";
/// The event token used when the provider names no event.
pub const UNKNOWN_EVENT: &str = "unknown";
/// Longest subject token kept; longer names are cut (the Envelope keeps the original).
pub const MAX_TOKEN_LEN: usize = 128;

/// NATS header: the configured source name.
pub const HEADER_SOURCE: &str = "Hookline-Source";
/// NATS header: the provider's event type, as sent (unsanitised, cut to 256 bytes).
pub const HEADER_EVENT: &str = "Hookline-Event";
/// Dead-letter header: why the message was dead-lettered.
pub const HEADER_DLQ_REASON: &str = "Hookline-Dlq-Reason";
/// Dead-letter header: how many deliveries were attempted.
pub const HEADER_DLQ_ATTEMPTS: &str = "Hookline-Dlq-Attempts";
/// Dead-letter header: the processor group that gave up.
pub const HEADER_DLQ_GROUP: &str = "Hookline-Dlq-Group";
/// Dead-letter header: the original message's sequence in `WEBHOOKS`.
pub const HEADER_DLQ_STREAM_SEQ: &str = "Hookline-Dlq-Stream-Seq";

/// Turns any text into one safe subject token: `.`, `*`, `>`, whitespace,
/// control and non-ASCII characters become `_`; empty text becomes
/// [`UNKNOWN_EVENT`]; the result is at most [`MAX_TOKEN_LEN`] bytes.
pub fn subject_token(text: &str) -> String {
    let token: String = text
        .chars()
        .take(MAX_TOKEN_LEN)
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() {
        UNKNOWN_EVENT.to_owned()
    } else {
        token
    }
}

/// `webhooks.<source>.<event token>`; `source` must already be a valid
/// token (source names are validated when config loads).
pub fn webhook_subject(source: &str, event: Option<&str>) -> String {
    let event = event.map_or_else(|| UNKNOWN_EVENT.to_owned(), subject_token);
    format!("{SUBJECT_PREFIX}.{source}.{event}")
}

/// `replay.<group>.<source>.<event>` for a message on
/// `webhooks.<source>.<event>`; `None` for any other subject.
pub fn replay_subject(group: &str, subject: &str) -> Option<String> {
    let rest = subject
        .strip_prefix(SUBJECT_PREFIX)
        .and_then(|r| r.strip_prefix('.'))?;
    Some(format!("{REPLAY_SUBJECT_PREFIX}.{group}.{rest}"))
}

/// The webhook subject a message stands for: `webhooks.<source>.<event>`
/// for a replayed copy on `replay.<group>.<source>.<event>`, any other
/// subject unchanged.
pub fn original_subject(subject: &str) -> std::borrow::Cow<'_, str> {
    let replayed = subject
        .strip_prefix(REPLAY_SUBJECT_PREFIX)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.split_once('.'))
        .map(|(_group, rest)| rest);
    match replayed {
        Some(rest) if !rest.is_empty() => format!("{SUBJECT_PREFIX}.{rest}").into(),
        _ => subject.into(),
    }
}

/// Whether `name` can be a source or group name: a non-empty token of
/// lower-case ASCII letters, digits, `-` and `_`, at most 64 bytes.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_event_names_stay_one_token() {
        for hostile in [
            "a.b",
            "*",
            ">",
            "a b",
            "x\ny",
            "a\u{0}b",
            "ümlaut",
            "$JS.API.>",
            "...",
        ] {
            let token = subject_token(hostile);
            assert!(
                !token.contains(['.', '*', '>', ' ', '\n', '\0']),
                "{hostile:?} → {token:?}"
            );
            assert!(token.is_ascii(), "{hostile:?} → {token:?}");
        }
        assert_eq!(subject_token("orders/create"), "orders/create");
        assert_eq!(subject_token("invoice.paid"), "invoice_paid");
        assert_eq!(subject_token(""), "unknown");
        assert_eq!(subject_token(&"x".repeat(10_000)).len(), MAX_TOKEN_LEN);
        assert_eq!(
            webhook_subject("github", Some("push")),
            "webhooks.github.push"
        );
        assert_eq!(webhook_subject("github", None), "webhooks.github.unknown");
    }

    #[test]
    fn replay_subjects_name_one_group_and_map_back() {
        let replay = replay_subject("billing", "webhooks.stripe.invoice_paid");
        assert_eq!(
            replay.as_deref(),
            Some("replay.billing.stripe.invoice_paid")
        );
        assert_eq!(
            original_subject("replay.billing.stripe.invoice_paid"),
            "webhooks.stripe.invoice_paid"
        );
        assert_eq!(
            original_subject("webhooks.github.push"),
            "webhooks.github.push"
        );
        assert_eq!(original_subject("replay.billing"), "replay.billing");
        assert_eq!(replay_subject("billing", "dlq.a.b.c"), None);
    }

    #[test]
    fn names_are_plain_tokens() {
        assert!(is_valid_name("stripe-live_2"));
        for bad in ["", "Stripe", "a.b", "a/b", "../x", "a b", "*"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
