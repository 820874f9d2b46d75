//! The providers' known-answer vectors (`signature/vectors/signatures.json` and
//! `signatures2.json`), every case checked through the named preset an operator
//! would configure, handshakes included. Cases with a `now` run at that instant.

mod support;

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use hookline_signature::{Credentials, Outcome, Request, Response, Verified, Verifier};
use serde::Deserialize;

use support::{LINEAR, PADDLE, PAGERDUTY, ZOOM, at, builtin, header_map, source};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/signatures.json");
const VECTORS2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/signatures2.json");

#[derive(Debug, Deserialize)]
struct ExpectResponse {
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    capture: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    provider: String,
    secret: String,
    #[serde(default)]
    secret_secondary: Option<String>,
    #[serde(default)]
    verify_token: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    method: Option<String>,
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_b64: Option<String>,
    #[serde(default)]
    now: Option<u64>,
    expect: String,
    #[serde(default)]
    expect_response: Option<ExpectResponse>,
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

    /// The source table an operator writes: the named preset.
    fn source_toml(&self) -> String {
        builtin(&self.provider)
    }
}

fn load_file(path: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| {
        panic!("cannot read the vectors at {path}: {error} (they are part of the repository)")
    });
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path} does not parse: {error}"))
}

fn load() -> Vec<Case> {
    let mut cases = load_file(VECTORS);
    cases.extend(load_file(VECTORS2));
    cases
}

fn verifier_for(case: &Case) -> Verifier {
    let source = source(&case.source_toml());
    let mut secrets: Vec<&[u8]> = vec![case.secret.as_bytes()];
    if let Some(secondary) = &case.secret_secondary {
        secrets.push(secondary.as_bytes());
    }
    let credentials = Credentials {
        secrets: &secrets,
        verify_token: case.verify_token.as_deref().map(str::as_bytes),
        public_key: case.public_key.as_deref(),
    };
    Verifier::with_credentials(&source.provider, &credentials, source.tolerance())
        .unwrap_or_else(|error| panic!("{}: {error}", case.id))
}

/// The case's time: `now` when given (timestamped schemes), else the wall clock
/// (untimestamped schemes verify at any time).
fn now_of(case: &Case) -> SystemTime {
    case.now.map_or_else(SystemTime::now, at)
}

