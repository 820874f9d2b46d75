//! Mailgun: the signature travels inside the body. JSON webhooks carry
//! `signature: {timestamp, token, signature}`; legacy form posts carry the same
//! three fields. `signature` = hex HMAC-SHA256(webhook signing key, timestamp +
//! token). It does not cover `event-data`, so the timestamp is held to the replay
//! window and ingest's dedup on `event-data.id` stops replays within it.

use std::time::SystemTime;

use http::HeaderName;
use serde_json::Value;

use crate::body;
use crate::candidates::{AnyCandidates, Encoding};
use crate::digest::{Algorithm, MacKeys};
use crate::error::{ConfigError, Rejection};
use crate::form;
use crate::request::{Request, Verified};
use crate::timestamp::{self, Window};

#[derive(Debug, Clone)]
pub(crate) struct Mailgun {
    keys: MacKeys,
    window: Window,
}

impl Mailgun {
    pub(crate) fn new(secrets: &[&[u8]], window: Window) -> Result<Self, ConfigError> {
        let keys: Vec<Vec<u8>> = secrets.iter().map(|s| s.to_vec()).collect();
        Ok(Self {
            keys: MacKeys::new(Algorithm::Sha256, &keys)?,
            window,
        })
    }

    pub(crate) fn is_secret_header(_name: &HeaderName) -> bool {
        false
    }

    pub(crate) fn verify(
        &self,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<Verified, Rejection> {
        let json = body::parse(request.body);
        let (timestamp, token, signature) =
            match json.as_ref().and_then(|root| root.get("signature")) {
                Some(Value::Object(fields)) => {
                    let text =
                        |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
                    (text("timestamp"), text("token"), text("signature"))
                }
                _ => (
                    form::field(request.body, "timestamp"),
                    form::field(request.body, "token"),
                    form::field(request.body, "signature"),
                ),
            };
        let signature = signature.ok_or(Rejection::MissingSignature)?;
        let timestamp = timestamp.ok_or(Rejection::MissingTimestamp)?;
        let token = token.ok_or(Rejection::MalformedSignature)?;
        let mut candidates = AnyCandidates::new(32);
        candidates.push(Encoding::Hex, &signature);
        let candidates = candidates.finish()?;
        self.window.check(timestamp::parse(&timestamp)?, now)?;
        self.keys
            .verify(&[timestamp.as_bytes(), token.as_bytes()], &candidates)?;
        Ok(Verified {
            id: body::text(json.as_ref(), &["event-data", "id"])
                .or_else(|| form::field(request.body, "Message-Id")),
            event: body::text(json.as_ref(), &["event-data", "event"])
                .or_else(|| form::field(request.body, "event")),
        })
    }

    /// Puts `signature` into a JSON body (an object; anything else becomes
    /// `{"event-data": {id, event}}`).
    pub(crate) fn sign(&self, body: &[u8], id: &str, event: &str, unix_seconds: u64) -> Vec<u8> {
        let mut root = match body::parse(body) {
            Some(Value::Object(map)) => Value::Object(map),
            _ => serde_json::json!({"event-data": {"id": id, "event": event}}),
        };
        let timestamp = unix_seconds.to_string();
        let token = hex::encode(Algorithm::Sha256.hash(&[id.as_bytes(), timestamp.as_bytes()]));
        let tag = self
            .keys
            .first()
            .sign(&[timestamp.as_bytes(), token.as_bytes()]);
        if let Value::Object(map) = &mut root {
            map.insert(
                "signature".into(),
                serde_json::json!({"timestamp": timestamp, "token": token, "signature": hex::encode(tag)}),
            );
        }
        root.to_string().into_bytes()
    }
}
