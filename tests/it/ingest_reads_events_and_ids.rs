//! Events and ids are never lost without a word (issue 12, finding 8).
//! An event header over 4 KiB used to become `unknown` silently: it is now
//! refused with 400 `event_too_long` (4 KiB itself is accepted). JSON
//! nested deeper than 128 anywhere in the body used to lose the body's id
//! and event (the whole parse failed): they are now read along their own
//! paths only, whatever the rest of the body holds.

use std::time::Duration;

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};
use serde_json::Value;

#[tokio::test]
async fn long_events_are_refused_and_deep_bodies_keep_id_and_event() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(
        &nats.url(),
        "[[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{ value = \"gh-events\" }]\n\
         [[sources]]\nname = \"stripe\"\nprovider = \"stripe\"\nsecrets = [{ value = \"whsec_events\" }]\n",
    )?)
    .await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let github: hookline_signature::ProviderSpec = "github".parse()?;
    let send_github = |event: String, id: &'static str| {
        let body = b"{\"zen\":\"events\"}".to_vec();
        let headers = signed_headers(&github, "gh-events", &body, id, &event);
        let request = client.post(ingest.webhook_url("github"));
        async move {
            let response = request.headers(headers?).body(body).send().await?;
            let status = response.status().as_u16();
            anyhow::Ok((status, response.json::<Value>().await?))
        }
    };
    let (status, json) = send_github("e".repeat(5000), "1:long-event").await?;
    assert_eq!(status, 400, "{json}");
    assert_eq!(json["error"], "event_too_long");
    let (status, json) = send_github("e".repeat(4096), "1:event-at-limit").await?;
    assert_eq!(status, 200, "{json}");

    // A Stripe event whose payload nests 200 deep.
    let stripe: hookline_signature::ProviderSpec = "stripe".parse()?;
    let body = format!(
        "{{\"id\":\"evt_deep\",\"type\":\"invoice.paid\",\"data\":{{\"object\":{}1{}}}}}",
        "[".repeat(200),
        "]".repeat(200)
    )
    .into_bytes();
    let headers = signed_headers(&stripe, "whsec_events", &body, "", "")?;
    let response = client
        .post(ingest.webhook_url("stripe"))
        .headers(headers)
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await?["id"], "evt_deep");
    let js = async_nats::jetstream::new(nats.client().await?);
    let stream = js.get_stream("WEBHOOKS").await?;
    let message = stream
        .get_last_raw_message_by_subject("webhooks.stripe.invoice_paid")
        .await?;
    assert!(
        message
            .headers
            .get("Nats-Msg-Id")
            .is_some_and(|id| id.as_str().contains("evt_deep")),
        "{:?}",
        message.headers
    );
    ingest.stop().await
}
