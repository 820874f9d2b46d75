//! Which webhook a message is: [`WebhookKey`], the one rule that turns a
//! source and a provider's id into the `Nats-Msg-Id`, the idempotency
//! record's KV key and the `Idempotency-Key` header, and the derived
//! message ids of dead letters, re-drives and replays.
//!
//! # The rule
//! A provider id is kept **readable** (verbatim) when it is 1 to
//! [`MAX_READABLE_ID`] bytes of printable ASCII (`!` to `~`) and does not
//! begin with `~`. Any other id (too long, empty, with spaces, control
//! bytes or non-ASCII text, or beginning with `~`) is **hashed**:
//! [`HASHED_ID_PREFIX`] followed by the 64 hex digits of the SHA-256 of its
//! bytes. A readable id never begins with `~` and a hashed one always
//! does, so a readable id can never equal a hashed one, whatever a
//! provider sends (a Stripe id `sha256:<hex>` stays its own webhook).
//!
//! Every key is therefore printable ASCII of bounded length: a
//! `Nats-Msg-Id` is at most [`MAX_MESSAGE_ID_LEN`] bytes and a KV key at
//! most [`MAX_RECORD_KEY_LEN`], far inside nats-server's 4,096-byte
//! control line (a KV key travels in a subject, which is in that line).

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::is_valid_name;

/// Longest provider id kept verbatim in keys; longer ids are hashed.
pub const MAX_READABLE_ID: usize = 200;
/// How a hashed id begins: `~sha256:<64 hex digits>`. A readable id never
/// begins with `~`.
pub const HASHED_ID_PREFIX: &str = "~sha256:";
/// Longest source or group name (see [`is_valid_name`]).
const MAX_NAME: usize = 64;
/// Longest bounded id: a readable one, or a hashed one (71 bytes).
const MAX_ID: usize = if MAX_READABLE_ID > HASHED_ID_PREFIX.len() + 64 {
    MAX_READABLE_ID
} else {
    HASHED_ID_PREFIX.len() + 64
};
/// Longest message id any Hookline part publishes (`Nats-Msg-Id` of a
/// webhook, a dead letter, a re-drive or a replay): longer derived ids are
/// hashed as a whole.
pub const MAX_MESSAGE_ID_LEN: usize = 512;
/// Longest idempotency record key: `<group>.<encoded key>`, where the
/// encoding writes each byte outside `[A-Za-z0-9_-]` as `=XX`.
pub const MAX_RECORD_KEY_LEN: usize = MAX_NAME + 1 + 3 * (MAX_NAME + 1 + MAX_ID);

/// A webhook's identity: its source and its provider id, bounded by the
/// rule in this module's documentation.
///
/// ```
/// use hookline_platform::contract::WebhookKey;
/// let key = WebhookKey::new("stripe", "evt_1").unwrap();
/// assert_eq!(key.message_id(), "stripe:evt_1");
/// assert_eq!(key.record_key("billing"), "billing.stripe=3Aevt_1");
/// let long = WebhookKey::new("github", &"x".repeat(4_090)).unwrap();
/// assert!(long.is_hashed() && long.message_id().len() == "github:~sha256:".len() + 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookKey {
    /// `<source>:<bounded id>`.
    message_id: String,
    /// Where the bounded id starts in `message_id`.
    id_start: usize,
}

/// The source given to [`WebhookKey::new`] is not a valid source name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a source name (1 to 64 of a-z, 0-9, - and _)")]
pub struct InvalidSource(pub String);

impl WebhookKey {
    /// The key of webhook `provider_id` received on `source`.
    ///
    /// # Errors
    /// `source` is not a valid name (sources are validated when config
    /// loads; a message published by another tool may carry anything).
    pub fn new(source: &str, provider_id: &str) -> Result<Self, InvalidSource> {
        if !is_valid_name(source) {
            let shown: String = source.chars().take(MAX_NAME + 1).collect();
            return Err(InvalidSource(shown));
        }
        let id = bounded_id(provider_id);
        Ok(Self {
            message_id: format!("{source}:{id}"),
            id_start: source.len() + 1,
        })
    }

