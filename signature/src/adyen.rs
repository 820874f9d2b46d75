//! Adyen. Standard notifications carry the signature in each item:
//! `NotificationRequestItem.additionalData.hmacSignature` = base64
//! HMAC-SHA256(hex-decoded key, `pspReference:originalReference:
//! merchantAccountCode:merchantReference:value:currency:eventCode:success`), missing
//! fields empty. Only those 8 fields are covered, so every item is checked (not
//! only the first, as Adyen's Python SDK does). Balance Platform and Management
//! webhooks instead send a `HmacSignature` header over the raw body, same key.
//! A standard notification is answered `[accepted]`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;
use serde_json::{Value, json};

use crate::body;
use crate::candidates::{AnyCandidates, Encoding};
use crate::digest::{Algorithm, MacKeys};
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::request::{Request, Verified};

const HEADER: HeaderName = HeaderName::from_static("hmacsignature");

/// More items than this in one notification is refused (Adyen sends one).
const MAX_ITEMS: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct Adyen {
    keys: MacKeys,
}

impl Adyen {
    pub(crate) fn new(secrets: &[&[u8]]) -> Result<Self, ConfigError> {
        let keys = secrets
            .iter()
            .map(|secret| {
                hex::decode(secret).map_err(|_| {
                    ConfigError::InvalidHmacSetting(
                        "adyen: the HMAC key must be hex, as the Customer Area shows it",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.iter().any(Vec::is_empty) {
            return Err(ConfigError::EmptySecret);
        }
        Ok(Self {
            keys: MacKeys::new(Algorithm::Sha256, &keys)?,
        })
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == HEADER
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Verified, Rejection> {
        let json = body::parse(request.body);
        if let Some(value) = headers::optional_str(request.headers, &HEADER) {
            let mut candidates = AnyCandidates::new(32);
            candidates.push(Encoding::Base64, value);
            self.keys.verify(&[request.body], &candidates.finish()?)?;
            return Ok(Verified {
                id: body::text(json.as_ref(), &["data", "id"])
                    .or_else(|| body::text(json.as_ref(), &["id"])),
                event: body::text(json.as_ref(), &["type"]),
            });
        }
        let items = items(json.as_ref()).ok_or(Rejection::MissingSignature)?;
        if items.is_empty() || items.len() > MAX_ITEMS {
            return Err(Rejection::MalformedSignature);
        }
        for item in &items {
            let signature = item
                .pointer("/additionalData/hmacSignature")
                .and_then(Value::as_str)
                .ok_or(Rejection::MissingSignature)?;
            let mut candidates = AnyCandidates::new(32);
            candidates.push(Encoding::Base64, signature);
            self.keys
                .verify(&[signed_string(item).as_bytes()], &candidates.finish()?)?;
        }
        let first = items[0];
        let field = |name: &str| text(first.get(name));
        let id = match (field("pspReference"), field("eventCode")) {
            (psp, event) if !psp.is_empty() => Some(format!("{psp}:{event}")),
            _ => None,
        };
        Ok(Verified {
            id,
            event: Some(field("eventCode")).filter(|event| !event.is_empty()),
        })
    }

    /// Signs every item of a standard notification (building one around `id`
    /// and `event` when `body` is not one).
    pub(crate) fn sign(&self, body: &[u8], id: &str, event: &str) -> Vec<u8> {
        let mut root = body::parse(body)
            .filter(|root| items(Some(root)).is_some_and(|items| !items.is_empty()))
            .unwrap_or_else(|| {
                json!({"live": "false", "notificationItems": [{"NotificationRequestItem": {
                    "additionalData": {},
                    "amount": {"currency": "EUR", "value": 1000},
                    "eventCode": event,
                    "merchantAccountCode": "HooklineTest",
                    "merchantReference": id,
                    "pspReference": id,
                    "success": "true",
                }}]})
            });
        if let Some(Value::Array(list)) = root.get_mut("notificationItems") {
            for wrapper in list {
                let Some(item) = wrapper.get_mut("NotificationRequestItem") else {
                    continue;
                };
                let tag = self.keys.first().sign(&[signed_string(item).as_bytes()]);
                if let Some(map) = item.as_object_mut() {
                    let data = map.entry("additionalData").or_insert_with(|| json!({}));
                    if let Some(data) = data.as_object_mut() {
                        data.insert("hmacSignature".into(), Value::String(STANDARD.encode(tag)));
                    }
                }
            }
        }
        root.to_string().into_bytes()
    }
}

fn items(root: Option<&Value>) -> Option<Vec<&Value>> {
    let list = root?.get("notificationItems")?.as_array()?;
    list.iter()
        .map(|wrapper| wrapper.get("NotificationRequestItem"))
        .collect()
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::Bool(flag)) => flag.to_string(),
        _ => String::new(),
    }
}

fn signed_string(item: &Value) -> String {
    let field = |name: &str| text(item.get(name));
    let amount = |name: &str| text(item.get("amount").and_then(|amount| amount.get(name)));
    [
        field("pspReference"),
        field("originalReference"),
        field("merchantAccountCode"),
        field("merchantReference"),
        amount("value"),
        amount("currency"),
        field("eventCode"),
        field("success"),
    ]
    .join(":")
}
