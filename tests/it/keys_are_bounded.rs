//! Issue 12, findings 2 and 6: every webhook key is bounded and hashed ids
//! live apart from readable ones. Before: a validly signed GitHub delivery
//! with a ~4,090-character `X-GitHub-Delivery` got 200, then its
//! idempotency KV key (a subject) passed nats-server's 4,096-byte control
//! line, so every processor reconnected again and again and the webhook was
//! dead-lettered as "instance crashed, hung or disconnected"; and a Stripe
//! id `sha256:<hex>` spelling another id's hash was taken as its duplicate.

use std::time::{Duration, Instant};

use hookline_platform::contract::{HASHED_ID_PREFIX, WebhookKey};
use hookline_tests::cli::{GITHUB_SECRET, Pipeline, STRIPE_SECRET, wait_lines};
use hookline_tests::ingest::signed_headers;

async fn post(
    pipeline: &Pipeline,
    provider: &str,
    secret: &str,
    body: &str,
    id: &str,
    event: &str,
) -> anyhow::Result<serde_json::Value> {
    let spec: hookline_signature::ProviderSpec = provider.parse()?;
    let headers = signed_headers(&spec, secret, body.as_bytes(), id, event)?;
    let answer = reqwest::Client::new()
        .post(format!("{}/webhooks/{provider}", pipeline.ingest_url))
        .headers(headers)
        .body(body.to_owned())
        .send()
        .await?;
    anyhow::ensure!(
        answer.status() == 200,
        "{provider} answered {}",
        answer.status()
    );
    Ok(answer.json().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4090_character_delivery_id_leaves_the_processors_connected() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start().await?;
    let (first, first_path) = pipeline.file_handler("first");
    let (second, second_path) = pipeline.file_handler("second");
    pipeline
        .add_group("first", r#"["webhooks.>"]"#, &first)
        .await?;
    pipeline
        .add_group("second", r#"["webhooks.>"]"#, &second)
        .await?;

    let delivery = "d".repeat(4_090);
    let long_id = format!("7:{delivery}");
    let answer = post(&pipeline, "github", GITHUB_SECRET, "{}", &long_id, "push").await?;
    assert_eq!(answer["id"], long_id.as_str());
    let sent = Instant::now();
    for i in 0..3 {
        post(
            &pipeline,
            "github",
            GITHUB_SECRET,
            "{}",
            &format!("7:next-{i}"),
            "push",
        )
        .await?;
    }
    for path in [&first_path, &second_path] {
        let lines = wait_lines(path, 4).await?;
        let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert!(ids.contains(&long_id.as_str()));
        assert!(ids.contains(&"7:next-2"));
    }
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "handled after {:?}",
        sent.elapsed()
    );
    for (group, process) in &pipeline.processors {
        let log = process.output()?;
        assert!(
            !log.contains("disconnected") && !log.contains("dead-lettered"),
            "{group}:\n{log}"
        );
    }
    assert_eq!(pipeline.count("WEBHOOKS_DLQ").await?, 0);

    // Its Nats-Msg-Id is the bounded key; trace finds it by the long id.
    let key = WebhookKey::new("github", &long_id)?;
    assert!(key.id().starts_with(HASHED_ID_PREFIX));
    let trace = pipeline
        .hookline(&["trace", &long_id, "--source", "github", "--json"])
        .await?;
    trace.assert_code(0);
    let report = trace.json()?;
    assert_eq!(report["msg_id"], key.message_id());
    let states: Vec<&str> = report["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(|g| g["state"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(states, ["handled", "handled"], "{report:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_spelling_another_ids_hash_is_not_its_duplicate() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start().await?;
    let (handler, path) = pipeline.file_handler("billing");
    pipeline
        .add_group("billing", r#"["webhooks.stripe.>"]"#, &handler)
        .await?;

    let long = format!("evt_{}", "x".repeat(300));
    let hashed = WebhookKey::new("stripe", &long)?;
    // What the hashed id looked like before: `sha256:<hex>`, a valid
    // readable id; and what it looks like now.
    let spellings = [
        hashed.id().trim_start_matches('~').to_owned(),
        hashed.id().to_owned(),
    ];
    let body = |id: &str| format!(r#"{{"id":"{id}","type":"invoice.paid"}}"#);
    let first = post(&pipeline, "stripe", STRIPE_SECRET, &body(&long), "", "").await?;
    assert_eq!(first["duplicate"], false);
    for spelled in &spellings {
        let answer = post(&pipeline, "stripe", STRIPE_SECRET, &body(spelled), "", "").await?;
        assert_eq!(
            answer["duplicate"], false,
            "{spelled} taken as {long}'s duplicate"
        );
    }
    let lines = wait_lines(&path, 3).await?;
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids, [long.as_str(), &spellings[0], &spellings[1]]);
    Ok(())
}