    /// Reads a `Nats-Msg-Id` (or `hookline trace` argument) of the form
    /// `<source>:<id>` back into a key; `None` when the part before the first
    /// `:` is not a valid source name. The id part goes through the rule
    /// again, so `<source>:<id as the provider sent it>` works too.
    pub fn parse(message_id: &str) -> Option<Self> {
        let (source, id) = message_id.split_once(':')?;
        Self::new(source, id).ok()
    }

    /// The source name.
    pub fn source(&self) -> &str {
        &self.message_id[..self.id_start - 1]
    }

    /// The bounded id: the provider's id when readable, else its hash.
    pub fn id(&self) -> &str {
        &self.message_id[self.id_start..]
    }

    /// Whether the provider's id was hashed.
    pub fn is_hashed(&self) -> bool {
        self.id().starts_with(HASHED_ID_PREFIX)
    }

    /// The `Nats-Msg-Id` ingest publishes with: `<source>:<bounded id>`.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The `Idempotency-Key` a handler sends downstream (and
    /// `Delivery::idempotency_key`): the same text as the `Nats-Msg-Id`.
    pub fn idempotency_key(&self) -> &str {
        &self.message_id
    }

    /// The idempotency record's KV key in `group` (a valid group name):
    /// `<group>.<message id>` with every byte outside `[A-Za-z0-9_-]` of
    /// the message id written `=XX` (`billing.stripe=3Aevt_1`); at most
    /// [`MAX_RECORD_KEY_LEN`] bytes.
    pub fn record_key(&self, group: &str) -> String {
        let mut key = String::with_capacity(group.len() + 1 + self.message_id.len() * 3);
        key.push_str(group);
        key.push('.');
        for byte in self.message_id.bytes() {
            if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
                key.push(char::from(byte));
            } else {
                key.push_str(&format!("={byte:02X}"));
            }
        }
        key
    }
}

impl std::fmt::Display for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message_id)
    }
}

/// The rule: `id` itself when readable, else `~sha256:<hex>` of its bytes.
pub fn bounded_id(id: &str) -> Cow<'_, str> {
    if is_readable(id, MAX_READABLE_ID) {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(hashed(id))
    }
}

fn is_readable(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && !id.starts_with('~')
        && id.bytes().all(|b| b.is_ascii_graphic())
}

fn hashed(id: &str) -> String {
    format!(
        "{HASHED_ID_PREFIX}{}",
        hex::encode(Sha256::digest(id.as_bytes()))
    )
}

/// A message id made of parts: kept when it is printable ASCII of at most
/// [`MAX_MESSAGE_ID_LEN`] bytes, hashed as a whole otherwise.
fn bounded_message_id(id: String) -> String {
    if id.len() <= MAX_MESSAGE_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()) {
        id
    } else {
        hashed(&id)
    }
}

/// The `Nats-Msg-Id` of a dead letter: `<group>:<original Nats-Msg-Id>`
/// (two groups may dead-letter one webhook; a repeated publish is
/// deduped), or `<group>:seq-<stream sequence>` for a message without one.
pub fn dead_letter_message_id(group: &str, original: Option<&str>, stream_sequence: u64) -> String {
    match original {
        Some(id) if !id.is_empty() => bounded_message_id(format!("{group}:{id}")),
        _ => format!("{group}:seq-{stream_sequence}"),
    }
}

/// The original `Nats-Msg-Id` a dead letter of `group` stands for (the
/// inverse of [`dead_letter_message_id`] when it was not hashed).
pub fn original_of_dead_letter<'a>(group: &str, dead_letter_id: &'a str) -> &'a str {
    dead_letter_id
        .strip_prefix(group)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(dead_letter_id)
}

/// The `Nats-Msg-Id` of dead letter `sequence` re-driven:
/// `<original>:redrive:<sequence>` (new to the duplicate window, yet one
/// dead letter re-driven twice in a row is stored once).
pub fn redrive_message_id(original: &str, sequence: u64) -> String {
    bounded_message_id(format!("{original}:redrive:{sequence}"))
}

