//! Braintree: a form POST with `bt_signature` and `bt_payload` (base64 XML).
//! `bt_signature` holds `public_key|hex HMAC-SHA1(SHA1(private key), bt_payload)`
//! pairs joined by `&`; the pair for our public key is checked, against the
//! payload as sent and, as the SDKs do, the payload plus a newline. The
//! destination check `GET ?bt_challenge=<hex>` is answered
//! `public_key|hex HMAC-SHA1(SHA1(private key), challenge)`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;

use crate::candidates::{AnyCandidates, Encoding};
use crate::digest::{Algorithm, MacKeys};
use crate::error::{ConfigError, Rejection};
use crate::form;
use crate::handshake::Response;
use crate::request::{Request, Verified};

/// Challenges are 20–32 lowercase hex digits; allow some slack, no more.
const MAX_CHALLENGE: usize = 64;
/// At most this many `public|signature` pairs are looked at.
const MAX_PAIRS: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct Braintree {
    public_key: String,
    keys: MacKeys,
}

impl Braintree {
    pub(crate) fn new(secrets: &[&[u8]], public_key: Option<&str>) -> Result<Self, ConfigError> {
        let public_key =
            public_key
                .filter(|key| !key.is_empty())
                .ok_or(ConfigError::MissingSetting {
                    key: "public_key",
                    provider: "braintree",
                })?;
        let keys: Vec<Vec<u8>> = secrets
            .iter()
            .map(|secret| {
                if secret.is_empty() {
                    Err(ConfigError::EmptySecret)
                } else {
                    Ok(Algorithm::Sha1.hash(&[secret]))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            public_key: public_key.to_owned(),
            keys: MacKeys::new(Algorithm::Sha1, &keys)?,
        })
    }

    pub(crate) fn is_secret_header(_name: &HeaderName) -> bool {
        false
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Verified, Rejection> {
        let signature =
            form::field(request.body, "bt_signature").ok_or(Rejection::MissingSignature)?;
        let payload = form::field(request.body, "bt_payload").ok_or(Rejection::MissingSignature)?;
        if !payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b'/' | b'\n'))
        {
            return Err(Rejection::MalformedSignature);
        }
        let mut candidates = AnyCandidates::new(Algorithm::Sha1.len());
        for pair in signature.split('&').take(MAX_PAIRS) {
            if let Some((public, digest)) = pair.split_once('|')
                && public == self.public_key
            {
                candidates.push(Encoding::Hex, digest);
            }
        }
        let candidates = candidates.finish()?;
        self.keys
            .verify(&[payload.as_bytes()], &candidates)
            .or_else(|_| self.keys.verify(&[payload.as_bytes(), b"\n"], &candidates))?;
        let xml = STANDARD
            .decode(payload.replace('\n', ""))
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        Ok(Verified {
            id: None,
            event: element(&xml, "kind"),
        })
    }

    /// The answer to `GET ?bt_challenge=`, or `None` when the request is not one.
    pub(crate) fn challenge(&self, request: &Request<'_>) -> Option<Response> {
        let challenge = request.query("bt_challenge")?;
        if challenge.is_empty()
            || challenge.len() > MAX_CHALLENGE
            || !challenge.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Some(Response::empty(400));
        }
        let tag = self.keys.first().sign(&[challenge.as_bytes()]);
        Some(Response {
            status: 200,
            headers: Vec::new(),
            body: format!("{}|{}", self.public_key, hex::encode(tag)).into_bytes(),
        })
    }

    /// A form body as Braintree posts it, around the XML `body` (or a minimal
    /// notification of kind `event`).
    pub(crate) fn sign(&self, body: &[u8], event: &str) -> Vec<u8> {
        let xml = if body.starts_with(b"<") {
            body.to_vec()
        } else {
            format!("<notification><kind>{event}</kind><timestamp type=\"datetime\">2025-10-09T08:53:20Z</timestamp></notification>").into_bytes()
        };
        let payload = format!("{}\n", STANDARD.encode(xml));
        let tag = self.keys.first().sign(&[payload.as_bytes()]);
        let signature = format!("{}|{}", self.public_key, hex::encode(tag));
        form::encode(&[("bt_signature", &signature), ("bt_payload", &payload)]).into_bytes()
    }
}

/// The text of the first `<name>…</name>` element (no attributes), if any.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find('<')? + start;
    Some(xml[start..end].trim().to_owned()).filter(|text| !text.is_empty())
}
