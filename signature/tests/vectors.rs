//! The providers' known-answer vectors (`signature/vectors/signatures.json`),
//! each checked with the configuration an operator would write.

mod support;

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use hookline_signature::Verified;
use serde::Deserialize;

use support::{LINEAR, PADDLE, PAGERDUTY, ZOOM, at, builtin, header_map, source};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/signatures.json");

/// Providers whose schemes this crate does not implement yet.
const NOT_YET_SUPPORTED: &[&str] = &["twilio", "discord", "sendgrid", "mailgun", "square"];

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    provider: String,
    secret: String,
    #[serde(default)]
    url: Option<String>,
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_b64: Option<String>,
    #[serde(default)]
    now: Option<u64>,
    expect: String,
    why: String,
}

impl Case {
    fn body(&self) -> Vec<u8> {
        match (&self.body, &self.body_b64) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_else(|e| panic!("{}: body_b64: {e}", self.id)),
            (None, None) => panic!("{}: no body", self.id),
        }
    }

    /// The source table for this case's provider, `None` when not supported yet.
    fn source_toml(&self) -> Option<String> {
        Some(match self.provider.as_str() {
            "github" | "stripe" | "standard-webhooks" | "shopify" | "slack" => {
                builtin(&self.provider)
            }
            // Svix is Standard Webhooks under svix-* headers; the alias is accepted.
            "svix" => builtin("svix"),
            "linear" => LINEAR.to_owned(),
            "paddle" => PADDLE.to_owned(),
            "pagerduty" => PAGERDUTY.to_owned(),
            "zoom" => ZOOM.to_owned(),
            _ => return None,
        })
    }
}

fn load() -> Vec<Case> {
    let text = std::fs::read_to_string(VECTORS).unwrap_or_else(|error| {
        panic!("cannot read the vectors at {VECTORS}: {error} (they are part of the repository)")
    });
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{VECTORS} does not parse: {error}"))
}

fn run(case: &Case) -> Option<Result<Verified, hookline_signature::Rejection>> {
    let source = source(&case.source_toml()?);
    let verifier = source.verifier(&[case.secret.as_bytes()]);
    let headers = header_map(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let body = case.body();
    // Untimestamped schemes verify at any time; timestamped cases all carry `now`.
    let now = case.now.map_or_else(SystemTime::now, at);
    let request = hookline_signature::Request {
        headers: &headers,
        body: &body,
        url: case.url.as_deref(),
    };
    Some(verifier.verify(&request, now))
}

#[test]
fn every_supported_vector_gets_its_verdict() {
    let cases = load();
    let mut checked = 0;
    let mut skipped = BTreeMap::<&str, usize>::new();
    let mut failures = Vec::new();
    for case in &cases {
        let Some(outcome) = run(case) else {
            *skipped.entry(case.provider.as_str()).or_default() += 1;
            continue;
        };
        checked += 1;
        let valid = outcome.is_ok();
        let expected = match case.expect.as_str() {
            "valid" => true,
            "invalid" => false,
            other => panic!("{}: unknown expect {other:?}", case.id),
        };
        if valid != expected {
            failures.push(format!(
                "{} ({}): expected {}, got {outcome:?} — {}",
                case.id, case.provider, case.expect, case.why
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let supported = cases
        .iter()
        .filter(|case| !NOT_YET_SUPPORTED.contains(&case.provider.as_str()))
        .count();
    assert!(
        checked >= supported,
        "checked {checked} of {supported} supported cases"
    );
    assert!(
        checked >= 60,
        "only {checked} cases checked: is the vector file truncated?"
    );
    for provider in skipped.keys() {
        assert!(
            NOT_YET_SUPPORTED.contains(provider),
            "cases of provider {provider:?} were skipped but it is not listed as unsupported"
        );
    }
    println!("checked {checked} vectors; skipped (not yet supported): {skipped:?}");
}

/// After verification, the id and event come from where each provider puts them.
#[test]
fn valid_vectors_yield_the_provider_id_and_event() {
    let expected: &[(&str, Option<&str>, Option<&str>)] = &[
        (
            "github-01",
            Some("292430182:72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            Some("ping"),
        ),
        (
            "stripe-02",
            Some("evt_3QmZpL2eZvKYlo2C1x9Yq0Ab"),
            Some("payment_intent.succeeded"),
        ),
        (
            "standard-webhooks-03",
            Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
            Some("invoice.paid"),
        ),
        (
            "svix-01",
            Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
            Some("invoice.paid"),
        ),
        (
            "shopify-01",
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
            Some("orders/create"),
        ),
        (
            "shopify-04",
            Some("0f7a1c2e-55d4-4f0b-9c3e-1d2a3b4c5d6f"),
            Some("app/uninstalled"),
        ),
        ("slack-01", None, None),
        ("slack-03", Some("Ev0PV52K21"), Some("message")),
        ("slack-04", None, Some("url_verification")),
        (
            "linear-01",
            Some("234d1a4e-b617-4388-90fe-adc3633d6b72"),
            Some("Issue"),
        ),
        (
            "paddle-01",
            Some("evt_01h8bx8fmywym11t6bg8e9ctcm"),
            Some("subscription.created"),
        ),
        (
            "pagerduty-01",
            Some("7ab0c1c2-3f5e-4b0a-9f1e-0d6c2a9b8e71"),
            Some("incident.triggered"),
        ),
        ("zoom-01", None, Some("meeting.started")),
    ];
    let cases = load();
    for (id, want_id, want_event) in expected {
        let case = cases
            .iter()
            .find(|case| case.id == *id)
            .unwrap_or_else(|| panic!("vector {id} is gone"));
        let verified = run(case)
            .expect("supported")
            .unwrap_or_else(|rejection| panic!("{id}: {rejection:?}"));
        assert_eq!(verified.id.as_deref(), *want_id, "{id}: id");
        assert_eq!(verified.event.as_deref(), *want_event, "{id}: event");
    }
}

/// The rejections carry the reason an operator would look for.
#[test]
fn invalid_vectors_are_rejected_for_the_right_reason() {
    use hookline_signature::Rejection::*;
    let expected = [
        ("github-06", InvalidSignature),
        ("github-09", MalformedSignature),
        ("github-10", MalformedSignature),
        ("stripe-08", StaleTimestamp),
        ("stripe-10", MissingSignature),
        ("stripe-11", MissingTimestamp),
        ("stripe-15", InvalidSignature),
        (
            "standard-webhooks-12",
            MissingHeader(http::HeaderName::from_static("webhook-id")),
        ),
        ("standard-webhooks-13", MissingTimestamp),
        ("standard-webhooks-16", MalformedTimestamp),
        ("standard-webhooks-19", MalformedSignature),
        ("svix-03", StaleTimestamp),
        ("shopify-09", MalformedSignature),
        (
            "shopify-10",
            MissingHeader(http::HeaderName::from_static("x-shopify-topic")),
        ),
        ("slack-07", StaleTimestamp),
        ("slack-08", FutureTimestamp),
        ("slack-12", MalformedSignature),
        ("linear-02", StaleTimestamp),
        ("paddle-02", StaleTimestamp),
        ("pagerduty-03", InvalidSignature),
        ("zoom-02", InvalidSignature),
    ];
    let cases = load();
    for (id, rejection) in expected {
        let case = cases
            .iter()
            .find(|case| case.id == id)
            .expect("vector present");
        assert_eq!(run(case).expect("supported"), Err(rejection), "{id}");
    }
}
