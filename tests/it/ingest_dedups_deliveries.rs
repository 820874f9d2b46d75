//! A provider retrying one delivery five times leaves one stream message;
//! the retries are answered 200 with `duplicate: true`.

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};

#[tokio::test]
async fn five_deliveries_of_one_webhook_store_one_message() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let config = settings(
        &nats.url(),
        "[[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{ value = \"s3cret\" }]\n",
    )?;
    let spec = config.sources[0].provider.clone();
    let ingest = TestIngest::start(config).await?;
    let client = reqwest::Client::new();
    let body = br#"{"action":"opened","number":7}"#;
    let headers = signed_headers(&spec, "s3cret", body, "9:d1a3", "pull_request")?;

    let mut duplicates = Vec::new();
    for _ in 0..5 {
        let response = client
            .post(ingest.webhook_url("github"))
            .headers(headers.clone())
            .body(body.to_vec())
            .send()
            .await?;
        assert_eq!(response.status(), 200);
        let answer: serde_json::Value = response.json().await?;
        assert_eq!(answer["id"], "9:d1a3");
        duplicates.push(answer["duplicate"].as_bool().unwrap());
    }
    assert_eq!(duplicates, [false, true, true, true, true]);

    // A different delivery of the same event is a new webhook.
    let other = signed_headers(&spec, "s3cret", body, "9:d1a4", "pull_request")?;
    let response = client
        .post(ingest.webhook_url("github"))
        .headers(other)
        .body(body.to_vec())
        .send()
        .await?;
    let answer: serde_json::Value = response.json().await?;
    assert_eq!(answer["duplicate"], false);

    let js = async_nats::jetstream::new(nats.client().await?);
    assert_eq!(
        js.get_stream("WEBHOOKS")
            .await?
            .info()
            .await?
            .state
            .messages,
        2
    );
    ingest.stop().await
}
