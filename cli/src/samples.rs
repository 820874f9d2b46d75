//! Realistic sample deliveries, one per provider, for `hookline send`:
//! the body a provider would send, with the id and event where that
//! provider puts them.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use hookline_signature::{HmacSpec, ProviderSpec, TimestampUnit};
use serde_json::{Value, json};

/// A delivery to sign and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The webhook id, as the provider would name it.
    pub id: String,
    /// The event type.
    pub event: String,
    /// The raw body.
    pub body: Vec<u8>,
}

/// The default event of each provider's sample.
pub fn default_event(spec: &ProviderSpec) -> &'static str {
    match spec {
        ProviderSpec::Github => "push",
        ProviderSpec::Stripe => "payment_intent.succeeded",
        ProviderSpec::StandardWebhooks => "invoice.paid",
        ProviderSpec::Shopify => "orders/create",
        ProviderSpec::Slack => "app_mention",
        _ => "sample.created",
    }
}

/// The hook id of the sample GitHub deliveries (`X-GitHub-Hook-ID`).
const SAMPLE_GITHUB_HOOK: &str = "424242";

/// `--id` in the provider's format: a GitHub delivery GUID gets the
/// sample's hook id in front (`424242:<guid>`), as GitHub always sends
/// both headers; any other id is used as given.
pub fn provider_id(spec: &ProviderSpec, id: &str) -> String {
    match spec {
        ProviderSpec::Github if !id.contains(':') => format!("{SAMPLE_GITHUB_HOOK}:{id}"),
        _ => id.to_owned(),
    }
}

/// A fresh id in the provider's format: GitHub `<hook id>:<delivery uuid>`,
/// Stripe `evt_…`, Standard Webhooks `msg_…`, Shopify a UUID, Slack `Ev…`.
pub fn new_id(spec: &ProviderSpec) -> String {
    match spec {
        ProviderSpec::Github => provider_id(spec, &uuid()),
        ProviderSpec::Stripe => format!("evt_{}", token(24)),
        ProviderSpec::StandardWebhooks => format!("msg_{}", token(27)),
        ProviderSpec::Slack => format!("Ev{}", token(10).to_ascii_uppercase()),
        _ => uuid(),
    }
}

/// The sample body for `spec` carrying `id` and `event` where the provider
/// puts them in the body (Stripe, Slack, Standard Webhooks' `type`, and the
/// JSON paths an `hmac` source names), at `now`.
pub fn sample(spec: &ProviderSpec, id: &str, event: &str, now: SystemTime) -> Sample {
    let unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let body = match spec {
        ProviderSpec::Github => github(event),
        ProviderSpec::Stripe => stripe(id, event, unix),
        ProviderSpec::StandardWebhooks => json!({
            "type": event,
            "timestamp": humantime::format_rfc3339_seconds(now).to_string(),
            "data": {
                "invoice_id": format!("in_{}", token(14)),
                "customer_id": "cus_4711",
                "amount_paid": 4200,
                "currency": "eur",
                "status": "paid"
            }
        }),
        ProviderSpec::Shopify => shopify(unix),
        ProviderSpec::Slack => slack(id, event, unix),
        ProviderSpec::Hmac(hmac) => generic(hmac, id, event, unix),
        ProviderSpec::Preset(preset) => match preset.0.name {
            // Form posts, signed over their decoded parameters.
            "twilio" => {
                return form_sample(id, event, &[("MessageSid", id), ("MessageStatus", event)]);
            }
            "mandrill" => {
                let events = json!([{ "_id": id, "event": event }]).to_string();
                return form_sample(id, event, &[("mandrill_events", &events)]);
            }
            // The signer builds Braintree's form around an XML notification.
            "braintree" => return form_sample(id, event, &[]),
            _ => match preset.0.hmac_spec() {
                Some(spec) => generic(&spec, id, event, unix),
                None => json!({ "id": id, "type": event }),
            },
        },
        _ => json!({ "id": id, "type": event }),
    };
    Sample {
        id: id.to_owned(),
        event: event.to_owned(),
        body: serde_json::to_vec_pretty(&body).unwrap_or_default(),
    }
}

fn github(event: &str) -> Value {
    let repository = json!({
        "id": 186_853_002,
        "name": "hookline-demo",
        "full_name": "octo-org/hookline-demo",
        "private": false,
        "html_url": "https://github.com/octo-org/hookline-demo",
        "default_branch": "main"
    });
    let sender = json!({ "login": "octocat", "id": 583_231, "type": "User" });
    match event {
        "ping" => json!({
            "zen": "Design for failure.",
            "hook_id": 424_242,
            "repository": repository,
            "sender": sender
        }),
        _ => {
            let after = format!("{}{}", token(20), token(20));
            json!({
                "ref": "refs/heads/main",
                "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                "after": after,
                "created": false,
                "deleted": false,
                "forced": false,
                "compare": "https://github.com/octo-org/hookline-demo/compare/6113728f27ae...",
                "commits": [{
                    "id": after,
                    "message": "Retry webhooks with exponential backoff",
                    "timestamp": "2026-11-29T10:11:12Z",
                    "author": { "name": "Mona Octocat", "email": "mona@example.com", "username": "octocat" },
                    "added": [], "removed": [], "modified": ["processor/src/backoff.rs"]
                }],
                "repository": repository,
                "pusher": { "name": "octocat", "email": "mona@example.com" },
                "sender": sender
            })
        }
    }
}

