//! The replay guard (issue 12, finding 5). GitHub signs only the body: a
//! captured delivery re-sent with a new `X-GitHub-Delivery` and another
//! `X-GitHub-Event` verifies forever. Without the guard it is stored as a
//! new webhook on another subject (the risk, shown on an unguarded source);
//! with `replay_guard = "24h"` it is answered 200 `"duplicate": true` with
//! the first delivery's id and nothing new is stored, while the provider's
//! own retry (same id and event) still goes through the usual dedup, and
//! other bodies are unaffected.

use std::time::Duration;

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};
use serde_json::Value;

const SECRET: &str = "replay-github-secret";

/// Messages stored on subjects matching `filter`.
async fn stored(js: &async_nats::jetstream::Context, filter: &str) -> anyhow::Result<u64> {
    use futures::StreamExt as _;
    let stream = js.get_stream("WEBHOOKS").await?;
    let mut subjects = stream.info_with_subjects(filter).await?;
    let mut total = 0;
    while let Some(entry) = subjects.next().await {
        total += entry?.1 as u64;
    }
    Ok(total)
}

#[tokio::test]
async fn replays_with_new_ids_or_events_are_duplicates_only_where_guarded() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(
        &nats.url(),
        &format!(
            "[[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ value = \"{SECRET}\" }}]\n\
             replay_guard = \"24h\"\n\
             [[sources]]\nname = \"open\"\nprovider = \"github\"\nsecrets = [{{ value = \"{SECRET}\" }}]\n"
        ),
    )?)
    .await?;
    let js = async_nats::jetstream::new(nats.client().await?);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let send =
        |source: &'static str, body: &'static [u8], id: &'static str, event: &'static str| {
            let headers = signed_headers(&spec, SECRET, body, id, event);
            let request = client.post(ingest.webhook_url(source));
            async move {
                let response = request.headers(headers?).body(body).send().await?;
                let status = response.status().as_u16();
                let json: Value = response.json().await?;
                anyhow::Ok((status, json))
            }
        };
    let body: &[u8] = br#"{"action":"created","deployment":{"id":1}}"#;

    let (status, first) = send("github", body, "7:first", "push").await?;
    assert_eq!((status, &first["duplicate"]), (200, &Value::Bool(false)));

    // The capture replayed with a new delivery id and event: a duplicate.
    let (status, replay) = send("github", body, "7:forged", "deployment").await?;
    assert_eq!(status, 200);
    assert_eq!(replay["duplicate"], true);
    assert_eq!(replay["id"], "7:first");
    assert_eq!(stored(&js, "webhooks.github.deployment").await?, 0);
    // Same id, another event: a duplicate too.
    let (_, replay) = send("github", body, "7:first", "deployment").await?;
    assert_eq!(replay["duplicate"], true);
    assert_eq!(stored(&js, "webhooks.github.>").await?, 1);

    // The provider retrying (same id and event): the usual dedup answer.
    let (status, retry) = send("github", body, "7:first", "push").await?;
    assert_eq!(status, 200);
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["sequence"], first["sequence"]);

    // Another body is a webhook of its own.
    let (_, other) = send("github", br#"{"other":true}"#, "7:other", "push").await?;
    assert_eq!(other["duplicate"], false);
    assert_eq!(stored(&js, "webhooks.github.>").await?, 2);

    // Without the guard, the same replay is stored as a new webhook.
    send("open", body, "7:first", "push").await?;
    let (_, unguarded) = send("open", body, "7:forged", "deployment").await?;
    assert_eq!(unguarded["duplicate"], false);
    assert_eq!(stored(&js, "webhooks.open.deployment").await?, 1);

    // The guard's memory is a KV bucket with the window as its max age.
    let kv = js.get_key_value("HOOKLINE_REPLAY_github").await?;
    let status = kv.status().await?;
    assert_eq!(status.max_age(), Duration::from_secs(24 * 3600));
    assert_eq!(status.values(), 2);
    ingest.stop().await
}
