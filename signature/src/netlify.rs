//! Netlify: `X-Webhook-Signature` is a compact JWS, HS256 with the "JWS secret",
//! whose claims are `{"iss":"netlify","sha256":"<hex SHA-256 of the raw body>"}`.
//! The MAC covers the claims, not the body: verify the JWS, then `iss`, then the
//! body hash. Only `alg: HS256` is accepted (never `none`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderName;
use serde_json::{Value, json};

use crate::body;
use crate::digest::{self, Algorithm, MacKeys};
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::request::{Request, Verified};

const SIGNATURE: HeaderName = HeaderName::from_static("x-webhook-signature");
const EVENT: HeaderName = HeaderName::from_static("x-netlify-event");

#[derive(Debug, Clone)]
pub(crate) struct Netlify {
    keys: MacKeys,
}

impl Netlify {
    pub(crate) fn new(secrets: &[&[u8]]) -> Result<Self, ConfigError> {
        let keys: Vec<Vec<u8>> = secrets.iter().map(|s| s.to_vec()).collect();
        Ok(Self {
            keys: MacKeys::new(Algorithm::Sha256, &keys)?,
        })
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == SIGNATURE
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Verified, Rejection> {
        let token = headers::signature(request.headers, &SIGNATURE)?;
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::MalformedSignature);
        };
        let decode_json = |text: &str| -> Result<Value, Rejection> {
            let bytes = URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| Rejection::MalformedSignature)?;
            serde_json::from_slice(&bytes).map_err(|_| Rejection::MalformedSignature)
        };
        if decode_json(header)?.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(Rejection::MalformedSignature);
        }
        let tag = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Rejection::MalformedSignature)?;
        self.keys
            .verify(&[header.as_bytes(), b".", claims.as_bytes()], &[tag])?;
        let claims = decode_json(claims)?;
        let body_hash = hex::encode(Algorithm::Sha256.hash(&[request.body]));
        let claimed = claims.get("sha256").and_then(Value::as_str).unwrap_or("");
        if claims.get("iss").and_then(Value::as_str) != Some("netlify")
            || !digest::equal(claimed.as_bytes(), body_hash.as_bytes())
        {
            return Err(Rejection::InvalidSignature);
        }
        let json = body::parse(request.body);
        Ok(Verified {
            id: body::text(json.as_ref(), &["id"]),
            event: headers::optional(request.headers, &EVENT),
        })
    }

    pub(crate) fn sign(&self, body: &[u8], event: &str) -> Vec<(HeaderName, String)> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims =
            json!({"iss": "netlify", "sha256": hex::encode(Algorithm::Sha256.hash(&[body]))});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let tag = self
            .keys
            .first()
            .sign(&[header.as_bytes(), b".", claims.as_bytes()]);
        vec![
            (
                SIGNATURE,
                format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode(tag)),
            ),
            (EVENT, event.to_owned()),
        ]
    }
}
