//! SendGrid's signed Event Webhook: ECDSA P-256 with SHA-256 over
//! `X-Twilio-Email-Event-Webhook-Timestamp` + raw body (a JSON array ending in
//! CRLF: exact bytes). The signature is base64 DER; the key, configured as the
//! secret, is SendGrid's base64 DER (SPKI) public key. Like
//! `@sendgrid/eventwebhook`, no window is applied to the timestamp.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;

/// DER header of a P-256 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P256_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

use crate::body;
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::request::{Request, Verified};

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-timestamp");

#[derive(Debug, Clone)]
pub(crate) struct SendGrid {
    keys: Vec<VerifyingKey>,
    signing: Option<SigningKey>,
}

impl SendGrid {
    pub(crate) fn new(secrets: &[&[u8]]) -> Result<Self, ConfigError> {
        if secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        let keys = secrets
            .iter()
            .map(|secret| {
                let der = STANDARD
                    .decode(secret)
                    .map_err(|_| ConfigError::InvalidPublicKey("sendgrid: the verification key must be base64 (as shown in the SendGrid console)"))?;
                VerifyingKey::from_public_key_der(&der)
                    .map_err(|_| ConfigError::InvalidPublicKey("sendgrid: not a P-256 public key in DER (SPKI)"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            keys,
            signing: None,
        })
    }

    /// A signer from a 32-byte private scalar in hex.
    pub(crate) fn signer(secret_hex: &[u8]) -> Result<Self, ConfigError> {
        let bytes = hex::decode(secret_hex).map_err(|_| {
            ConfigError::InvalidPublicKey("sendgrid signer: the private key must be 64 hex digits")
        })?;
        let signing = SigningKey::from_slice(&bytes).map_err(|_| {
            ConfigError::InvalidPublicKey("sendgrid signer: not a valid P-256 private key")
        })?;
        Ok(Self {
            keys: vec![*signing.verifying_key()],
            signing: Some(signing),
        })
    }

    /// The base64 DER public key matching a private key (hex).
    pub(crate) fn public_of(secret_hex: &[u8]) -> Result<String, ConfigError> {
        let signer = Self::signer(secret_hex)?;
        // SubjectPublicKeyInfo for id-ecPublicKey / prime256v1, then the
        // uncompressed point: the fixed DER header SendGrid's keys start with.
        let mut der = hex::decode(SPKI_P256_PREFIX).unwrap_or_default();
        der.extend_from_slice(signer.keys[0].to_encoded_point(false).as_bytes());
        Ok(STANDARD.encode(der))
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == SIGNATURE
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Verified, Rejection> {
        let value = headers::signature(request.headers, &SIGNATURE)?;
        let der = STANDARD
            .decode(value)
            .map_err(|_| Rejection::MalformedSignature)?;
        let signature = Signature::from_der(&der).map_err(|_| Rejection::MalformedSignature)?;
        let timestamp = headers::timestamp(request.headers, &TIMESTAMP)?;
        let mut message = Vec::with_capacity(timestamp.len() + request.body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(request.body);
        // SendGrid's signatures are not normalised to low-S; accept both forms.
        let normalized = signature.normalize_s().unwrap_or(signature);
        if !self.keys.iter().any(|key| {
            key.verify(&message, &signature).is_ok() || key.verify(&message, &normalized).is_ok()
        }) {
            return Err(Rejection::InvalidSignature);
        }
        let json = body::parse(request.body);
        Ok(Verified {
            id: body::text(json.as_ref(), &["0", "sg_event_id"]),
            event: body::text(json.as_ref(), &["0", "event"]),
        })
    }

    pub(crate) fn sign(&self, body: &[u8], unix_seconds: u64) -> Vec<(HeaderName, String)> {
        let Some(signing) = &self.signing else {
            return Vec::new();
        };
        let timestamp = unix_seconds.to_string();
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        let signature: DerSignature = signing.sign(&message);
        vec![
            (SIGNATURE, STANDARD.encode(signature.as_bytes())),
            (TIMESTAMP, timestamp),
        ]
    }
}
