//! Hostile input never panics and never verifies: random and adversarial header
//! values, bodies and clocks against every provider.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookline_signature::{Rejection, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use support::{
    LINEAR, PADDLE, PAGERDUTY, ZOOM, at, builtin, header_value, signed_headers, source, verify,
};

const T: u64 = 1_760_000_000;

/// Every provider's verifier with the headers it reads.
fn targets() -> Vec<(Verifier, Vec<&'static str>)> {
    let builtin_source = |name: &str| source(&builtin(name));
    vec![
        (
            builtin_source("github").verifier(&[b"s"]),
            vec!["x-hub-signature-256", "x-github-delivery"],
        ),
        (
            builtin_source("stripe").verifier(&[b"whsec_s"]),
            vec!["stripe-signature"],
        ),
        (
            builtin_source("standard-webhooks").verifier(&[b"whsec_c2VjcmV0"]),
            vec![
                "webhook-signature",
                "webhook-id",
                "webhook-timestamp",
                "svix-signature",
                "svix-id",
                "svix-timestamp",
            ],
        ),
        (
            builtin_source("shopify").verifier(&[b"s"]),
            vec![
                "x-shopify-hmac-sha256",
                "shopify-hmac-sha256",
                "x-shopify-topic",
            ],
        ),
        (
            builtin_source("slack").verifier(&[b"s"]),
            vec!["x-slack-signature", "x-slack-request-timestamp"],
        ),
        (
            source(LINEAR).verifier(&[b"s"]),
            vec!["linear-signature", "linear-delivery"],
        ),
        (source(PADDLE).verifier(&[b"s"]), vec!["paddle-signature"]),
        (
            source(PAGERDUTY).verifier(&[b"s"]),
            vec!["x-pagerduty-signature", "x-webhook-id"],
        ),
        (
            source(ZOOM).verifier(&[b"s"]),
            vec!["x-zm-signature", "x-zm-request-timestamp"],
        ),
    ]
}

/// Fragments that steer parsers into their interesting paths.
const FRAGMENTS: &[&str] = &[
    ",",
    ";",
    " ",
    "=",
    "t=",
    "ts=",
    "v0=",
    "v1=",
    "v1,",
    "v1a,",
    "h1=",
    "sha256=",
    "0",
    "f",
    "A",
    "+",
    "/",
    "==",
    "1760000000",
    "99999999999999999999999",
    "-1",
    "é",
    "\t",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
];

fn fragmented() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..200)
        .prop_map(|parts| parts.concat().into_bytes())
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..600)
}

fn clock() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(at(T)),
        (0u64..=(1 << 40)).prop_map(at),
        (0u64..=(1 << 40)).prop_map(|s| UNIX_EPOCH - Duration::from_secs(s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_headers_never_panic_and_never_verify(
        values in prop::collection::vec(prop_oneof![any_bytes(), fragmented()], 6),
        body in any_bytes(),
        now in clock(),
    ) {
        for (verifier, names) in targets() {
            let mut headers = HeaderMap::new();
            for (name, value) in names.iter().zip(&values) {
                headers.insert(HeaderName::from_static(name), header_value(value));
            }
            let outcome = verify(&verifier, &headers, &body, now);
            prop_assert!(outcome.is_err(), "{}: {outcome:?}", verifier.scheme());
            if let Err(rejection) = outcome {
                prop_assert!(!rejection.reason().is_empty());
            }
        }
    }

    /// A correctly signed delivery with hostile informational headers still
    /// verifies or is rejected cleanly, and never panics.
    #[test]
    fn hostile_id_and_event_headers_are_harmless(value in prop_oneof![any_bytes(), fragmented()], body in any_bytes()) {
        let github = source(&builtin("github"));
        let verifier = github.verifier(&[b"s"]);
        let mut headers = signed_headers(github.signer(b"s").sign(&body, "1:d", "push", T));
        headers.insert("x-github-delivery", header_value(&value));
        headers.insert("x-github-event", header_value(&value));
        prop_assert!(verify(&verifier, &headers, &body, at(T)).is_ok());
    }
}

#[test]
fn oversized_and_absurd_headers_are_rejected() {
    let huge = "a".repeat(1 << 20);
    let commas = ",".repeat(4000);
    let many_entries = "v1=00,".repeat(600);
    let absurd: &[(&str, &str, &str)] = &[
        ("x-hub-signature-256", "sha256=", &huge),
        ("stripe-signature", "", &commas),
        ("stripe-signature", "t=99999999999999999999999,v1=", "00"),
        ("x-pagerduty-signature", "", &many_entries),
        ("paddle-signature", "ts=18446744073709551616;h1=", "00"),
        ("x-slack-signature", "v0=", &huge),
    ];
    for (verifier, _) in targets() {
        for (name, prefix, rest) in absurd {
            let mut headers = HeaderMap::new();
            headers.insert(*name, header_value(format!("{prefix}{rest}").as_bytes()));
            headers.insert(
                "x-slack-request-timestamp",
                HeaderValue::from_static("99999999999999999999999"),
            );
            headers.insert(
                "x-zm-request-timestamp",
                HeaderValue::from_static("18446744073709551615"),
            );
            assert!(
                verify(&verifier, &headers, b"{}", at(T)).is_err(),
                "{}: {name}",
                verifier.scheme()
            );
        }
    }
}

#[test]
fn only_the_first_sixteen_candidates_are_checked() {
    let pagerduty = source(PAGERDUTY);
    let verifier = pagerduty.verifier(&[b"s"]);
    let body = br#"{"event":{"event_type":"x"}}"#;
    let valid = pagerduty.signer(b"s").sign(body, "id", "", T).remove(0).1;
    let garbage = format!("v1={},", "0".repeat(64));
    for (decoys, accepted) in [(15, true), (16, false)] {
        let value = format!("{}{valid}", garbage.repeat(decoys));
        let headers = support::header_map([("x-pagerduty-signature", value.as_str())]);
        let outcome = verify(&verifier, &headers, body, at(T));
        assert_eq!(outcome.is_ok(), accepted, "{decoys} decoys: {outcome:?}");
    }
}

#[test]
fn a_header_over_four_kib_is_malformed() {
    let stripe = source(&builtin("stripe"));
    let verifier = stripe.verifier(&[b"whsec_s"]);
    let body = br#"{"id":"evt"}"#;
    let valid = stripe.signer(b"whsec_s").sign(body, "", "", T).remove(0).1;
    let padded = format!("{valid},{}", "x".repeat(4096));
    let headers = support::header_map([("stripe-signature", padded.as_str())]);
    assert_eq!(
        verify(&verifier, &headers, body, at(T)),
        Err(Rejection::MalformedSignature)
    );
}

#[test]
fn non_utf8_signature_headers_are_malformed() {
    for (verifier, names) in targets() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(names[0]),
            header_value(&[0x76, 0x31, 0x3d, 0xff, 0xfe]),
        );
        let outcome = verify(&verifier, &headers, b"{}", at(T));
        assert!(outcome.is_err(), "{}", verifier.scheme());
    }
}
