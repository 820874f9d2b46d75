//! Handshakes as pure decisions: given a request, say whether it is a provider's
//! registration or liveness check and what to answer, before (or instead of)
//! treating it as a delivery. Ingest performs the answer; nothing here is
//! published.

use http::HeaderName;

/// An HTTP answer decided by the signature crate.
///
/// `Debug` shows header names and the body's length only: an answer may echo a
/// secret (Asana's `X-Hook-Secret`).
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers to set (name, value).
    pub headers: Vec<(HeaderName, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// A status with no headers and an empty body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `200` with `Content-Type: text/plain` and `body`.
    pub(crate) fn text(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: vec![(http::header::CONTENT_TYPE, "text/plain".to_owned())],
            body: body.into(),
        }
    }

    /// `200` with `Content-Type: application/json` and `value` serialized compactly.
    pub(crate) fn json(value: &serde_json::Value) -> Self {
        Self {
            status: 200,
            headers: vec![(http::header::CONTENT_TYPE, "application/json".to_owned())],
            body: value.to_string().into_bytes(),
        }
    }
}

/// What to do with a request, decided by [`Verifier::receive`](crate::Verifier::receive).
///
/// `Debug` never shows a captured secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A genuine delivery: store it, then answer as
    /// [`Verifier::accepted_response`](crate::Verifier::accepted_response) says.
    Deliver(crate::Verified),
    /// A handshake (or a refused one): answer this and store nothing.
    Respond(Response),
    /// A handshake that hands over the secret later deliveries are signed with
    /// (Asana `X-Hook-Secret`, Notion `verification_token`). Ingest keeps the
    /// secret only while an operator has opened a capture window, answers
    /// `response` then, and refuses otherwise. Never log `secret`.
    Capture {
        /// The secret to store for this source.
        secret: String,
        /// The answer the provider expects when the secret is kept.
        response: Response,
    },
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deliver(verified) => f.debug_tuple("Deliver").field(verified).finish(),
            Self::Respond(response) => f.debug_tuple("Respond").field(response).finish(),
            Self::Capture { response, .. } => f
                .debug_struct("Capture")
                .field("secret", &"<redacted>")
                .field("response", response)
                .finish(),
        }
    }
}
