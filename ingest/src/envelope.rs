//! Building the protobuf `Envelope` from a verified request, and the id of
//! a webhook whose provider gives none.

use std::time::SystemTime;

use bytes::{BufMut as _, Bytes, BytesMut};
use hookline_proto::{Envelope, Header, Timestamp};
use http::{HeaderMap, HeaderName, header};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use sha2::{Digest, Sha256};

/// Longest event name accepted (from a header or the body); a longer one is
/// refused with 400 `event_too_long`, never silently dropped. Real event
/// names are a few dozen bytes.
pub const MAX_EVENT_BYTES: usize = 4096;
/// At most this many request headers are kept in the Envelope.
pub const MAX_KEPT_HEADERS: usize = 64;

/// The most a published message can exceed its body by, so that
/// `max_body` plus this must fit the NATS server's `max_payload`:
/// - the kept headers, at most the whole request head
///   ([`crate::MAX_HEADER_BYTES`], 64 KiB);
/// - the Envelope's copies of header values (id, event, content type, each
///   from a distinct header), again at most the head;
/// - an event name read from the body instead ([`MAX_EVENT_BYTES`]);
/// - 4 KiB for the rest: field keys and lengths (≤ 12 bytes for each of 64
///   headers), source, scheme, timestamp, the NATS headers (`Nats-Msg-Id`,
///   `Hookline-Source`, `Hookline-Event` ≤ 256 bytes) and the dead-letter
///   headers a processor adds when it republishes the Envelope.
///
/// An id read from the body is a copy of body bytes and is not covered:
/// such a message may not fit, and is answered 413.
pub const MAX_ENVELOPE_OVERHEAD: u64 =
    2 * crate::server::MAX_HEADER_BYTES as u64 + MAX_EVENT_BYTES as u64 + 4096;

/// The webhook id when the provider gives none: `sha256:<hex>` of the
/// source name, a NUL and the raw body (same body to one source = same id).
pub fn content_id(source: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(source.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    format!("sha256:{}", hex::encode(hasher.finalize()))
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

/// The headers an Envelope keeps: neither transport nor credentials,
/// accepted by `keep`, with a UTF-8 value; at most [`MAX_KEPT_HEADERS`].
fn kept_headers<'a>(
    headers: &'a HeaderMap,
    keep: impl Fn(&HeaderName) -> bool + 'a,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    headers
        .iter()
        .filter(move |(name, _)| !is_transport_or_credential(name) && keep(name))
        .filter_map(|(name, value)| value.to_str().ok().map(|value| (name.as_str(), value)))
        .take(MAX_KEPT_HEADERS)
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Builds the Envelope; `keep` decides which headers are stored.
pub fn build(request: VerifiedRequest<'_>, keep: impl Fn(&HeaderName) -> bool) -> Envelope {
    let headers = kept_headers(request.headers, keep)
        .map(|(name, value)| Header {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect();
    Envelope {
        id: request.id,
        source: request.source.to_owned(),
        event: request.event.unwrap_or_default(),
        received_at: Some(Timestamp::from(request.received_at)),
        body: request.body,
        headers,
        content_type: content_type(request.headers).to_owned(),
        scheme: request.scheme.to_owned(),
    }
}

/// An Envelope's fields besides the body, borrowed from the request.
#[derive(Debug)]
pub struct Fields<'a> {
    /// The webhook id.
    pub id: &'a str,
    /// The configured source name.
    pub source: &'a str,
    /// The provider's event type (empty when it names none).
    pub event: &'a str,
    /// The verification scheme.
    pub scheme: &'a str,
    /// The request headers (filtered as by [`build`]).
    pub headers: &'a HeaderMap,
    /// When the request arrived.
    pub received_at: SystemTime,
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

/// Appends the Envelope's other fields after the body written by
/// [`start_payload`], straight from the request (no `Envelope` and none of
/// its strings are built): the result decodes to the Envelope [`build`]
/// makes from the same request and body (protobuf parsers accept fields in
/// any order).
pub fn finish_payload(
    mut buffer: BytesMut,
    fields: &Fields<'_>,
    keep: impl Fn(&HeaderName) -> bool,
) -> Bytes {
    put_str(1, fields.id, &mut buffer);
    put_str(2, fields.source, &mut buffer);
    put_str(3, fields.event, &mut buffer);
    prost::encoding::message::encode(4, &Timestamp::from(fields.received_at), &mut buffer);
    for (name, value) in kept_headers(fields.headers, keep) {
        let len = str_len(1, name) + str_len(2, value);
        encode_key(6, WireType::LengthDelimited, &mut buffer);
        encode_varint(len as u64, &mut buffer);
        put_str(1, name, &mut buffer);
        put_str(2, value, &mut buffer);
    }
    put_str(7, content_type(fields.headers), &mut buffer);
    put_str(8, fields.scheme, &mut buffer);
    buffer.freeze()
}

/// Encoded length of a proto3 string field (empty strings are not written).
fn str_len(tag: u32, value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(value.len() as u64) + value.len()
    }
}

fn put_str(tag: u32, value: &str, buffer: &mut BytesMut) {
    if !value.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buffer);
        encode_varint(value.len() as u64, buffer);
        buffer.put_slice(value.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_first_payload_decodes_like_the_envelope_built() {
        use hookline_proto::Message as _;
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", "push".parse().unwrap());
        headers.insert("x-hub-signature-256", "sha256=00".parse().unwrap());
        headers.insert("authorization", "Bearer t".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("x-empty", "".parse().unwrap());
        headers.insert("x-binary", http::HeaderValue::from_bytes(b"\xff").unwrap());
        for i in 0..80 {
            headers.append("x-many", format!("v{i}").parse().unwrap());
        }
        let keep = |name: &HeaderName| name.as_str() != "x-hub-signature-256";
        let received_at =
            SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_767_323_045_678_000_123);
        for len in [0usize, 1, 127, 128, 16_384, 300_000] {
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for event in [Some("push".to_owned()), None] {
                let mut buffer = start_payload(len);
                assert_eq!(buffer.len(), body_offset(len));
                buffer.extend_from_slice(&body);
                let payload = finish_payload(
                    buffer,
                    &Fields {
                        id: "1:abc",
                        source: "github",
                        event: event.as_deref().unwrap_or_default(),
                        scheme: "github",
                        headers: &headers,
                        received_at,
                    },
                    keep,
                );
                let built = build(
                    VerifiedRequest {
                        id: "1:abc".into(),
                        source: "github",
                        event,
                        scheme: "github",
                        body: Bytes::from(body.clone()),
                        headers: &headers,
                        received_at,
                    },
                    keep,
                );
                assert_eq!(built.headers.len(), MAX_KEPT_HEADERS);
                assert_eq!(Envelope::decode(payload.clone()).unwrap(), built);
                // Same bytes, other order (an empty body is written, not skipped).
                let empty_field = if len == 0 { 2 } else { 0 };
                assert_eq!(payload.len(), built.encoded_len() + empty_field);
            }
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
