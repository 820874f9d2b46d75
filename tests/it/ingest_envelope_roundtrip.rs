//! The stream message decodes to an Envelope that carries the body byte
//! for byte, the provider's headers (never the signature), and a subject a
//! hostile event name cannot steer.

use hookline_proto::{Envelope, Message};
use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};

#[tokio::test]
async fn stream_message_decodes_to_the_exact_request() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let config = settings(
        &nats.url(),
        "[[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{ value = \"k\" }]\n",
    )?;
    let spec = config.sources[0].provider.clone();
    let ingest = TestIngest::start(config).await?;
    let client = reqwest::Client::new();
    let js = async_nats::jetstream::new(nats.client().await?);

    // Not UTF-8, not JSON: still carried unchanged.
    let body: Vec<u8> = (0..=255u8).chain([0xff, 0xfe, 0x00]).collect();
    let hostile_event = "push.>.*  $JS.API";
    let headers = signed_headers(&spec, "k", &body, "1:abc", hostile_event)?;
    let response = client
        .post(ingest.webhook_url("github"))
        .headers(headers)
        .header("content-type", "application/octet-stream")
        .header("authorization", "Bearer not-for-downstream")
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(response.status(), 200);

    let mut stream = js.get_stream("WEBHOOKS").await?;
    assert_eq!(stream.info().await?.state.messages, 1);
    let message = stream.direct_get(1).await?;
    assert_eq!(
        message.subject.as_str(),
        "webhooks.github.push______$JS_API"
    );
    assert_eq!(
        message
            .headers
            .get("Hookline-Event")
            .map(|v| v.to_string())
            .as_deref(),
        Some(hostile_event)
    );

    let envelope = Envelope::decode(message.payload)?;
    assert_eq!(envelope.body.as_ref(), body.as_slice());
    assert_eq!(envelope.id, "1:abc");
    assert_eq!(envelope.source, "github");
    assert_eq!(envelope.event, hostile_event);
    assert_eq!(envelope.scheme, "github");
    assert_eq!(envelope.content_type, "application/octet-stream");
    let received = envelope.received_at.expect("received_at set");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    assert!((now - received.seconds).abs() < 60);
    let names: Vec<&str> = envelope.headers.iter().map(|h| h.name.as_str()).collect();
    assert!(names.contains(&"x-github-delivery"), "{names:?}");
    assert!(names.contains(&"x-github-event"), "{names:?}");
    assert!(
        !names.contains(&"x-hub-signature-256"),
        "signature stored: {names:?}"
    );
    assert!(
        !names.contains(&"authorization"),
        "credentials stored: {names:?}"
    );
    ingest.stop().await
}