/// The `Nats-Msg-Id` of a replayed copy for `group` in replay run `run`:
/// `<original>:replay:<group>:<run>`.
pub fn replay_message_id(original: &str, group: &str, run: &str) -> String {
    bounded_message_id(format!("{original}:replay:{group}:{run}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_ids_stay_verbatim() {
        let key = WebhookKey::new("github", "1:72d3162e-cc78").unwrap();
        assert_eq!(key.message_id(), "github:1:72d3162e-cc78");
        assert_eq!(key.idempotency_key(), "github:1:72d3162e-cc78");
        assert_eq!(key.source(), "github");
        assert_eq!(key.id(), "1:72d3162e-cc78");
        assert!(!key.is_hashed());
        assert_eq!(
            key.record_key("billing"),
            "billing.github=3A1=3A72d3162e-cc78"
        );
        // Content ids (a provider without ids) are readable too.
        let content = format!("sha256:{}", "a".repeat(64));
        assert_eq!(bounded_id(&content), content.as_str());
    }

    #[test]
    fn unsafe_ids_are_hashed_and_bounded() {
        for id in [
            "x".repeat(MAX_READABLE_ID + 1),
            "x".repeat(4_090),
            "=".repeat(4_000),
            String::new(),
            "a b".to_owned(),
            "a\r\nNats-Msg-Id: x".to_owned(),
            "ümlaut".to_owned(),
            "~sha256:abc".to_owned(),
        ] {
            let key = WebhookKey::new("s", &id).unwrap();
            assert!(key.is_hashed(), "{id:?}");
            assert_eq!(key.id().len(), HASHED_ID_PREFIX.len() + 64);
            assert!(key.record_key("g").len() <= MAX_RECORD_KEY_LEN);
        }
        assert_eq!(
            bounded_id(&"x".repeat(MAX_READABLE_ID)).len(),
            MAX_READABLE_ID
        );
    }

    /// Finding 6 of issue 12: a readable id spelling another id's hash was
    /// taken as that webhook's duplicate.
    #[test]
    fn a_readable_id_never_equals_a_hashed_one() {
        let long = "x".repeat(4_090);
        let hashed = WebhookKey::new("stripe", &long).unwrap();
        let spelled = WebhookKey::new("stripe", hashed.id()).unwrap();
        assert_ne!(hashed, spelled);
        let old_style = hashed.id().trim_start_matches('~').to_owned();
        let readable = WebhookKey::new("stripe", &old_style).unwrap();
        assert_ne!(hashed, readable);
        assert!(!readable.is_hashed());
    }

    #[test]
    fn invalid_sources_are_refused() {
        for source in ["", "Stripe", "a.b", "a b", &"s".repeat(65)] {
            assert!(WebhookKey::new(source, "1").is_err(), "{source:?}");
        }
        assert_eq!(
            WebhookKey::parse("github:1:abc").map(|k| k.id().to_owned()),
            Some("1:abc".to_owned())
        );
        assert_eq!(WebhookKey::parse("no-colon"), None);
    }

    #[test]
    fn derived_message_ids_are_bounded() {
        assert_eq!(
            dead_letter_message_id("billing", Some("stripe:evt_1"), 9),
            "billing:stripe:evt_1"
        );
        assert_eq!(dead_letter_message_id("billing", None, 9), "billing:seq-9");
        assert_eq!(
            original_of_dead_letter("billing", "billing:stripe:evt_1"),
            "stripe:evt_1"
        );
        let huge = "y".repeat(5_000);
        assert!(dead_letter_message_id("billing", Some(&huge), 1).len() <= MAX_MESSAGE_ID_LEN);
        assert!(redrive_message_id(&huge, 1).len() <= MAX_MESSAGE_ID_LEN);
        assert!(replay_message_id(&huge, "g", "run").len() <= MAX_MESSAGE_ID_LEN);
        assert_eq!(redrive_message_id("s:1", 4), "s:1:redrive:4");
        assert_eq!(replay_message_id("s:1", "g", "r1"), "s:1:replay:g:r1");
    }
}
