//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret,
//! "v0:{X-Slack-Request-Timestamp}:{raw body}")>`.
//!
//! The window is symmetric (slack_sdk rejects `|now - ts| > 300`). Events API
//! bodies are JSON (`event_id`, `type`, `event.type`); slash commands and
//! interactivity are form-encoded and carry no event id.

use http::HeaderName;

use crate::body;
use crate::candidates::{self, Encoding};
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::mac::Keys;
use crate::request::{Request, Verified};
use crate::timestamp::{self, Window};

const SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");
const VERSION: &str = "v0";

#[derive(Debug, Clone)]
pub(crate) struct Slack {
    keys: Keys,
    window: Window,
}

impl Slack {
    pub(crate) fn new(
        secrets: &[&[u8]],
        tolerance: std::time::Duration,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: Keys::raw(secrets)?,
            window: Window::seconds(tolerance, true),
        })
    }

    pub(crate) fn verify(
        &self,
        request: &Request<'_>,
        now: std::time::SystemTime,
    ) -> Result<Verified, Rejection> {
        let value = headers::signature(request.headers, &SIGNATURE)?;
        let digest = value
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('='))
            .ok_or(Rejection::MalformedSignature)?;
        let candidates = candidates::single(Encoding::Hex, digest)?;
        let t = headers::timestamp(request.headers, &TIMESTAMP)?;
        self.window.check(timestamp::parse(t)?, now)?;
        self.keys.verify(
            &[VERSION.as_bytes(), b":", t.as_bytes(), b":", request.body],
            &candidates,
        )?;
        let json = body::fields(
            request.body,
            &[&["event", "type"], &["type"], &["event_id"]],
        );
        let event = body::text(json.as_ref(), &["event", "type"])
            .or_else(|| body::text(json.as_ref(), &["type"]));
        Ok(Verified {
            id: body::text(json.as_ref(), &["event_id"]),
            event,
        })
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == SIGNATURE
    }

    /// Slack's id and type live in the body.
    pub(crate) fn sign(&self, body: &[u8], timestamp: u64) -> Vec<(HeaderName, String)> {
        let t = timestamp.to_string();
        let tag = self
            .keys
            .signing()
            .sign(&[VERSION.as_bytes(), b":", t.as_bytes(), b":", body]);
        vec![
            (
                SIGNATURE,
                format!("{VERSION}={}", Encoding::Hex.encode(&tag)),
            ),
            (TIMESTAMP, t),
        ]
    }
}
