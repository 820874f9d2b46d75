//! `hookline dlq`: dead letters made by a real processor (an `http`
//! handler whose endpoint refuses with 422) are listed with their reasons
//! and filtered; a replay re-drives them into the main flow keeping the
//! webhook id, and removes each only once its copy is stored; purge asks
//! first. Bad selections change nothing.

use hookline_tests::cli as support;

use std::time::Duration;

use support::{Pipeline, Sink, hookline, wait_lines};

/// A pipeline whose `billing` group dead-letters everything (the sink says
/// 422), with `audit` handling everything into a file; three webhooks sent.
async fn with_dead_letters() -> anyhow::Result<(Pipeline, Sink, std::path::PathBuf)> {
    let mut pipeline = Pipeline::start().await?;
    let sink = Sink::start(422).await?;
    pipeline
        .add_group("billing", r#"["webhooks.>"]"#, &sink.handler())
        .await?;
    let (audit, audit_file) = pipeline.file_handler("audit");
    pipeline
        .add_group("audit", r#"["webhooks.>"]"#, &audit)
        .await?;
    for args in [
        ["send", "stripe", "--id", "evt_a", "--event", "invoice.paid"],
        [
            "send",
            "stripe",
            "--id",
            "evt_b",
            "--event",
            "charge.failed",
        ],
        ["send", "github", "--id", "1:delivery-c", "--event", "push"],
    ] {
        pipeline.hookline(&args).await?.assert_code(0);
    }
    pipeline.wait_count("WEBHOOKS_DLQ", 3).await?;
    pipeline.wait_settled("billing").await?;
    wait_lines(&audit_file, 3).await?;
    Ok((pipeline, sink, audit_file))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_shows_dead_letters_with_reasons_and_filters() -> anyhow::Result<()> {
    let (pipeline, _sink, _) = with_dead_letters().await?;

    let run = pipeline.hookline(&["dlq", "list"]).await?;
    run.assert_code(0);
    assert!(
        run.stdout.contains("evt_a") && run.stdout.contains("1:delivery-c"),
        "{run:?}"
    );
    assert!(run.stdout.contains("permanent failure"), "{run:?}");

    let list = pipeline
        .hookline(&["dlq", "list", "--json"])
        .await?
        .json()?;
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["group"], "billing");
    assert_eq!(list[0]["source"], "stripe");
    assert_eq!(list[0]["event"], "invoice.paid");
    assert_eq!(list[0]["webhook_id"], "evt_a");
    assert_eq!(list[0]["msg_id"], "billing:stripe:evt_a");
    assert!(
        list[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("422"),
        "{}",
        list[0]
    );

    let ids = |value: serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["webhook_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let filtered = pipeline
        .hookline(&["dlq", "list", "--source", "stripe", "--json"])
        .await?;
    assert_eq!(ids(filtered.json()?), ["evt_a", "evt_b"]);
    let filtered = pipeline
        .hookline(&["dlq", "list", "--event", "charge.failed", "--json"])
        .await?;
    assert_eq!(ids(filtered.json()?), ["evt_b"]);
    let filtered = pipeline
        .hookline(&["dlq", "list", "--group", "audit", "--json"])
        .await?;
    assert_eq!(ids(filtered.json()?), Vec::<String>::new());
    let filtered = pipeline
        .hookline(&[
            "dlq",
            "list",
            "--since",
            "1h",
            "--until",
            "2099-01-01T00:00:00Z",
            "--json",
        ])
        .await?;
    assert_eq!(ids(filtered.json()?).len(), 3);
    let filtered = pipeline
        .hookline(&["dlq", "list", "--until", "1h", "--json"])
        .await?;
    assert_eq!(ids(filtered.json()?).len(), 0, "none is older than an hour");
    let filtered = pipeline.hookline(&["dlq", "list", "2-3", "--json"]).await?;
    assert_eq!(ids(filtered.json()?), ["evt_b", "1:delivery-c"]);

    let show = pipeline.hookline(&["dlq", "show", "1", "--json"]).await?;
    show.assert_code(0);
    let shown = &show.json()?[0];
    assert_eq!(shown["envelope"]["id"], "evt_a");
    assert!(
        shown["envelope"]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("\"evt_a\""),
        "{shown}"
    );
    let show = pipeline.hookline(&["dlq", "show", "3"]).await?;
    assert!(show.stdout.contains("x-github-event: push"), "{show:?}");

    // Bad selections: exit 3 for a missing dead letter, 2 for bad input.
    pipeline
        .hookline(&["dlq", "show", "99"])
        .await?
        .assert_code(3);
    pipeline.hookline(&["dlq", "show"]).await?.assert_code(2);
    pipeline
        .hookline(&["dlq", "list", "x"])
        .await?
        .assert_code(2);
    let run = pipeline
        .hookline(&["dlq", "list", "--since", "1h", "--until", "2h"])
        .await?;
    run.assert_code(2);
    assert!(run.stderr.contains("bad time range"), "{run:?}");
    pipeline
        .hookline(&["dlq", "list", "--since", "last tuesday"])
        .await?
        .assert_code(2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_re_drives_for_the_group_that_gave_up_and_removes_only_after_the_pub_ack()
-> anyhow::Result<()> {
    let (pipeline, sink, audit_file) = with_dead_letters().await?;
    let calls_before = sink.requests.load(std::sync::atomic::Ordering::SeqCst);

    // Nothing chosen: refused, nothing changes.
    let run = pipeline.hookline(&["dlq", "replay"]).await?;
    run.assert_code(2);
    assert!(run.stderr.contains("--all"), "{run:?}");
    // A sequence that is not there: exit 3, nothing re-driven.
    pipeline
        .hookline(&["dlq", "replay", "1", "42"])
        .await?
        .assert_code(3);
    // Sequence 0 is not a dead letter either (it said "invalid subject").
    let run = pipeline.hookline(&["dlq", "replay", "0"]).await?;
    run.assert_code(3);
    assert!(run.stderr.contains("no dead letter 0"), "{run:?}");
    assert_eq!(pipeline.count("WEBHOOKS").await?, 3);
    assert_eq!(pipeline.count("WEBHOOKS_DLQ").await?, 3);

    // The endpoint is fixed; re-drive the stripe ones.
    sink.set(200);
    let run = pipeline
        .hookline(&["dlq", "replay", "--source", "stripe", "--json"])
        .await?;
    run.assert_code(0);
    let done = run.json()?;
    let done = done.as_array().cloned().unwrap_or_default();
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(
        done.iter()
            .all(|d| d["removed"] == true && d["stream"] == "WEBHOOKS")
    );
    pipeline.wait_count("WEBHOOKS", 5).await?;
    assert_eq!(
        pipeline.count("WEBHOOKS_DLQ").await?,
        1,
        "only the github one is left"
    );
    pipeline.wait_settled("billing").await?;
    pipeline.wait_settled("audit").await?;
    assert_eq!(
        sink.requests.load(std::sync::atomic::Ordering::SeqCst),
        calls_before + 2,
        "billing ran each re-driven webhook once"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        support::lines(&audit_file).len(),
        3,
        "audit had handled them: the copies were duplicates there"
    );
    let js = pipeline.js().await?;
    let copy = js.get_stream("WEBHOOKS").await?.get_raw_message(4).await?;
    assert_eq!(copy.subject.as_str(), "webhooks.stripe.invoice_paid");
    assert_eq!(
        copy.headers
            .get("Nats-Msg-Id")
            .map(|v| v.to_string())
            .as_deref(),
        Some("stripe:evt_a:redrive:1")
    );

    // --keep re-drives without removing; --dry-run only lists.
    let run = pipeline
        .hookline(&["dlq", "replay", "3", "--dry-run"])
        .await?;
    run.assert_code(0);
    assert!(run.stdout.contains("1:delivery-c"), "{run:?}");
    assert_eq!(pipeline.count("WEBHOOKS").await?, 5);
    pipeline
        .hookline(&["dlq", "replay", "3", "--keep"])
        .await?
        .assert_code(0);
    pipeline.wait_count("WEBHOOKS", 6).await?;
    assert_eq!(pipeline.count("WEBHOOKS_DLQ").await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_asks_first_and_deletes_only_what_was_chosen() -> anyhow::Result<()> {
    let (pipeline, _sink, _) = with_dead_letters().await?;
    pipeline.hookline(&["dlq", "purge"]).await?.assert_code(2);

    // "n" (or no answer) deletes nothing.
    let run = hookline(
        &pipeline.config,
        &["dlq", "purge", "--source", "stripe"],
        &[],
        Some(b"n\n"),
    )
    .await?;
    run.assert_code(1);
    assert!(
        run.stderr.contains("Delete 2 dead letters") && run.stderr.contains("cancelled"),
        "{run:?}"
    );
    let run = hookline(
        &pipeline.config,
        &["dlq", "purge", "--source", "stripe"],
        &[],
        Some(b""),
    )
    .await?;
    run.assert_code(2);
    assert!(run.stderr.contains("--yes"), "{run:?}");
    assert_eq!(pipeline.count("WEBHOOKS_DLQ").await?, 3);

    let run = hookline(
        &pipeline.config,
        &["dlq", "purge", "--source", "stripe"],
        &[],
        Some(b"y\n"),
    )
    .await?;
    run.assert_code(0);
    assert!(run.stdout.contains("purged 2"), "{run:?}");
    assert_eq!(pipeline.count("WEBHOOKS_DLQ").await?, 1);
    pipeline
        .hookline(&["dlq", "purge", "--all", "--yes"])
        .await?
        .assert_code(0);
    assert_eq!(pipeline.count("WEBHOOKS_DLQ").await?, 0);
    let run = pipeline.hookline(&["dlq", "list"]).await?;
    assert!(run.stdout.contains("no dead letters"), "{run:?}");
    Ok(())
}
