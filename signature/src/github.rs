//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`.
//!
//! No timestamp is signed, so there is no replay window; dedup relies on the id.
//! The id is `<X-GitHub-Hook-ID>:<X-GitHub-Delivery>` because GitHub shares one
//! delivery GUID between all hooks subscribed to the same event.

use http::{HeaderMap, HeaderName};

use crate::candidates::{self, Encoding};
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::mac::Keys;
use crate::request::{Request, Verified};

const SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
/// The legacy SHA-1 signature is never checked, but it is still a signature.
const LEGACY_SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature");
const DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
const HOOK_ID: HeaderName = HeaderName::from_static("x-github-hook-id");
const EVENT: HeaderName = HeaderName::from_static("x-github-event");
const PREFIX: &str = "sha256=";

#[derive(Debug, Clone)]
pub(crate) struct Github {
    keys: Keys,
}

impl Github {
    pub(crate) fn new(secrets: &[&[u8]]) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: Keys::raw(secrets)?,
        })
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Verified, Rejection> {
        let value = headers::signature(request.headers, &SIGNATURE)?;
        // GitHub always writes the `sha256=` label; a bare digest or another label
        // is not this scheme.
        let digest = value
            .strip_prefix(PREFIX)
            .ok_or(Rejection::MalformedSignature)?;
        let candidates = candidates::single(Encoding::Hex, digest)?;
        self.keys.verify(&[request.body], &candidates)?;
        Ok(Verified {
            id: id(request.headers),
            event: headers::optional(request.headers, &EVENT),
        })
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == SIGNATURE || name == LEGACY_SIGNATURE
    }

    /// `id` may be `<hook id>:<delivery>` (what [`Github::verify`] returns); a bare
    /// delivery GUID sends no hook id header.
    pub(crate) fn sign(&self, body: &[u8], id: &str, event: &str) -> Vec<(HeaderName, String)> {
        let tag = self.keys.signing().sign(&[body]);
        let mut out = vec![(SIGNATURE, format!("{PREFIX}{}", Encoding::Hex.encode(&tag)))];
        match id.split_once(':') {
            Some((hook, delivery)) => {
                out.push((HOOK_ID, hook.to_owned()));
                out.push((DELIVERY, delivery.to_owned()));
            }
            None => out.push((DELIVERY, id.to_owned())),
        }
        out.push((EVENT, event.to_owned()));
        out
    }
}

fn id(headers: &HeaderMap) -> Option<String> {
    let delivery = headers::optional_str(headers, &DELIVERY)?;
    Some(match headers::optional_str(headers, &HOOK_ID) {
        Some(hook) => format!("{hook}:{delivery}"),
        None => delivery.to_owned(),
    })
}
