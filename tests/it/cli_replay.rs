//! `hookline replay` re-delivers history to one group only: copies on
//! `replay.<group>.…` reach that group's processors and no other group;
//! what the group handled is skipped unless `--bypass-idempotency`;
//! publishing is rate-limited; bad input changes nothing.

use hookline_tests::cli as support;

use std::time::{Duration, Instant};

use support::{Pipeline, lines, wait_lines};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_reach_only_the_named_group() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start().await?;
    let (local, local_file) = pipeline.file_handler("local");
    pipeline
        .add_group("local", r#"["webhooks.>"]"#, &local)
        .await?;
    let (audit, audit_file) = pipeline.file_handler("audit");
    pipeline
        .add_group("audit", r#"["webhooks.>"]"#, &audit)
        .await?;
    for id in ["1:a", "1:b", "1:c"] {
        pipeline
            .hookline(&["send", "github", "--id", id])
            .await?
            .assert_code(0);
    }
    pipeline.hookline(&["send", "stripe"]).await?.assert_code(0);
    wait_lines(&local_file, 4).await?;
    wait_lines(&audit_file, 4).await?;

    // Handled already: nothing is published without the bypass.
    let run = pipeline
        .hookline(&[
            "replay", "--group", "local", "--source", "github", "--since", "1h", "--json",
        ])
        .await?;
    run.assert_code(0);
    let summary = run.json()?;
    assert_eq!(summary["matched"], 3, "{summary}");
    assert_eq!(summary["published"], 0);
    assert_eq!(summary["already_handled"], 3);
    assert_eq!(pipeline.count("WEBHOOKS").await?, 4);

    // A dry run counts without changing anything.
    let run = pipeline
        .hookline(&[
            "replay",
            "--group",
            "local",
            "--source",
            "github",
            "--since",
            "1h",
            "--bypass-idempotency",
            "--dry-run",
            "--json",
        ])
        .await?;
    assert_eq!(run.json()?["published"], 3);
    assert_eq!(pipeline.count("WEBHOOKS").await?, 4);

    // With the bypass, at 5 per second: local runs them again, audit sees nothing.
    let started = Instant::now();
    let run = pipeline
        .hookline(&[
            "replay",
            "--group",
            "local",
            "--source",
            "github",
            "--since",
            "1h",
            "--rate",
            "5/s",
            "--bypass-idempotency",
        ])
        .await?;
    run.assert_code(0);
    assert!(
        run.stdout.contains("replayed 3 of 3 github webhooks"),
        "{run:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "3 copies at 5/s take at least 0.4 s, took {:?}",
        started.elapsed()
    );
    let local_lines = wait_lines(&local_file, 7).await?;
    pipeline.wait_settled("local").await?;
    pipeline.wait_settled("audit").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lines(&audit_file).len(), 4, "audit never saw the copies");
    assert_eq!(lines(&local_file).len(), 7);
    let replayed = &local_lines[4];
    assert_eq!(replayed["id"], "1:a");
    assert_eq!(
        replayed["subject"], "webhooks.github.push",
        "the handler sees the webhook's subject"
    );
    assert_eq!(replayed["stream_seq"], 5);
    let js = pipeline.js().await?;
    let copy = js.get_stream("WEBHOOKS").await?.get_raw_message(5).await?;
    assert_eq!(copy.subject.as_str(), "replay.local.github.push");

    // A second replay without bypass: handled again, so skipped.
    let run = pipeline
        .hookline(&[
            "replay", "--group", "local", "--source", "github", "--since", "1h", "--json",
        ])
        .await?;
    assert_eq!(run.json()?["published"], 0);

    // Bad input: unknown group (3), unknown source (3), bad range or rate (2).
    let run = pipeline
        .hookline(&[
            "replay", "--group", "nobody", "--source", "github", "--since", "1h",
        ])
        .await?;
    run.assert_code(3);
    assert!(run.stderr.contains("groups: audit, local"), "{run:?}");
    pipeline
        .hookline(&[
            "replay", "--group", "local", "--source", "gitlab", "--since", "1h",
        ])
        .await?
        .assert_code(3);
    pipeline
        .hookline(&[
            "replay", "--group", "local", "--source", "github", "--since", "1h", "--until", "2h",
        ])
        .await?
        .assert_code(2);
    pipeline
        .hookline(&[
            "replay", "--group", "local", "--source", "github", "--since", "1h", "--rate", "fast",
        ])
        .await?
        .assert_code(2);
    // Before 1970: refused clearly (it panicked, exit 101).
    let run = pipeline
        .hookline(&[
            "replay",
            "--group",
            "local",
            "--source",
            "github",
            "--since",
            "99999999999d",
        ])
        .await?;
    run.assert_code(2);
    assert!(run.stderr.contains("too far in the past"), "{run:?}");
    pipeline
        .hookline(&["replay", "--group", "local", "--source", "github"])
        .await?
        .assert_code(2);
    assert_eq!(
        pipeline.count("WEBHOOKS").await?,
        7,
        "nothing published by bad input"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_copy_that_fails_is_dead_lettered_as_its_webhook() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start().await?;
    let sink = support::Sink::start(200).await?;
    pipeline
        .add_group("billing", r#"["webhooks.stripe.>"]"#, &sink.handler())
        .await?;
    pipeline
        .hookline(&[
            "send",
            "stripe",
            "--id",
            "evt_r1",
            "--event",
            "invoice.paid",
        ])
        .await?
        .assert_code(0);
    pipeline.wait_settled("billing").await?;

    // The endpoint now refuses; a replay of the handled webhook dead-letters.
    sink.set(422);
    let run = pipeline
        .hookline(&[
            "replay",
            "--group",
            "billing",
            "--source",
            "stripe",
            "--since",
            "1h",
            "--bypass-idempotency",
        ])
        .await?;
    run.assert_code(0);
    pipeline.wait_count("WEBHOOKS_DLQ", 1).await?;
    let list = pipeline
        .hookline(&["dlq", "list", "--json"])
        .await?
        .json()?;
    assert_eq!(
        list[0]["subject"], "dlq.billing.stripe.invoice_paid",
        "{list}"
    );
    assert_eq!(list[0]["webhook_id"], "evt_r1");
    assert_eq!(list[0]["original_seq"], 2, "the replayed copy's sequence");

    // Re-driving it goes back to the webhook's own subject.
    sink.set(200);
    pipeline
        .hookline(&["dlq", "replay", "--all"])
        .await?
        .assert_code(0);
    pipeline.wait_count("WEBHOOKS", 3).await?;
    pipeline.wait_settled("billing").await?;
    let js = pipeline.js().await?;
    let copy = js.get_stream("WEBHOOKS").await?.get_raw_message(3).await?;
    assert_eq!(copy.subject.as_str(), "webhooks.stripe.invoice_paid");
    let trace = pipeline
        .hookline(&["trace", "evt_r1", "--source", "stripe", "--json"])
        .await?
        .json()?;
    assert_eq!(trace["groups"][0]["state"], "handled", "{trace}");
    assert_eq!(
        trace["messages"].as_array().map(Vec::len),
        Some(3),
        "{trace}"
    );
    Ok(())
}
