//! Standard Webhooks (and Svix, its origin): `webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64> [v1,<base64> ...]`, each `v1` an HMAC-SHA256 of
//! `{id}.{timestamp}.{raw body}`.
//!
//! The key is base64-decode(secret without an optional `whsec_`). Svix sends the
//! same headers named `svix-*`; as in the svix libraries, a complete `svix-*` set
//! wins over `webhook-*`. `v1a` (asymmetric) and unknown versions are skipped. The
//! window applies in both directions, as in the official libraries.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::{HeaderMap, HeaderName};

use crate::body;
use crate::candidates::{Candidates, Encoding};
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::mac::Keys;
use crate::request::{Request, Verified};
use crate::timestamp::{self, Window};

/// Secrets are pasted by people: accept them with or without `=` padding.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One naming of the three headers.
struct Names {
    id: HeaderName,
    timestamp: HeaderName,
    signature: HeaderName,
}

static WEBHOOK: Names = Names {
    id: HeaderName::from_static("webhook-id"),
    timestamp: HeaderName::from_static("webhook-timestamp"),
    signature: HeaderName::from_static("webhook-signature"),
};

static SVIX: Names = Names {
    id: HeaderName::from_static("svix-id"),
    timestamp: HeaderName::from_static("svix-timestamp"),
    signature: HeaderName::from_static("svix-signature"),
};

impl Names {
    fn present(&self, headers: &HeaderMap) -> usize {
        [&self.id, &self.timestamp, &self.signature]
            .into_iter()
            .filter(|name| headers.contains_key(*name))
            .count()
    }

    /// `svix-*` when complete, or when it is all there is; otherwise `webhook-*`,
    /// so that a missing header is reported under the naming actually used.
    fn of(headers: &HeaderMap) -> &'static Names {
        let svix = SVIX.present(headers);
        if svix == 3 || (svix > 0 && WEBHOOK.present(headers) == 0) {
            &SVIX
        } else {
            &WEBHOOK
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StandardWebhooks {
    keys: Keys,
    window: Window,
}

impl StandardWebhooks {
    pub(crate) fn new(
        secrets: &[&[u8]],
        tolerance: std::time::Duration,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: Keys::new(secrets, decode_secret)?,
            window: Window::seconds(tolerance, true),
        })
    }

    pub(crate) fn verify(
        &self,
        request: &Request<'_>,
        now: std::time::SystemTime,
    ) -> Result<Verified, Rejection> {
        let names = Names::of(request.headers);
        let value = headers::signature(request.headers, &names.signature)?;
        let id = headers::required(request.headers, &names.id)?;
        let t = headers::timestamp(request.headers, &names.timestamp)?;
        let mut candidates = Candidates::default();
        for entry in value.split(' ') {
            if let Some(("v1", text)) = entry.split_once(',') {
                candidates.push(Encoding::Base64, text);
            }
        }
        let candidates = candidates.finish()?;
        self.window.check(timestamp::parse(t)?, now)?;
        self.keys.verify(
            &[id.as_bytes(), b".", t.as_bytes(), b".", request.body],
            &candidates,
        )?;
        let json = body::fields(request.body, &[&["type"]]);
        Ok(Verified {
            id: Some(id.to_owned()).filter(|id| !id.is_empty()),
            event: body::text(json.as_ref(), &["type"]),
        })
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == WEBHOOK.signature || name == SVIX.signature
    }

    /// Signs with the `webhook-*` names; the event type lives in the body.
    pub(crate) fn sign(&self, body: &[u8], id: &str, timestamp: u64) -> Vec<(HeaderName, String)> {
        let t = timestamp.to_string();
        let tag = self
            .keys
            .signing()
            .sign(&[id.as_bytes(), b".", t.as_bytes(), b".", body]);
        vec![
            (WEBHOOK.id.clone(), id.to_owned()),
            (WEBHOOK.timestamp.clone(), t),
            (
                WEBHOOK.signature.clone(),
                format!("v1,{}", Encoding::Base64.encode(&tag)),
            ),
        ]
    }
}

fn decode_secret(secret: &[u8]) -> Result<Vec<u8>, ConfigError> {
    let encoded = secret.strip_prefix(b"whsec_").unwrap_or(secret);
    SECRET_BASE64
        .decode(encoded)
        .map_err(ConfigError::SecretNotBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_with_or_without_prefix_or_padding() {
        let decoded = decode_secret(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            decode_secret(b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            decoded
        );
        let padded = decode_secret(b"whsec_orYMId7FPcFdNXy4oKzjodz9WCDHj4hOBrluq+eRiKA=").unwrap();
        assert_eq!(
            decode_secret(b"whsec_orYMId7FPcFdNXy4oKzjodz9WCDHj4hOBrluq+eRiKA").unwrap(),
            padded
        );
        assert!(decode_secret(b"whsec_not base64!").is_err());
    }
}
