//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>][,v0=<hex>]`, each `v1`
//! an HMAC-SHA256 of `{t}.{raw body}`.
//!
//! The key is the whole `whsec_...` string as UTF-8 bytes (unlike Standard
//! Webhooks, which decodes it). `v0` and unknown schemes are ignored, at least one
//! `v1` is required (no downgrade). As in stripe-python and stripe-node, only the
//! age of `t` is checked, not whether it lies in the future.

use http::HeaderName;

use crate::body;
use crate::candidates::{Candidates, Encoding};
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::mac::Keys;
use crate::request::{Request, Verified};
use crate::timestamp::{self, Window};

const SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

#[derive(Debug, Clone)]
pub(crate) struct Stripe {
    keys: Keys,
    window: Window,
}

impl Stripe {
    pub(crate) fn new(
        secrets: &[&[u8]],
        tolerance: std::time::Duration,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: Keys::raw(secrets)?,
            window: Window::seconds(tolerance, false),
        })
    }

    pub(crate) fn verify(
        &self,
        request: &Request<'_>,
        now: std::time::SystemTime,
    ) -> Result<Verified, Rejection> {
        let value = headers::signature(request.headers, &SIGNATURE)?;
        let mut t = None;
        let mut candidates = Candidates::default();
        for item in value.split(',') {
            match item.split_once('=') {
                Some(("t", text)) if t.is_none() => t = Some(text),
                Some(("v1", text)) => candidates.push(Encoding::Hex, text),
                _ => {}
            }
        }
        let candidates = candidates.finish()?;
        let t = t.ok_or(Rejection::MissingTimestamp)?;
        self.window.check(timestamp::parse(t)?, now)?;
        self.keys
            .verify(&[t.as_bytes(), b".", request.body], &candidates)?;
        let json = body::fields(request.body, &[&["id"], &["type"]]);
        Ok(Verified {
            id: body::text(json.as_ref(), &["id"]),
            event: body::text(json.as_ref(), &["type"]),
        })
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == SIGNATURE
    }

    /// Stripe puts the event id and type in the body, so only the signature header
    /// is produced.
    pub(crate) fn sign(&self, body: &[u8], timestamp: u64) -> Vec<(HeaderName, String)> {
        let t = timestamp.to_string();
        let tag = self.keys.signing().sign(&[t.as_bytes(), b".", body]);
        vec![(
            SIGNATURE,
            format!("t={t},v1={}", Encoding::Hex.encode(&tag)),
        )]
    }
}