fn stripe(id: &str, event: &str, unix: u64) -> Value {
    let intent = format!("pi_{}", token(24));
    json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": unix,
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": format!("req_{}", token(14)), "idempotency_key": uuid() },
        "type": event,
        "data": {
            "object": {
                "id": intent,
                "object": "payment_intent",
                "amount": 4200,
                "amount_received": 4200,
                "currency": "eur",
                "customer": "cus_4711",
                "description": "Hookline sample",
                "status": "succeeded",
                "created": unix,
                "livemode": false,
                "metadata": { "order_id": "1001" }
            }
        }
    })
}

fn shopify(unix: u64) -> Value {
    json!({
        "id": 820_982_911_946_154_508u64 + unix % 1000,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "email": "jon@example.com",
        "created_at": "2026-11-29T10:11:12-05:00",
        "currency": "USD",
        "financial_status": "paid",
        "name": "#1001",
        "order_number": 1001,
        "total_price": "42.00",
        "line_items": [{
            "id": 866_550_311_766_439_020u64,
            "title": "Hookline mug",
            "quantity": 2,
            "price": "21.00",
            "sku": "HL-MUG"
        }],
        "customer": { "id": 115_310_627_314_723_954u64, "email": "jon@example.com", "first_name": "Jon" }
    })
}

fn slack(id: &str, event: &str, unix: u64) -> Value {
    json!({
        "token": "XXYYZZ",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": id,
        "event_time": unix,
        "event": {
            "type": event,
            "user": "U061F7AUR",
            "text": "<@U0LAN0Z89> is the pipeline up?",
            "ts": format!("{unix}.000200"),
            "channel": "C0LAN2Q65",
            "event_ts": format!("{unix}.000200")
        },
        "authorizations": [{ "team_id": "T0001", "user_id": "U0LAN0Z89", "is_bot": true }]
    })
}

/// A JSON body with the id, event and timestamp at the paths the source names.
fn form_sample(id: &str, event: &str, pairs: &[(&str, &str)]) -> Sample {
    let mut form = String::new();
    for (name, value) in pairs {
        if !form.is_empty() {
            form.push('&');
        }
        form.push_str(&format!("{}={}", encode(name), encode(value)));
    }
    Sample {
        id: id.to_owned(),
        event: event.to_owned(),
        body: form.into_bytes(),
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn generic(spec: &HmacSpec, id: &str, event: &str, unix: u64) -> Value {
    let mut body = json!({ "data": { "object": "sample", "amount": 4200 } });
    // `a+b` paths join several fields; the first carries the id.
    if let Some(path) = spec.id_json.as_deref().and_then(|p| p.split('+').next()) {
        set_path(&mut body, path, json!(id));
    }
    if let Some(path) = &spec.event_json {
        set_path(&mut body, path, json!(event));
    }
    if let Some(path) = &spec.timestamp_json {
        let value = match spec.timestamp_unit {
            TimestampUnit::Millis => unix.saturating_mul(1000),
            _ => unix,
        };
        set_path(&mut body, path, json!(value));
    }
    body
}

/// Sets the value at a dot-separated path, creating objects on the way.
fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut current = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !current.is_object() {
            *current = json!({});
        }
        let Some(map) = current.as_object_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return;
        }
        current = map.entry((*part).to_owned()).or_insert_with(|| json!({}));
    }
}

/// Random lower-case alphanumerics (not for secrets: ids of samples).
pub fn token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut value = random_u64();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[(value % 36) as usize]));
            value /= 36;
        }
    }
    out
}

/// A random version-4-shaped UUID.
pub fn uuid() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_carry_id_and_event_where_the_provider_does() {
        let now = SystemTime::now();
        let stripe = sample(&ProviderSpec::Stripe, "evt_1", "invoice.paid", now);
        let body: Value = serde_json::from_slice(&stripe.body).unwrap();
        assert_eq!(body["id"], "evt_1");
        assert_eq!(body["type"], "invoice.paid");
        let slack = sample(&ProviderSpec::Slack, "Ev1", "app_mention", now);
        let body: Value = serde_json::from_slice(&slack.body).unwrap();
        assert_eq!(body["event_id"], "Ev1");
        assert_eq!(body["event"]["type"], "app_mention");
        assert!(new_id(&ProviderSpec::Github).starts_with("424242:"));
        assert_ne!(uuid(), uuid());
        assert_eq!(token(30).len(), 30);
        let mut value = json!({});
        set_path(&mut value, "a.b.c", json!(1));
        assert_eq!(value, json!({"a": {"b": {"c": 1}}}));
    }
}
