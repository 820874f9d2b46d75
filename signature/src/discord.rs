//! Discord interactions and webhook events: Ed25519 over
//! `X-Signature-Timestamp` + raw body with the application's public key (hex);
//! `X-Signature-Ed25519` is the hex signature. Like `discord-interactions`, the
//! timestamp is not held to a window (it is signed, and dedup by interaction id
//! applies). A PING (`type: 1`) is answered `{"type":1}`.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use http::HeaderName;

use crate::body;
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::request::{Request, Verified};

const SIGNATURE: HeaderName = HeaderName::from_static("x-signature-ed25519");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-signature-timestamp");

#[derive(Debug, Clone)]
pub(crate) struct Discord {
    keys: Vec<VerifyingKey>,
    /// Present only in a signer (built from a private seed).
    signing: Option<SigningKey>,
}

impl Discord {
    /// Secrets are the application's public key(s), 64 hex digits.
    pub(crate) fn new(secrets: &[&[u8]]) -> Result<Self, ConfigError> {
        if secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        let keys = secrets
            .iter()
            .map(|secret| {
                let bytes: [u8; 32] = hex::decode(secret)
                    .ok()
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or(ConfigError::InvalidPublicKey("discord: the public key must be 64 hex digits (the application's PUBLIC KEY)"))?;
                VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| ConfigError::InvalidPublicKey("discord: not a valid Ed25519 public key"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            keys,
            signing: None,
        })
    }

    /// A signer from a 32-byte private seed in hex (see `test_key_pair`).
    pub(crate) fn signer(seed_hex: &[u8]) -> Result<Self, ConfigError> {
        let seed: [u8; 32] = hex::decode(seed_hex)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(ConfigError::InvalidPublicKey(
                "discord signer: the private seed must be 64 hex digits",
            ))?;
        let signing = SigningKey::from_bytes(&seed);
        Ok(Self {
            keys: vec![signing.verifying_key()],
            signing: Some(signing),
        })
    }

    /// The public key (hex) matching a private seed (hex).
    pub(crate) fn public_of(seed_hex: &[u8]) -> Result<String, ConfigError> {
        let signer = Self::signer(seed_hex)?;
        Ok(hex::encode(signer.keys[0].as_bytes()))
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == SIGNATURE
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Verified, Rejection> {
        let value = headers::signature(request.headers, &SIGNATURE)?;
        let bytes: [u8; 64] = hex::decode(value)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(Rejection::MalformedSignature)?;
        let signature = Signature::from_bytes(&bytes);
        let timestamp = headers::timestamp(request.headers, &TIMESTAMP)?;
        let mut message = Vec::with_capacity(timestamp.len() + request.body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(request.body);
        if !self
            .keys
            .iter()
            .any(|key| key.verify(&message, &signature).is_ok())
        {
            return Err(Rejection::InvalidSignature);
        }
        let json = body::parse(request.body);
        Ok(Verified {
            id: body::text(json.as_ref(), &["id"]),
            event: body::text(json.as_ref(), &["type"]),
        })
    }

    pub(crate) fn sign(&self, body: &[u8], unix_seconds: u64) -> Vec<(HeaderName, String)> {
        let timestamp = unix_seconds.to_string();
        let Some(signing) = &self.signing else {
            return Vec::new();
        };
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        vec![
            (SIGNATURE, hex::encode(signing.sign(&message).to_bytes())),
            (TIMESTAMP, timestamp),
        ]
    }
}
