//! `hookline status` and `hookline trace` on a real pipeline: one webhook
//! handled by one group, dead-lettered by another, not subscribed by a
//! third, pending in a fourth whose processor is down; unknown ids and
//! unreachable servers get their documented exit codes.

use hookline_tests::cli as support;

use hookline_processor::ProcessorConfig;
use support::{Pipeline, Sink, hookline, wait_lines};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_trace_tell_where_a_webhook_is_in_every_group() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start().await?;
    let (file, events) = pipeline.file_handler("local");
    pipeline
        .add_group("local", r#"["webhooks.>"]"#, &file)
        .await?;
    let sink = Sink::start(422).await?;
    pipeline
        .add_group("billing", r#"["webhooks.github.>"]"#, &sink.handler())
        .await?;
    let (stripe_file, _) = pipeline.file_handler("stripe-only");
    pipeline
        .add_group("payments", r#"["webhooks.stripe.>"]"#, &stripe_file)
        .await?;
    // A group whose processors are down: its consumer exists, nothing runs.
    let js = pipeline.js().await?;
    let mut down = ProcessorConfig::new("reports");
    down.subjects = vec!["webhooks.github.>".into()];
    js.get_stream("WEBHOOKS")
        .await?
        .create_consumer(hookline_processor::consumer_config(&down))
        .await?;

    let sent = pipeline
        .hookline(&["send", "github", "--id", "77:trace-me", "--json"])
        .await?
        .json()?;
    assert_eq!(sent["status"], 200);
    wait_lines(&events, 1).await?;
    pipeline.wait_count("WEBHOOKS_DLQ", 1).await?;
    pipeline.wait_settled("billing").await?;

    let run = pipeline
        .hookline(&["trace", "77:trace-me", "--json"])
        .await?;
    run.assert_code(0);
    let trace = run.json()?;
    assert_eq!(trace["webhook_id"], "77:trace-me");
    assert_eq!(trace["source"], "github");
    assert_eq!(trace["messages"][0]["stream_seq"], 1);
    assert_eq!(trace["messages"][0]["subject"], "webhooks.github.push");
    let state = |group: &str| -> (String, String) {
        let g = trace["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["group"] == group)
            .cloned()
            .unwrap_or_default();
        (
            g["state"].as_str().unwrap_or_default().to_owned(),
            g["detail"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(state("local").0, "handled", "{trace}");
    let (billing, detail) = state("billing");
    assert_eq!(billing, "dead-lettered", "{trace}");
    assert!(
        detail.contains("WEBHOOKS_DLQ #1") && detail.contains("422"),
        "{detail}"
    );
    assert_eq!(state("payments").0, "not subscribed", "{trace}");
    assert_eq!(state("reports").0, "pending", "{trace}");

    // The table form, and the whole Nats-Msg-Id as the id.
    let run = pipeline
        .hookline(&["trace", "github:77:trace-me", "--source", "github"])
        .await?;
    run.assert_code(0);
    assert!(
        run.stdout.contains("dead-lettered") && run.stdout.contains("webhooks.github.push"),
        "{run:?}"
    );

    // Unknown: exit 3 and a reason; bad --since or --source: 2 / 3.
    let run = pipeline.hookline(&["trace", "77:no-such-delivery"]).await?;
    run.assert_code(3);
    assert!(run.stderr.contains("not in stream WEBHOOKS"), "{run:?}");
    pipeline
        .hookline(&["trace", "x", "--since", "soonish"])
        .await?
        .assert_code(2);
    // Before 1970: a clear refusal, not a panic (exit 101; issue 12 finding 7).
    let run = pipeline
        .hookline(&["trace", "x", "--since", "300000y"])
        .await?;
    run.assert_code(2);
    assert!(run.stderr.contains("too far in the past"), "{run:?}");
    pipeline
        .hookline(&["trace", "x", "--source", "gitlab"])
        .await?
        .assert_code(3);

    // Status: streams, each group's position, dead letters per group, the bucket.
    let run = pipeline.hookline(&["status", "--json"]).await?;
    run.assert_code(0);
    let status = run.json()?;
    assert_eq!(status["streams"][0]["name"], "WEBHOOKS");
    assert_eq!(status["streams"][0]["messages"], 1);
    assert_eq!(status["streams"][1]["name"], "WEBHOOKS_DLQ");
    assert_eq!(status["streams"][1]["messages"], 1);
    let group = |name: &str| {
        status["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["group"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(group("local")["ack_floor"], 1);
    assert_eq!(group("local")["pending"], 0);
    assert_eq!(group("local")["dead_letters"], 0);
    assert_eq!(group("billing")["dead_letters"], 1);
    assert_eq!(group("reports")["pending"], 1, "{status}");
    assert_eq!(group("reports")["waiting"], 0);
    assert_eq!(group("local")["waiting"], 1, "one instance pulling");
    assert!(
        status["idempotency"]["records"].as_u64().unwrap_or(0) >= 1,
        "{status}"
    );
    assert_eq!(status["cluster"]["health"], "single server (no replicas)");
    let table = pipeline.hookline(&["status"]).await?;
    table.assert_code(0);
    for expected in [
        "WEBHOOKS_DLQ",
        "billing",
        "reports",
        "IDEMPOTENCY",
        "CLUSTER",
    ] {
        assert!(table.stdout.contains(expected), "{expected}: {table:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stream_or_no_server_gets_its_exit_code() -> anyhow::Result<()> {
    let server = hookline_tests::NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("hookline.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = {:?}\nconnect_timeout = \"1s\"\n",
            server.url()
        ),
    )?;
    // A server without the streams (nothing started yet).
    let run = hookline(&config, &["status"], &[], None).await?;
    run.assert_code(3);
    assert!(
        run.stderr.contains("stream WEBHOOKS does not exist"),
        "{run:?}"
    );
    hookline(&config, &["trace", "x"], &[], None)
        .await?
        .assert_code(3);
    hookline(&config, &["dlq", "list"], &[], None)
        .await?
        .assert_code(3);

    // No server at all.
    let port = hookline_tests::process::free_port()?;
    let url = format!("nats://127.0.0.1:{port}");
    let run = hookline(&config, &["status"], &[("HOOKLINE_NATS_URL", &url)], None).await?;
    run.assert_code(1);
    assert!(run.stderr.contains("cannot reach NATS"), "{run:?}");

    // A configuration error: exit 2, the key named.
    let run = hookline(
        &config,
        &["status"],
        &[("HOOKLINE_STREAM_REPLICAS", "9")],
        None,
    )
    .await?;
    run.assert_code(2);
    assert!(run.stderr.contains("replicas"), "{run:?}");
    Ok(())
}
