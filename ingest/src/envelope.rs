//! Building the protobuf `Envelope` and the dedup id from a verified request.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use hookline_proto::{Envelope, Header, Message as _, Timestamp};
use http::{HeaderMap, HeaderName, header};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use sha2::{Digest, Sha256};

/// Longest webhook id used verbatim in `Nats-Msg-Id`; longer ids are hashed.
pub const MAX_READABLE_ID: usize = 200;
/// At most this many request headers are kept in the Envelope.
pub const MAX_KEPT_HEADERS: usize = 64;

/// The webhook id when the provider gives none: `sha256:<hex>` of the
/// source name, a NUL and the raw body (same body to one source = same id).
pub fn content_id(source: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(source.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// `Nats-Msg-Id` = `<source>:<id>`, with the id kept readable when it is
/// short printable ASCII and hashed (`sha256:<hex>`) otherwise, so that
/// any provider id is a valid, bounded header value.
pub fn dedup_id(source: &str, id: &str) -> String {
    let readable =
        !id.is_empty() && id.len() <= MAX_READABLE_ID && id.bytes().all(|b| b.is_ascii_graphic());
    if readable {
        format!("{source}:{id}")
    } else {
        format!(
            "{source}:sha256:{}",
            hex::encode(Sha256::digest(id.as_bytes()))
        )
    }
}

/// Headers never copied into the Envelope: transport-level or credentials.
/// (Signature headers are excluded by the source's verifier.)
fn is_transport_or_credential(name: &HeaderName) -> bool {
    name == header::HOST
        || name == header::CONTENT_LENGTH
        || name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::UPGRADE
        || name == header::AUTHORIZATION
        || name == header::PROXY_AUTHORIZATION
        || name == header::COOKIE
        || name == header::EXPECT
        || name.as_str() == "keep-alive"
}

/// What a verified request contributes to its Envelope.
#[derive(Debug)]
pub struct VerifiedRequest<'a> {
    /// The webhook id.
    pub id: String,
    /// The configured source name.
    pub source: &'a str,
    /// The provider's event type, when it names one.
    pub event: Option<String>,
    /// The verification scheme.
    pub scheme: &'static str,
    /// The raw body (moved into the Envelope, not copied).
    pub body: Bytes,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// When the request arrived.
    pub received_at: SystemTime,
}

/// Builds the Envelope; `keep` decides which headers are stored.
pub fn build(request: VerifiedRequest<'_>, keep: impl Fn(&HeaderName) -> bool) -> Envelope {
    let headers = request
        .headers
        .iter()
        .filter(|(name, _)| !is_transport_or_credential(name) && keep(name))
        .filter_map(|(name, value)| {
            value.to_str().ok().map(|value| Header {
                name: name.as_str().to_owned(),
                value: value.to_owned(),
            })
        })
        .take(MAX_KEPT_HEADERS)
        .collect();
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Envelope {
        id: request.id,
        source: request.source.to_owned(),
        event: request.event.unwrap_or_default(),
        received_at: Some(Timestamp::from(request.received_at)),
        body: request.body,
        headers,
        content_type,
        scheme: request.scheme.to_owned(),
    }
}

/// The `Envelope.body` field number (`bytes body = 5` in the `.proto`).
const BODY_FIELD: u32 = 5;

/// Starts a payload buffer for a body of `len` bytes: the body field's key
/// and length, ready for the body to be appended. Reading the body straight
/// into its place in the payload saves a copy of it (and its memory) per
/// request; [`finish_payload`] appends the other fields.
pub fn start_payload(len: usize) -> BytesMut {
    let head = key_len(BODY_FIELD) + encoded_len_varint(len as u64);
    let mut buffer = BytesMut::with_capacity(head + len + 512);
    encode_key(BODY_FIELD, WireType::LengthDelimited, &mut buffer);
    encode_varint(len as u64, &mut buffer);
    buffer
}

/// Where the body starts in a buffer made by [`start_payload`].
pub fn body_offset(len: usize) -> usize {
    key_len(BODY_FIELD) + encoded_len_varint(len as u64)
}

/// Appends `envelope`'s other fields (its `body` must be empty) after the
/// body written by [`start_payload`]: the result decodes to the Envelope
/// with that body (protobuf parsers accept fields in any order).
pub fn finish_payload(mut buffer: BytesMut, envelope: &Envelope) -> Bytes {
    debug_assert!(envelope.body.is_empty());
    buffer.reserve(envelope.encoded_len());
    envelope.encode_raw(&mut buffer);
    buffer.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_ids_stay_readable_unless_unsafe() {
        assert_eq!(dedup_id("github", "1:abc-def"), "github:1:abc-def");
        let long = "x".repeat(MAX_READABLE_ID + 1);
        for unsafe_id in [long.as_str(), "a b", "a\r\nNats-Msg-Id: x", "ümlaut", ""] {
            let id = dedup_id("s", unsafe_id);
            assert!(id.starts_with("s:sha256:"), "{unsafe_id:?} → {id}");
            assert_eq!(id.len(), "s:sha256:".len() + 64);
        }
    }

    #[test]
    fn body_first_payload_decodes_like_the_ordinary_one() {
        for len in [0usize, 1, 127, 128, 16_384, 300_000] {
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut envelope = Envelope {
                id: "1:abc".into(),
                source: "github".into(),
                event: "push".into(),
                received_at: Some(Timestamp::from(SystemTime::UNIX_EPOCH)),
                body: Bytes::new(),
                headers: vec![Header {
                    name: "x-github-event".into(),
                    value: "push".into(),
                }],
                content_type: "application/json".into(),
                scheme: "github".into(),
            };
            let mut buffer = start_payload(len);
            assert_eq!(buffer.len(), body_offset(len));
            buffer.extend_from_slice(&body);
            let payload = finish_payload(buffer, &envelope);
            envelope.body = Bytes::from(body);
            assert_eq!(Envelope::decode(payload.clone()).unwrap(), envelope);
            // Same bytes, other order (an empty body is written, not skipped).
            let empty_field = if len == 0 { 2 } else { 0 };
            assert_eq!(payload.len(), envelope.encoded_len() + empty_field);
        }
    }

    #[test]
    fn content_ids_depend_on_source_and_body() {
        assert_eq!(content_id("a", b"x"), content_id("a", b"x"));
        assert_ne!(content_id("a", b"x"), content_id("b", b"x"));
        assert_ne!(content_id("a", b"x"), content_id("a", b"y"));
    }

    #[test]
    fn envelope_drops_credentials_and_rejected_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", "push".parse().unwrap());
        headers.insert("x-hub-signature-256", "sha256=00".parse().unwrap());
        headers.insert("authorization", "Bearer t".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let envelope = build(
            VerifiedRequest {
                id: "1".into(),
                source: "github",
                event: Some("push".into()),
                scheme: "github",
                body: Bytes::from_static(b"{}"),
                headers: &headers,
                received_at: SystemTime::UNIX_EPOCH,
            },
            |name| name.as_str() != "x-hub-signature-256",
        );
        let names: Vec<&str> = envelope.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-github-event", "content-type"]);
        assert_eq!(envelope.content_type, "application/json");
        assert_eq!(&envelope.body[..], b"{}");
    }
}
