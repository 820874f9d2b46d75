//! Every preset of the catalogue: signed by its [`Signer`] exactly as the
//! provider would, then verified by its [`Verifier`]; and the handshakes that
//! have no vector in the shipped files.

// Helpers outside #[test] functions panic on broken fixtures, as tests should.
#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine as _;
use hookline_signature::{
    Credentials, Family, Outcome, ProviderSpec, Request, SignRequest, Signer, Verifier, providers,
    test_key_pair,
};
use support::{at, signed_headers};

const NOW: u64 = 1_760_000_000;
const URL: &str = "https://hooks.example.com/webhooks/source?tenant=1";

/// The secret a source of `name` would be configured with (the signer's side
/// for asymmetric providers is the private key of a test pair).
fn secrets(spec: &ProviderSpec) -> (String, String) {
    if let Some(pair) = test_key_pair(spec, b"presets").unwrap() {
        return (pair.private, pair.public);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef0123456789abcdef");
    let secret = match spec.scheme() {
        "standard-webhooks" | "svix" => format!("whsec_{b64}"),
        "supabase" => format!("v1,whsec_{b64}"),
        "airtable" => b64,
        "adyen" => "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056".to_owned(),
        "postmark" => "user:pa55word".to_owned(),
        _ => "preset-test-secret-0123456789".to_owned(),
    };
    (secret.clone(), secret)
}

fn body_for(name: &str) -> Vec<u8> {
    match name {
        "twilio" => b"MessageSid=SM1&MessageStatus=delivered&Body=h%C3%A9llo+there".to_vec(),
        "mandrill" => {
            b"mandrill_events=%5B%7B%22_id%22%3A%22m1%22%2C%22event%22%3A%22send%22%7D%5D".to_vec()
        }
        "braintree" => Vec::new(),
        _ => r#"{"id":"evt_1","type":"thing.happened","note":"héllo"}"#
            .as_bytes()
            .to_vec(),
    }
}

#[test]
fn every_preset_round_trips_and_rejects_a_tampered_body() {
    let mut checked = 0;
    for provider in providers() {
        let spec: ProviderSpec = provider.name.parse().unwrap();
        let (signing, configured) = secrets(&spec);
        let public_key = provider.uses_public_key().then_some("preset_public_key");
        let signer = Signer::with_credentials(
            &spec,
            &Credentials {
                secrets: &[signing.as_bytes()],
                public_key,
                ..Credentials::default()
            },
        )
        .unwrap_or_else(|e| panic!("{}: signer: {e}", provider.name));
        let verifier = Verifier::with_credentials(
            &spec,
            &Credentials {
                secrets: &[configured.as_bytes()],
                public_key,
                ..Credentials::default()
            },
            None,
        )
        .unwrap_or_else(|e| panic!("{}: verifier: {e}", provider.name));
        let body = body_for(provider.name);
        let signed = signer.sign_request(&SignRequest {
            body: &body,
            id: "delivery-1",
            event: "thing.happened",
            timestamp: NOW,
            url: URL,
            method: "POST",
        });
        let headers = signed_headers(signed.headers.clone());
        let request = Request::new(&headers, &signed.body).with_url(&signed.url);
        let outcome = verifier.verify(&request, at(NOW));
        assert!(
            outcome.is_ok(),
            "{}: {outcome:?} for {:?}",
            provider.name,
            signed.headers
        );

        // Schemes whose MAC covers the whole body refuse a changed byte.
        let covers_body = !matches!(provider.family, Family::Token | Family::BodySigned)
            && !signed.body.is_empty();
        if covers_body {
            let mut tampered = signed.body.clone();
            let last = tampered.len() - 2;
            tampered[last] ^= 0x01;
            let request = Request::new(&headers, &tampered).with_url(&signed.url);
            assert!(
                verifier.verify(&request, at(NOW)).is_err(),
                "{}: a tampered body verified",
                provider.name
            );
        }
        // The signature headers are secret: never stored.
        for (name, _) in &signed.headers {
            let lower = name.as_str();
            if lower.contains("signature")
                && !lower.contains("timestamp")
                && !lower.contains("version")
                && !lower.contains("algorithm")
                && !lower.contains("signed-headers")
            {
                assert!(
                    verifier.is_secret_header(name),
                    "{}: {name} is not secret",
                    provider.name
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 54, "{checked} presets");
}

fn receive(name: &str, secret: &str, headers: &[(&str, &str)], body: &[u8]) -> Outcome {
    let spec: ProviderSpec = name.parse().unwrap();
    let verifier = Verifier::new(&spec, &[secret.as_bytes()], None).unwrap();
    let headers = support::header_map(headers.iter().copied());
    verifier
        .receive(&Request::new(&headers, body), at(NOW))
        .unwrap_or_else(|rejection| panic!("{name}: {rejection:?}"))
}

/// Signs `body` as `name` would and returns the headers.
fn signed(name: &str, secret: &str, body: &[u8]) -> Vec<(String, String)> {
    let spec: ProviderSpec = name.parse().unwrap();
    Signer::new(&spec, secret.as_bytes())
        .unwrap()
        .sign(body, "id-1", "event", NOW)
        .into_iter()
        .map(|(n, v)| (n.as_str().to_owned(), v))
        .collect()
}

fn respond(outcome: Outcome) -> hookline_signature::Response {
    match outcome {
        Outcome::Respond(response) => response,
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn zoom_url_validation_is_answered_only_when_signed() {
    let body =
        br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event":"endpoint.url_validation"}"#;
    let headers = signed("zoom", "zoom-secret", body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let response = respond(receive("zoom", "zoom-secret", &pairs, body));
    assert_eq!(response.status, 200);
    assert!(
        response
            .body
            .starts_with(br#"{"plainToken":"qgg8vlvZRS6UYooatFL8Aw","encryptedToken":""#)
    );
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    // hex HMAC-SHA256(secret, plainToken), computed independently.
    let expected = {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"zoom-secret").unwrap();
        mac.update(b"qgg8vlvZRS6UYooatFL8Aw");
        hex::encode(mac.finalize().into_bytes())
    };
    assert_eq!(json["encryptedToken"], expected.as_str());
    // Unsigned: rejected, not answered.
    let spec: ProviderSpec = "zoom".parse().unwrap();
    let verifier = Verifier::new(&spec, &[b"zoom-secret"], None).unwrap();
    let empty = http::HeaderMap::new();
    assert!(
        verifier
            .receive(&Request::new(&empty, body), at(NOW))
            .is_err()
    );
    // Never an oracle for a Zoom signature input.
    let body = br#"{"payload":{"plainToken":"v0:1:{}"},"event":"endpoint.url_validation"}"#;
    let headers = signed("zoom", "zoom-secret", body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        respond(receive("zoom", "zoom-secret", &pairs, body)).status,
        400
    );
}

#[test]
fn signed_pings_are_answered_not_delivered() {
    let pair = test_key_pair(&"discord".parse().unwrap(), b"ping")
        .unwrap()
        .unwrap();
    let body = br#"{"id":"1","type":1}"#;
    let headers = signed("discord", &pair.private, body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let response = respond(receive("discord", &pair.public, &pairs, body));
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &br#"{"type":1}"#[..])
    );

    let body = br#"{"type":"notification_event","topic":"ping","id":"notif_1"}"#;
    let headers = signed("intercom", "s", body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(respond(receive("intercom", "s", &pairs, body)).status, 200);

    let body = br#"{"action":"created","data":{}}"#;
    let mut headers = signed("sentry", "s", body);
    for (name, value) in &mut headers {
        if name == "sentry-hook-resource" {
            *value = "installation".into();
        }
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(respond(receive("sentry", "s", &pairs, body)).status, 200);

    let body = br#"{"type":"url_verification","challenge":"abc"}"#;
    let headers = signed("slack", "s", body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        respond(receive("slack", "s", &pairs, body)).body,
        br#"{"challenge":"abc"}"#
    );
}

#[test]
fn adyen_deliveries_are_answered_accepted() {
    let spec: ProviderSpec = "adyen".parse().unwrap();
    let verifier = Verifier::new(&spec, &[b"00ff"], None).unwrap();
    let accepted = verifier.accepted_response().unwrap();
    assert_eq!(
        (accepted.status, accepted.body.as_slice()),
        (200, &b"[accepted]"[..])
    );
    let github = Verifier::new(&ProviderSpec::Github, &[b"s"], None).unwrap();
    assert!(github.accepted_response().is_none());
    assert_eq!(github.rejection_response(), None);
    let figma = Verifier::new(&"figma".parse().unwrap(), &[b"p"], None).unwrap();
    assert_eq!(figma.rejection_response().map(|r| r.status), Some(400));
}

#[test]
fn captured_secrets_never_show_in_debug() {
    let headers = [("x-hook-secret", "very-secret-value")];
    let outcome = receive("asana", "placeholder", &headers, b"");
    assert!(
        matches!(outcome, Outcome::Capture { ref secret, .. } if secret == "very-secret-value")
    );
    assert!(!format!("{outcome:?}").contains("very-secret-value"));
}

#[test]
fn the_catalogue_lists_every_vector_provider_with_its_setup() {
    let names: Vec<&str> = providers().iter().map(|p| p.name).collect();
    assert!(names.len() >= 54);
    for provider in providers() {
        let spec: ProviderSpec = provider.name.parse().unwrap();
        // `svix` is Standard Webhooks under other header names.
        let expected = if provider.name == "svix" {
            "standard-webhooks"
        } else {
            provider.name
        };
        assert_eq!(spec.provider().map(|p| p.name), Some(expected));
        assert_eq!(
            spec.default_tolerance(),
            provider.replay_window,
            "{}",
            provider.name
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// No preset panics on hostile input: random bodies, URLs and values in
    /// every header any preset reads, on every method.
    #[test]
    fn no_preset_panics_on_hostile_requests(
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
        value in "[ -~]{0,120}",
        url in "\\PC{0,80}",
        method in proptest::sample::select(vec!["POST", "GET", "HEAD"]),
    ) {
        let names = [
            "x-hub-signature", "x-hub-signature-256", "webhook-signature", "webhook-id",
            "webhook-timestamp", "x-twilio-signature", "x-signature-ed25519", "x-signature-timestamp",
            "x-twilio-email-event-webhook-signature", "x-twilio-email-event-webhook-timestamp",
            "x-webhook-signature", "x-contentful-signature", "x-contentful-signed-headers",
            "x-contentful-timestamp", "hmacsignature", "x-mandrill-signature", "authorization",
            "box-signature-primary", "box-delivery-timestamp", "twitch-eventsub-message-timestamp",
            "x-hubspot-signature-v3", "x-hubspot-request-timestamp", "sanity-webhook-signature",
            "workos-signature", "x-hook-secret", "x-okta-verification-challenge", "x-docusign-signature-1",
        ];
        let mut headers = http::HeaderMap::new();
        for name in names {
            headers.insert(name, support::header_value(value.as_bytes()));
        }
        for provider in providers() {
            let spec: ProviderSpec = provider.name.parse().unwrap();
            let (_, configured) = secrets(&spec);
            let verifier = Verifier::with_credentials(
                &spec,
                &Credentials {
                    secrets: &[configured.as_bytes()],
                    public_key: Some("pk"),
                    verify_token: Some(b"vt"),
                },
                None,
            )
            .unwrap();
            let request = Request::new(&headers, &body).with_url(&url).with_method(method);
            let _ = verifier.receive(&request, at(NOW));
        }
    }
}
