//! While NATS is away, ingest answers 503 with Retry-After quickly (never a
//! hang, never a 200); when NATS is back, ingest recovers by itself and
//! nothing it acknowledged was lost.

use std::time::{Duration, Instant};

use futures::StreamExt;

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};

#[tokio::test]
async fn outage_gives_503_then_recovers_without_loss() -> anyhow::Result<()> {
    let mut nats = NatsServer::start().await?;
    let config = settings(
        &nats.url(),
        "[ingest]\npublish_timeout = \"2s\"\nretry_after = \"7s\"\n\
         [[sources]]\nname = \"shop\"\nprovider = \"shopify\"\nsecrets = [{ value = \"k\" }]\n",
    )?;
    let spec = config.sources[0].provider.clone();
    let ingest = TestIngest::start(config).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let send = |id: String| {
        let body = format!(r#"{{"order":"{id}"}}"#).into_bytes();
        let headers = signed_headers(&spec, "k", &body, &id, "orders/create").unwrap();
        client
            .post(ingest.webhook_url("shop"))
            .headers(headers)
            .body(body)
            .send()
    };

    let mut acknowledged = Vec::new();
    for n in 0..20 {
        let id = format!("before-{n}");
        assert_eq!(send(id.clone()).await?.status(), 200);
        acknowledged.push(id);
    }
    assert_eq!(
        client.get(ingest.url("/readyz")).send().await?.status(),
        200
    );

    nats.stop().await?;
    let mut unavailable = 0;
    for n in 0..10 {
        let started = Instant::now();
        let response = send(format!("during-{n}")).await?;
        assert_eq!(
            response.status(),
            503,
            "answered {} while NATS is down",
            response.status()
        );
        assert_eq!(response.headers()["retry-after"], "7");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "503 took {:?}",
            started.elapsed()
        );
        unavailable += 1;
    }
    assert_eq!(unavailable, 10);
    assert_eq!(
        client.get(ingest.url("/readyz")).send().await?.status(),
        503
    );
    assert_eq!(
        client.get(ingest.url("/healthz")).send().await?.status(),
        200
    );

    nats.restart().await?;
    // Ingest reconnects by itself; keep offering one webhook until it is taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = send("after-0".to_owned()).await?;
        if response.status() == 200 {
            acknowledged.push("after-0".to_owned());
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(
            Instant::now() < deadline,
            "ingest did not recover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in 1..10 {
        let id = format!("after-{n}");
        assert_eq!(send(id.clone()).await?.status(), 200);
        acknowledged.push(id);
    }

    // Every acknowledged webhook is in the stream.
    let js = async_nats::jetstream::new(nats.client().await?);
    let stream = js.get_stream("WEBHOOKS").await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await?;
    let mut ids = std::collections::HashSet::new();
    let mut messages = consumer.fetch().max_messages(1000).messages().await?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string());
        ids.insert(id.unwrap_or_default());
    }
    for id in &acknowledged {
        assert!(
            ids.contains(&format!("shop:{id}")),
            "acknowledged {id} is missing"
        );
    }
    ingest.stop().await
}