fn receive(case: &Case) -> (Verifier, Result<Outcome, hookline_signature::Rejection>) {
    let verifier = verifier_for(case);
    let headers = header_map(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let body = case.body();
    let mut request =
        Request::new(&headers, &body).with_method(case.method.as_deref().unwrap_or("POST"));
    if let Some(url) = &case.url {
        request = request.with_url(url);
    }
    let outcome = verifier.receive(&request, now_of(case));
    (verifier, outcome)
}

/// The case through the signature check alone (handshakes treated as deliveries).
fn run(case: &Case) -> Option<Result<Verified, hookline_signature::Rejection>> {
    let verifier = verifier_for(case);
    let headers = header_map(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let body = case.body();
    let mut request = Request::new(&headers, &body);
    if let Some(url) = &case.url {
        request = request.with_url(url);
    }
    Some(verifier.verify(&request, now_of(case)))
}

/// Whether `response` is what the case expects, byte for byte where given.
fn response_matches(
    case: &Case,
    expected: &ExpectResponse,
    response: &Response,
) -> Result<(), String> {
    if response.status != expected.status {
        return Err(format!(
            "status {} (want {})",
            response.status, expected.status
        ));
    }
    for (name, value) in &expected.headers {
        let found = response
            .headers
            .iter()
            .find(|(have, _)| have.as_str().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str());
        if found != Some(value.as_str()) {
            return Err(format!("header {name}: {found:?} (want {value:?})"));
        }
    }
    if let Some(body) = &expected.body
        && response.body != body.as_bytes()
    {
        return Err(format!(
            "body {:?} (want {body:?})",
            String::from_utf8_lossy(&response.body)
        ));
    }
    let _ = case;
    Ok(())
}

/// Checks one case; `Err` says what went wrong.
fn check(case: &Case) -> Result<(), String> {
    let valid = match case.expect.as_str() {
        "valid" => true,
        "invalid" => false,
        other => panic!("{}: unknown expect {other:?}", case.id),
    };
    let (verifier, outcome) = receive(case);
    match (&case.expect_response, outcome) {
        (Some(expected), Ok(Outcome::Respond(response))) => {
            response_matches(case, expected, &response)?;
            if valid != (response.status < 400) {
                return Err(format!(
                    "answered {} for an {} case",
                    response.status, case.expect
                ));
            }
            if expected.capture.is_some() {
                return Err("answered without capturing".into());
            }
            Ok(())
        }
        (Some(expected), Ok(Outcome::Capture { secret, response })) => {
            response_matches(case, expected, &response)?;
            let wanted = match &expected.capture {
                Some(field) => {
                    let json: serde_json::Value =
                        serde_json::from_slice(&case.body()).map_err(|e| e.to_string())?;
                    json.get(field).and_then(|v| v.as_str()).map(str::to_owned)
                }
                // Asana echoes the secret header it hands over.
                None => expected.headers.values().next().cloned(),
            };
            if Some(&secret) != wanted.as_ref() {
                return Err("captured the wrong value".into());
            }
            if !valid {
                return Err("captured on an invalid case".into());
            }
            Ok(())
        }
        (Some(expected), Ok(Outcome::Deliver(verified))) => {
            // A stored delivery answered as the protocol needs (Adyen's
            // `[accepted]`), or with ingest's usual 200.
            if !valid {
                return Err(format!("delivered {verified:?} for an invalid case"));
            }
            match verifier.accepted_response() {
                Some(answer) => response_matches(case, expected, &answer),
                None if expected.status == 200
                    && expected.body.as_deref().is_none_or(str::is_empty)
                    && expected.headers.is_empty() =>
                {
                    Ok(())
                }
                None => Err(format!("delivered {verified:?}, expected an answer")),
            }
        }
        (Some(expected), Err(rejection)) => {
            if valid {
                return Err(format!("rejected: {rejection:?}"));
            }
            let answer = verifier
                .rejection_response()
                .unwrap_or(Response::empty(401));
            response_matches(case, expected, &answer)
        }
        (None, Ok(Outcome::Deliver(_))) if valid => Ok(()),
        // A signed handshake (Slack url_verification) is answered, not stored.
        (None, Ok(Outcome::Respond(response))) if valid && response.status < 400 => Ok(()),
        (None, Err(_)) if !valid => Ok(()),
        (None, other) => Err(format!("expected {}, got {other:?}", case.expect)),
    }
}

#[test]
fn every_vector_gets_its_verdict() {
    let cases = load();
    let mut failures = Vec::new();
    let mut providers = std::collections::BTreeSet::new();
    for case in &cases {
        providers.insert(case.provider.as_str());
        if let Err(problem) = check(case) {
            failures.push(format!(
                "{} ({}): {problem} — {}",
                case.id, case.provider, case.why
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vector(s) failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        cases.len() >= 200,
        "only {} cases: is a vector file truncated?",
        cases.len()
    );
    assert!(
        providers.len() >= 54,
        "only {} providers in the vectors",
        providers.len()
    );
    for provider in &providers {
        assert!(
            hookline_signature::provider(provider).is_some(),
            "vector provider {provider:?} has no preset"
        );
    }
    println!(
        "checked {} vectors over {} providers",
        cases.len(),
        providers.len()
    );
}

/// The declarative configurations documented for `provider = "hmac"` still give
/// the same verdicts as their presets.
#[test]
fn documented_hmac_configurations_agree_with_their_presets() {
    for case in load_file(VECTORS) {
        let toml = match case.provider.as_str() {
            "linear" => LINEAR,
            "paddle" => PADDLE,
            "pagerduty" => PAGERDUTY,
            "zoom" => ZOOM,
            _ => continue,
        };
        let source = source(toml);
        let verifier = source.verifier(&[case.secret.as_bytes()]);
        let headers = header_map(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let body = case.body();
        let outcome = verifier.verify(&Request::new(&headers, &body), now_of(&case));
        assert_eq!(
            outcome.is_ok(),
            case.expect == "valid",
            "{}: {outcome:?}",
            case.id
        );
    }
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
            .expect("a delivery")
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
        assert_eq!(run(case).expect("a delivery"), Err(rejection), "{id}");
    }
}
