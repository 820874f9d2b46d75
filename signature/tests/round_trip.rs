//! Sign as the provider would, verify as ingest does: every provider round-trips,
//! and each kind of tampering fails with the rejection an operator expects.

mod support;

use hookline_signature::{Rejection, Verified};
use http::HeaderName;

use support::{LINEAR, PADDLE, PAGERDUTY, ZOOM, at, builtin, signed_headers, source, verify};

const T: u64 = 1_760_000_000;

struct Provider {
    name: &'static str,
    toml: String,
    secrets: [&'static str; 3],
    /// The body as delivered at unix time `t` (Linear signs its timestamp in the body).
    body: fn(u64) -> Vec<u8>,
    id: &'static str,
    event: &'static str,
    verified: Verified,
    signature_header: &'static str,
    /// Replay window, and whether timestamps ahead of `now` are refused too.
    window: Option<(u64, bool)>,
}

fn verified(id: Option<&str>, event: Option<&str>) -> Verified {
    Verified {
        id: id.map(str::to_owned),
        event: event.map(str::to_owned),
    }
}

fn providers() -> Vec<Provider> {
    vec![
        Provider {
            name: "github",
            toml: builtin("github"),
            secrets: ["gh-one", "gh-two", "gh-three"],
            body: |_| br#"{"zen":"Design for failure."}"#.to_vec(),
            id: "292430182:72d3162e-cc78-11e3-81ab-4c9367dc0958",
            event: "push",
            verified: verified(
                Some("292430182:72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                Some("push"),
            ),
            signature_header: "x-hub-signature-256",
            window: None,
        },
        Provider {
            name: "stripe",
            toml: builtin("stripe"),
            secrets: ["whsec_one", "whsec_two", "whsec_three"],
            body: |_| br#"{"id":"evt_1","type":"invoice.paid"}"#.to_vec(),
            id: "ignored",
            event: "ignored",
            verified: verified(Some("evt_1"), Some("invoice.paid")),
            signature_header: "stripe-signature",
            window: Some((300, false)),
        },
        Provider {
            name: "standard-webhooks",
            toml: builtin("standard-webhooks"),
            secrets: [
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "whsec_orYMId7FPcFdNXy4oKzjodz9WCDHj4hOBrluq+eRiKA=",
                "whsec_1aZI1sUany4l+JgUQk8SGvo0FQo1wQSF32g2RXLnVW8=",
            ],
            body: |_| {
                r#"{"type":"invoice.paid","data":{"customer":"Jürgen"}}"#
                    .as_bytes()
                    .to_vec()
            },
            id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            event: "ignored",
            verified: verified(
                Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
                Some("invoice.paid"),
            ),
            signature_header: "webhook-signature",
            window: Some((300, true)),
        },
        Provider {
            name: "shopify",
            toml: builtin("shopify"),
            secrets: ["shpss_one", "shpss_two", "shpss_three"],
            body: |_| br#"{"id":820982911946154508}"#.to_vec(),
            id: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            event: "orders/create",
            verified: verified(
                Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
                Some("orders/create"),
            ),
            signature_header: "x-shopify-hmac-sha256",
            window: None,
        },
        Provider {
            name: "slack",
            toml: builtin("slack"),
            secrets: ["slack-one", "slack-two", "slack-three"],
            body: |_| {
                br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}"#
                    .to_vec()
            },
            id: "ignored",
            event: "ignored",
            verified: verified(Some("Ev1"), Some("app_mention")),
            signature_header: "x-slack-signature",
            window: Some((300, true)),
        },
        Provider {
            name: "linear",
            toml: LINEAR.to_owned(),
            secrets: ["lin_wh_one", "lin_wh_two", "lin_wh_three"],
            body: |t| {
                format!(
                    r#"{{"type":"Issue","action":"create","webhookTimestamp":{}}}"#,
                    t * 1000
                )
                .into_bytes()
            },
            id: "234d1a4e-b617-4388-90fe-adc3633d6b72",
            event: "Issue",
            verified: verified(Some("234d1a4e-b617-4388-90fe-adc3633d6b72"), Some("Issue")),
            signature_header: "linear-signature",
            window: Some((60, true)),
        },
        Provider {
            name: "paddle",
            toml: PADDLE.to_owned(),
            secrets: ["pdl_ntfset_one", "pdl_ntfset_two", "pdl_ntfset_three"],
            body: |_| br#"{"event_id":"evt_01h8","event_type":"subscription.created"}"#.to_vec(),
            id: "ignored",
            event: "ignored",
            verified: verified(Some("evt_01h8"), Some("subscription.created")),
            signature_header: "paddle-signature",
            window: Some((5, false)),
        },
        Provider {
            name: "pagerduty",
            toml: PAGERDUTY.to_owned(),
            secrets: ["pd-one", "pd-two", "pd-three"],
            body: |_| br#"{"event":{"event_type":"incident.triggered"}}"#.to_vec(),
            id: "7ab0c1c2-3f5e-4b0a-9f1e-0d6c2a9b8e71",
            event: "ignored",
            verified: verified(
                Some("7ab0c1c2-3f5e-4b0a-9f1e-0d6c2a9b8e71"),
                Some("incident.triggered"),
            ),
            signature_header: "x-pagerduty-signature",
            window: None,
        },
        Provider {
            name: "zoom",
            toml: ZOOM.to_owned(),
            secrets: ["zoom-one", "zoom-two", "zoom-three"],
            body: |_| br#"{"event":"meeting.started","payload":{}}"#.to_vec(),
            id: "ignored",
            event: "ignored",
            verified: verified(None, Some("meeting.started")),
            signature_header: "x-zm-signature",
            window: Some((300, true)),
        },
    ]
}

#[test]
fn signed_deliveries_verify_and_yield_id_and_event() {
    for p in providers() {
        let source = source(&p.toml);
        let verifier = source.verifier(&[p.secrets[0].as_bytes()]);
        let body = (p.body)(T);
        let headers = signed_headers(
            source
                .signer(p.secrets[0].as_bytes())
                .sign(&body, p.id, p.event, T),
        );
        assert_eq!(
            verify(&verifier, &headers, &body, at(T)),
            Ok(p.verified),
            "{}",
            p.name
        );
    }
}

#[test]
fn a_flipped_body_byte_is_an_invalid_signature() {
    for p in providers() {
        let source = source(&p.toml);
        let verifier = source.verifier(&[p.secrets[0].as_bytes()]);
        let body = (p.body)(T);
        let headers = signed_headers(
            source
                .signer(p.secrets[0].as_bytes())
                .sign(&body, p.id, p.event, T),
        );
        for index in [0, body.len() / 2, body.len() - 1] {
            let mut tampered = body.clone();
            tampered[index] ^= 0x01;
            assert_eq!(
                verify(&verifier, &headers, &tampered, at(T)),
                Err(Rejection::InvalidSignature),
                "{} byte {index}",
                p.name
            );
        }
    }
}

#[test]
fn another_secret_is_an_invalid_signature() {
    for p in providers() {
        let source = source(&p.toml);
        let verifier = source.verifier(&[p.secrets[0].as_bytes()]);
        let body = (p.body)(T);
        let headers = signed_headers(
            source
                .signer(p.secrets[2].as_bytes())
                .sign(&body, p.id, p.event, T),
        );
        assert_eq!(
            verify(&verifier, &headers, &body, at(T)),
            Err(Rejection::InvalidSignature),
            "{}",
            p.name
        );
    }
}

#[test]
fn rotation_accepts_either_configured_secret() {
    for p in providers() {
        let source = source(&p.toml);
        let verifier = source.verifier(&[p.secrets[0].as_bytes(), p.secrets[1].as_bytes()]);
        let body = (p.body)(T);
        for (secret, accepted) in [
            (p.secrets[0], true),
            (p.secrets[1], true),
            (p.secrets[2], false),
        ] {
            let headers = signed_headers(
                source
                    .signer(secret.as_bytes())
                    .sign(&body, p.id, p.event, T),
            );
            let outcome = verify(&verifier, &headers, &body, at(T));
            assert_eq!(
                outcome.is_ok(),
                accepted,
                "{} signed with {secret}: {outcome:?}",
                p.name
            );
        }
    }
}

#[test]
fn timestamps_outside_the_window_are_refused_at_its_edges() {
    for p in providers() {
        let source = source(&p.toml);
        let verifier = source.verifier(&[p.secrets[0].as_bytes()]);
        let body = (p.body)(T);
        let headers = signed_headers(
            source
                .signer(p.secrets[0].as_bytes())
                .sign(&body, p.id, p.event, T),
        );
        let check = |now: u64| verify(&verifier, &headers, &body, at(now));
        match p.window {
            Some((tolerance, reject_future)) => {
                assert!(
                    check(T + tolerance).is_ok(),
                    "{}: age == tolerance passes",
                    p.name
                );
                assert_eq!(
                    check(T + tolerance + 1),
                    Err(Rejection::StaleTimestamp),
                    "{}",
                    p.name
                );
                assert!(
                    check(T - tolerance).is_ok(),
                    "{}: lead == tolerance passes",
                    p.name
                );
                let ahead = check(T - tolerance - 1);
                if reject_future {
                    assert_eq!(ahead, Err(Rejection::FutureTimestamp), "{}", p.name);
                } else {
                    assert!(ahead.is_ok(), "{}: only the age is checked", p.name);
                }
            }
            None => {
                assert!(
                    check(0).is_ok(),
                    "{}: no timestamp, any time verifies",
                    p.name
                );
                assert!(check(T * 2).is_ok(), "{}", p.name);
            }
        }
    }
}

#[test]
fn a_configured_tolerance_replaces_the_default() {
    let source = source(&format!("{}tolerance = \"10s\"\n", builtin("stripe")));
    let verifier = source.verifier(&[b"whsec_x"]);
    let body = br#"{"id":"evt_1"}"#;
    let headers = signed_headers(source.signer(b"whsec_x").sign(body, "", "", T));
    assert!(verify(&verifier, &headers, body, at(T + 10)).is_ok());
    assert_eq!(
        verify(&verifier, &headers, body, at(T + 11)),
        Err(Rejection::StaleTimestamp)
    );
}

#[test]
fn only_signature_headers_are_secret() {
    for p in providers() {
        let source = source(&p.toml);
        let verifier = source.verifier(&[p.secrets[0].as_bytes()]);
        let body = (p.body)(T);
        let signed = source
            .signer(p.secrets[0].as_bytes())
            .sign(&body, p.id, p.event, T);
        assert!(
            signed.iter().any(|(name, _)| name == p.signature_header),
            "{}: signer writes {}",
            p.name,
            p.signature_header
        );
        for (name, _) in &signed {
            assert_eq!(
                verifier.is_secret_header(name),
                name == p.signature_header,
                "{}: {name}",
                p.name
            );
        }
        assert!(!verifier.is_secret_header(&HeaderName::from_static("content-type")));
    }
}

#[test]
fn svix_headers_verify_and_win_over_webhook_headers() {
    let secret = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let source = source(&builtin("standard-webhooks"));
    let verifier = source.verifier(&[secret]);
    let body = br#"{"type":"a"}"#;
    let signed = source.signer(secret).sign(body, "msg_svix", "", T);
    let svix: Vec<(HeaderName, String)> = signed
        .iter()
        .map(|(name, value)| {
            let renamed = name.as_str().replace("webhook-", "svix-");
            (
                HeaderName::from_bytes(renamed.as_bytes()).unwrap(),
                value.clone(),
            )
        })
        .collect();
    let mut headers = signed_headers(svix);
    assert_eq!(
        verify(&verifier, &headers, body, at(T))
            .unwrap()
            .id
            .as_deref(),
        Some("msg_svix")
    );
    // Garbage under webhook-* does not matter while svix-* is complete.
    for (name, value) in [
        ("webhook-id", "other"),
        ("webhook-timestamp", "1"),
        ("webhook-signature", "v1,AAAA"),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    assert!(verify(&verifier, &headers, body, at(T)).is_ok());
    // And a broken svix-* set is not rescued by a valid webhook-* one.
    let mut both = signed_headers(signed);
    both.insert("svix-signature", "v1,AAAA".parse().unwrap());
    both.insert("svix-id", "msg_svix".parse().unwrap());
    both.insert("svix-timestamp", T.to_string().parse().unwrap());
    assert_eq!(
        verify(&verifier, &both, body, at(T)),
        Err(Rejection::MalformedSignature)
    );
    assert!(verifier.is_secret_header(&HeaderName::from_static("svix-signature")));
}

#[test]
fn shopify_events_style_names_verify() {
    let source = source(&builtin("shopify"));
    let verifier = source.verifier(&[b"shpss_x"]);
    let body = br#"{"id":1}"#;
    let renamed: Vec<(HeaderName, String)> = source
        .signer(b"shpss_x")
        .sign(body, "wh-1", "orders/create", T)
        .into_iter()
        .map(|(name, value)| {
            let renamed = name.as_str().trim_start_matches("x-").to_owned();
            (HeaderName::from_bytes(renamed.as_bytes()).unwrap(), value)
        })
        .collect();
    let headers = signed_headers(renamed);
    assert_eq!(
        verify(&verifier, &headers, body, at(T)),
        Ok(verified(Some("wh-1"), Some("orders/create")))
    );
    assert!(verifier.is_secret_header(&HeaderName::from_static("shopify-hmac-sha256")));
}

#[test]
fn shopify_requires_its_delivery_headers() {
    let source = source(&builtin("shopify"));
    let verifier = source.verifier(&[b"shpss_x"]);
    let body = br#"{"id":1}"#;
    for missing in [
        "x-shopify-topic",
        "x-shopify-shop-domain",
        "x-shopify-api-version",
        "x-shopify-webhook-id",
    ] {
        let mut headers = signed_headers(source.signer(b"shpss_x").sign(
            body,
            "wh-1",
            "orders/create",
            T,
        ));
        headers.remove(missing);
        assert_eq!(
            verify(&verifier, &headers, body, at(T)),
            Err(Rejection::MissingHeader(HeaderName::from_static(missing))),
        );
    }
}

#[test]
fn github_without_hook_id_uses_the_delivery_alone() {
    let source = source(&builtin("github"));
    let verifier = source.verifier(&[b"s"]);
    let headers = signed_headers(source.signer(b"s").sign(b"{}", "delivery-guid", "ping", T));
    assert_eq!(
        verify(&verifier, &headers, b"{}", at(T)),
        Ok(verified(Some("delivery-guid"), Some("ping")))
    );
}

#[test]
fn slack_form_bodies_have_no_id() {
    let source = source(&builtin("slack"));
    let verifier = source.verifier(&[b"s"]);
    let body = b"token=x&command=%2Fdeploy&text=now";
    let headers = signed_headers(source.signer(b"s").sign(body, "", "", T));
    assert_eq!(
        verify(&verifier, &headers, body, at(T)),
        Ok(Verified::default())
    );
}

#[test]
fn linear_body_timestamp_is_required_and_checked_after_the_signature() {
    let source = source(LINEAR);
    let verifier = source.verifier(&[b"lin"]);
    let signer = source.signer(b"lin");
    for (body, rejection) in [
        (&br#"{"type":"Issue"}"#[..], Rejection::MissingTimestamp),
        (
            br#"{"webhookTimestamp":"soon"}"#,
            Rejection::MalformedTimestamp,
        ),
        (br#"{"webhookTimestamp":-5}"#, Rejection::MalformedTimestamp),
        (b"not json", Rejection::MissingTimestamp),
    ] {
        let headers = signed_headers(signer.sign(body, "d", "Issue", T));
        assert_eq!(verify(&verifier, &headers, body, at(T)), Err(rejection));
    }
    // Within the window, as milliseconds.
    let body = format!(r#"{{"webhookTimestamp":{}}}"#, T * 1000 - 59_999);
    let headers = signed_headers(signer.sign(body.as_bytes(), "d", "Issue", T));
    assert!(verify(&verifier, &headers, body.as_bytes(), at(T)).is_ok());
}

#[test]
fn paddle_accepts_any_of_several_h1() {
    let source = source(PADDLE);
    let verifier = source.verifier(&[b"new"]);
    let body = br#"{"event_id":"e"}"#;
    let old = source.signer(b"old").sign(body, "", "", T);
    let new = source.signer(b"new").sign(body, "", "", T);
    let h1 = |pairs: &[(HeaderName, String)]| pairs[0].1.split(";h1=").nth(1).unwrap().to_owned();
    let value = format!("ts={T};h1={};h1={}", h1(&old), h1(&new));
    let headers = support::header_map([("paddle-signature", value.as_str())]);
    assert!(verify(&verifier, &headers, body, at(T)).is_ok());
    let no_ts = format!("h1={}", h1(&new));
    let headers = support::header_map([("paddle-signature", no_ts.as_str())]);
    assert_eq!(
        verify(&verifier, &headers, body, at(T)),
        Err(Rejection::MissingTimestamp)
    );
}
