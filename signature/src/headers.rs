//! Bounded, panic-free reads of request headers.
//!
//! Header names are matched case-insensitively by `http::HeaderMap`. When a header
//! is repeated, the first value is used, as most frameworks' `get` does.

use http::{HeaderMap, HeaderName};

use crate::error::Rejection;

/// Longest header value this crate will parse. Real signature headers are a few
/// hundred bytes; the cap keeps hostile headers from making parsing expensive.
pub(crate) const MAX_HEADER_LEN: usize = 4096;

/// The signature header as text: absent is [`Rejection::MissingSignature`];
/// oversized or not UTF-8 is [`Rejection::MalformedSignature`].
pub(crate) fn signature<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h str, Rejection> {
    let value = headers.get(name).ok_or(Rejection::MissingSignature)?;
    bounded_text(value.as_bytes()).ok_or(Rejection::MalformedSignature)
}

/// A header the scheme requires: absent is [`Rejection::MissingHeader`], unusable is
/// [`Rejection::MalformedHeader`].
pub(crate) fn required<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h str, Rejection> {
    let value = headers
        .get(name)
        .ok_or_else(|| Rejection::MissingHeader(name.clone()))?;
    bounded_text(value.as_bytes()).ok_or_else(|| Rejection::MalformedHeader(name.clone()))
}

/// A timestamp header: absent is [`Rejection::MissingTimestamp`], unusable is
/// [`Rejection::MalformedTimestamp`].
pub(crate) fn timestamp<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h str, Rejection> {
    let value = headers.get(name).ok_or(Rejection::MissingTimestamp)?;
    bounded_text(value.as_bytes()).ok_or(Rejection::MalformedTimestamp)
}

/// An optional informational header (id, event): `None` when absent, empty
/// or not UTF-8. Not capped at [`MAX_HEADER_LEN`]: nothing is parsed out of
/// it, the HTTP server bounds the head, and the embedding service bounds ids
/// and events itself, so that an over-long one gets a clear answer instead
/// of silently becoming "no id" or "no event".
pub(crate) fn optional(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    optional_str(headers, name).map(str::to_owned)
}

/// [`optional`], borrowed (for values that are only combined into another).
pub(crate) fn optional_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
        .filter(|text| !text.is_empty())
}

fn bounded_text(bytes: &[u8]) -> Option<&str> {
    if bytes.len() > MAX_HEADER_LEN {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}
