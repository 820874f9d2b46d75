//! What a verifier looks at ([`Request`]) and what it hands back ([`Verified`]).

use std::fmt;

use http::HeaderMap;

/// A borrowed view of one incoming delivery: exactly the bytes that arrived.
///
/// `body` must be the raw request body, before any JSON or form parsing: providers
/// sign bytes, and a re-serialized body does not verify.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The request headers (names are case-insensitive).
    pub headers: &'a HeaderMap,
    /// The raw body bytes.
    pub body: &'a [u8],
    /// The public URL the provider called (scheme, host, path, query), when known.
    /// URL-signed schemes (Twilio, Square, Trello, Mandrill, HubSpot, Contentful)
    /// sign it, and the GET handshakes (Meta, Dropbox, Braintree) read their
    /// challenge from its query: ingest builds it from the source's `public_url`
    /// and the request's query string.
    pub url: Option<&'a str>,
    /// The request method in upper case (`POST`, `GET`, `HEAD`).
    pub method: &'a str,
}

impl<'a> Request<'a> {
    /// A `POST` without a public URL.
    pub fn new(headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Self {
            headers,
            body,
            url: None,
            method: "POST",
        }
    }

    /// The same request with the public URL the provider called.
    pub fn with_url(self, url: &'a str) -> Self {
        Self {
            url: Some(url),
            ..self
        }
    }

    /// The same request with another method.
    pub fn with_method(self, method: &'a str) -> Self {
        Self { method, ..self }
    }

    /// The decoded query parameter `name` of the public URL, if any.
    pub(crate) fn query(&self, name: &str) -> Option<String> {
        let (_, query) = self.url?.split_once('?')?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

impl fmt::Debug for Request<'_> {
    // Header values may hold signatures, which must never reach a log line:
    // show names and sizes only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("url", &self.url.map(|url| url.split('?').next()))
            .field("method", &self.method)
            .finish()
    }
}

/// A delivery whose signature (and timestamp, where signed) held.
///
/// `id` and `event` come from where the provider puts them (a header or the JSON
/// body); `None` when the provider gives none or the body is not JSON. Ingest then
/// falls back to a body hash for the id and to `unknown` for the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// The provider's delivery/event id, kept readable for dedup and search.
    pub id: Option<String>,
    /// The provider's event type, unsanitised and unbounded (ingest refuses one
    /// over 4 KiB and sanitises it into a subject token).
    pub event: Option<String>,
}
