//! Every provider end to end over HTTP: a correctly signed delivery is
//! answered 200 and lands in the stream; a tampered or wrongly keyed one is
//! answered 401 and leaves the stream unchanged.

use hookline_signature::ProviderSpec;
use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};

const SOURCES: &str = r#"
[stream]
name = "WEBHOOKS"

[[sources]]
name = "github"
provider = "github"
secrets = [{ value = "gh-secret" }]

[[sources]]
name = "stripe"
provider = "stripe"
secrets = [{ value = "whsec_stripe_secret" }]

[[sources]]
name = "svix"
provider = "standard-webhooks"
secrets = [{ value = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }]

[[sources]]
name = "shopify"
provider = "shopify"
secrets = [{ value = "shpss_secret" }]

[[sources]]
name = "slack"
provider = "slack"
secrets = [{ value = "8f742231b10e8888abcd99yyyzzz85a5" }]

[[sources]]
name = "zoom"
provider = "hmac"
secrets = [{ value = "zoom-secret" }]
header = "x-zm-signature"
encoding = "hex"
prefix = "v0="
timestamp_header = "x-zm-request-timestamp"
signed = "v0:{timestamp}:{body}"
event_json = "event"
"#;

struct Case {
    source: &'static str,
    body: &'static str,
    id: &'static str,
    event: &'static str,
    expected_subject: &'static str,
    expected_id: &'static str,
}

const CASES: &[Case] = &[
    Case {
        source: "github",
        body: r#"{"zen":"Keep it logically awesome."}"#,
        id: "292430182:72d3162e-cc78-11e3-81ab-4c9367dc0958",
        event: "ping",
        expected_subject: "webhooks.github.ping",
        expected_id: "292430182:72d3162e-cc78-11e3-81ab-4c9367dc0958",
    },
    Case {
        source: "stripe",
        body: r#"{"id":"evt_1","type":"invoice.paid","data":{}}"#,
        id: "",
        event: "",
        expected_subject: "webhooks.stripe.invoice_paid",
        expected_id: "evt_1",
    },
    Case {
        source: "svix",
        body: r#"{"type":"user.created","data":{"id":"u1"}}"#,
        id: "msg_abc",
        event: "",
        expected_subject: "webhooks.svix.user_created",
        expected_id: "msg_abc",
    },
    Case {
        source: "shopify",
        body: r#"{"id":820982911946154508}"#,
        id: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        event: "orders/create",
        expected_subject: "webhooks.shopify.orders/create",
        expected_id: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    },
    Case {
        source: "slack",
        body: r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}"#,
        id: "",
        event: "",
        expected_subject: "webhooks.slack.app_mention",
        expected_id: "Ev1",
    },
    Case {
        source: "zoom",
        body: r#"{"event":"meeting.started","payload":{}}"#,
        id: "",
        event: "",
        expected_subject: "webhooks.zoom.meeting_started",
        expected_id: "", // Zoom sends no id: the content hash is used
    },
];

fn spec(
    settings: &hookline_ingest::config::IngestSettings,
    source: &str,
) -> anyhow::Result<ProviderSpec> {
    settings
        .sources
        .iter()
        .find(|s| s.name == source)
        .map(|s| s.provider.clone())
        .ok_or_else(|| anyhow::anyhow!("source {source} not configured"))
}

#[tokio::test]
async fn signed_deliveries_are_persisted_and_forged_ones_rejected() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), SOURCES)?).await?;
    let client = reqwest::Client::new();
    let js = async_nats::jetstream::new(nats.client().await?);
    let secrets = [
        ("github", "gh-secret"),
        ("stripe", "whsec_stripe_secret"),
        ("svix", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("shopify", "shpss_secret"),
        ("slack", "8f742231b10e8888abcd99yyyzzz85a5"),
        ("zoom", "zoom-secret"),
    ];
    let mut expected_messages = 0;
    for case in CASES {
        let secret = secrets.iter().find(|(s, _)| *s == case.source).unwrap().1;
        let spec = spec(&ingest.settings, case.source)?;
        let body = case.body.as_bytes();

        // Forged: a valid signature for another body, and a signature made with another secret.
        let mut tampered = case.body.to_owned();
        tampered.push(' ');
        let headers = signed_headers(&spec, secret, tampered.as_bytes(), case.id, case.event)?;
        let response = client
            .post(ingest.webhook_url(case.source))
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await?;
        assert_eq!(
            response.status(),
            401,
            "{}: tampered body accepted",
            case.source
        );
        let answer: serde_json::Value = response.json().await?;
        assert_eq!(answer["error"], "unauthorized", "{}", case.source);
        let wrong_key = if case.source == "svix" {
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        } else {
            "wrong"
        };
        let headers = signed_headers(&spec, wrong_key, body, case.id, case.event)?;
        let response = client
            .post(ingest.webhook_url(case.source))
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await?;
        assert_eq!(
            response.status(),
            401,
            "{}: wrong secret accepted",
            case.source
        );
        let response = client
            .post(ingest.webhook_url(case.source))
            .body(body.to_vec())
            .send()
            .await?;
        assert_eq!(
            response.status(),
            401,
            "{}: unsigned request accepted",
            case.source
        );

        // Genuine.
        let headers = signed_headers(&spec, secret, body, case.id, case.event)?;
        let response = client
            .post(ingest.webhook_url(case.source))
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await?;
        assert_eq!(status, 200, "{}: {answer}", case.source);
        expected_messages += 1;
        assert_eq!(answer["duplicate"], false, "{}", case.source);
        let id = answer["id"].as_str().unwrap_or_default().to_owned();
        if case.expected_id.is_empty() {
            assert!(id.starts_with("sha256:"), "{}: {id}", case.source);
        } else {
            assert_eq!(id, case.expected_id, "{}", case.source);
        }
        let stream = js.get_stream("WEBHOOKS").await?;
        let message = stream
            .get_last_raw_message_by_subject(case.expected_subject)
            .await?;
        let headers = message.headers;
        assert_eq!(
            headers.get("Nats-Msg-Id").map(|v| v.to_string()),
            Some(format!("{}:{id}", case.source)),
            "{}",
            case.source
        );
        assert_eq!(
            headers
                .get("Hookline-Source")
                .map(|v| v.to_string())
                .as_deref(),
            Some(case.source)
        );
    }
    let mut stream = js.get_stream("WEBHOOKS").await?;
    assert_eq!(
        stream.info().await?.state.messages,
        expected_messages,
        "only genuine deliveries are stored"
    );
    ingest.stop().await
}

#[tokio::test]
async fn slack_url_verification_is_answered_not_published() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), SOURCES)?).await?;
    let spec = spec(&ingest.settings, "slack")?;
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let client = reqwest::Client::new();

    let forged = client
        .post(ingest.webhook_url("slack"))
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(
        forged.status(),
        401,
        "an unsigned handshake must not be answered"
    );

    let headers = signed_headers(&spec, "8f742231b10e8888abcd99yyyzzz85a5", body, "", "")?;
    let response = client
        .post(ingest.webhook_url("slack"))
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await?;
    assert_eq!(
        answer,
        serde_json::json!({ "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" })
    );

    let js = async_nats::jetstream::new(nats.client().await?);
    assert_eq!(
        js.get_stream("WEBHOOKS")
            .await?
            .info()
            .await?
            .state
            .messages,
        0
    );
    ingest.stop().await
}
