//! Issue 12, finding 1: one owner of the stream configuration. Ingest
//! creates missing streams, after binding its ports; no binary changes an
//! existing stream (a difference is a warning and
//! `hookline_stream_config_drift`); `hookline streams apply` shows what a
//! change deletes and applies it. Before: a processor of another group with
//! `max_age = 5s` rewrote the shared stream and deleted unprocessed webhooks,
//! and an ingest that then failed to bind had already updated it.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use hookline_platform::config::ByteSize;
use hookline_platform::streams::StreamConfig;
use hookline_tests::NatsServer;
use hookline_tests::cli::{Pipeline, processor_section};
use hookline_tests::process::{Process, free_port, wait_ready};
use hookline_tests::publish::{TestWebhook, publish};

const THIRTY_DAYS: Duration = Duration::from_secs(30 * 24 * 3600);

async fn publish_webhooks(js: &jetstream::Context, n: usize) -> anyhow::Result<()> {
    for i in 0..n {
        let webhook = TestWebhook::new("stripe", "invoice.paid", &format!("evt_{i}"), "{}");
        publish(js, &webhook).await?;
    }
    Ok(())
}

async fn webhooks(js: &jetstream::Context) -> anyhow::Result<jetstream::stream::Info> {
    Ok(js.get_stream("WEBHOOKS").await?.info().await?.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_with_a_shorter_max_age_leaves_every_webhook_in_place() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start().await?;
    let js = pipeline.js().await?;
    publish_webhooks(&js, 5).await?;
    let before = webhooks(&js).await?;

    // Another team's processor, with a config that would shrink the stream.
    let (handler, _) = pipeline.file_handler("other");
    let (section, port) = processor_section("other", r#"["webhooks.github.>"]"#, &handler)?;
    let text = format!("{}{section}", pipeline.base);
    let mut processor = Process::spawn(
        "hookline-processor",
        &text,
        &[
            ("HOOKLINE_STREAM_MAX_AGE", "5s"),
            ("HOOKLINE_STREAM_DUPLICATE_WINDOW", "1s"),
        ],
    )?;
    let admin = format!("http://127.0.0.1:{port}");
    wait_ready(
        &mut processor,
        &format!("{admin}/readyz"),
        Duration::from_secs(20),
    )
    .await?;

    let after = webhooks(&js).await?;
    assert_eq!(
        after.config.max_age, before.config.max_age,
        "max_age changed"
    );
    assert_eq!(
        after.config.duplicate_window,
        before.config.duplicate_window
    );
    assert_eq!(after.state.messages, 5);
    let log = processor.output()?;
    assert!(
        log.contains("stream differs from this process's [stream] settings")
            && log.contains("max_age 7days (config: 5s)"),
        "no drift warning:\n{log}"
    );
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(r#"hookline_stream_config_drift{stream="WEBHOOKS"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"hookline_stream_config_drift{stream="WEBHOOKS_DLQ"} 1"#),
        "{metrics}"
    );
    pipeline.processors.push(("other".to_owned(), processor));
    Ok(())
}

fn ingest_config(server: &NatsServer, port: u16) -> String {
    format!(
        r#"
[nats]
url = "{url}"

[stream]
max_bytes = "64MiB"
dlq_max_bytes = "16MiB"

[ingest]
listen = "127.0.0.1:{port}"

[[sources]]
name = "stripe"
provider = "stripe"
secrets = [{{ value = "whsec_owner" }}]
"#,
        url = server.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_that_cannot_bind_changes_nothing() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let js = jetstream::new(server.client().await?);
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();

    // On an empty server: no stream is created by an ingest that exits.
    let mut ingest = Process::spawn("hookline-ingest", &ingest_config(&server, port), &[])?;
    let code = ingest.wait_exit(Duration::from_secs(20)).await?;
    assert_eq!(code, Some(1), "{}", ingest.output()?);
    assert!(ingest.output()?.contains("cannot listen on"));
    assert!(
        js.get_stream("WEBHOOKS").await.is_err(),
        "a stream was created"
    );

    // An existing 30-day stream with webhooks, and ingests configured for 1 h.
    StreamConfig {
        max_age: THIRTY_DAYS,
        max_bytes: ByteSize(64 << 20),
        dlq_max_bytes: ByteSize(16 << 20),
        ..StreamConfig::default()
    }
    .declare(&js)
    .await?;
    publish_webhooks(&js, 3).await?;
    let shorter = [("HOOKLINE_STREAM_MAX_AGE", "1h")];
    let mut failing = Process::spawn("hookline-ingest", &ingest_config(&server, port), &shorter)?;
    assert_eq!(failing.wait_exit(Duration::from_secs(20)).await?, Some(1));
    let after = webhooks(&js).await?;
    assert_eq!(after.config.max_age, THIRTY_DAYS);
    assert_eq!(after.state.messages, 3);

    // One that binds starts, and only warns.
    let free = free_port()?;
    let mut running = Process::spawn("hookline-ingest", &ingest_config(&server, free), &shorter)?;
    wait_ready(
        &mut running,
        &format!("http://127.0.0.1:{free}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    let after = webhooks(&js).await?;
    assert_eq!(after.config.max_age, THIRTY_DAYS, "ingest changed max_age");
    assert_eq!(after.state.messages, 3);
    let log = running.output()?;
    assert!(log.contains("max_age 30days (config: 1h)"), "{log}");
    drop(taken);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_apply_shows_what_a_change_deletes_then_applies_it() -> anyhow::Result<()> {
    let pipeline = Pipeline::start().await?;
    let js = pipeline.js().await?;
    publish_webhooks(&js, 8).await?;
    let shorter = [
        ("HOOKLINE_STREAM_MAX_AGE", "1s"),
        ("HOOKLINE_STREAM_DUPLICATE_WINDOW", "1s"),
        ("HOOKLINE_STREAM_MAX_BYTES", "1KiB"),
    ];
    let run = |args: &'static [&'static str]| {
        hookline_tests::cli::hookline(&pipeline.config, args, &shorter, None)
    };

    // The dry run names each change and what it does; once the webhooks are
    // older than the new max_age, it counts them as deleted.
    let deadline = Instant::now() + Duration::from_secs(15);
    let dry = loop {
        let dry = run(&["streams", "apply", "--dry-run"]).await?;
        dry.assert_code(0);
        if dry.stdout.contains("DELETES 8 stored messages") {
            break dry;
        }
        assert!(Instant::now() < deadline, "{dry:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        dry.stdout
            .contains("WEBHOOKS: 3 setting(s) differ from [stream]")
            && dry.stdout.contains("max_age                7days → 1s")
            && dry.stdout.contains("max_bytes              64MiB → 1KiB")
            && dry.stdout.contains("REFUSES new webhooks now")
            && dry.stdout.contains("WEBHOOKS_DLQ: 1 setting(s) differ"),
        "{dry:#?}"
    );
    let unchanged = webhooks(&js).await?;
    assert_eq!(unchanged.state.messages, 8);
    assert_eq!(unchanged.config.max_age, Duration::from_secs(7 * 24 * 3600));

    // Without --yes and without an answer, nothing changes.
    let unanswered = run(&["streams", "apply"]).await?;
    unanswered.assert_code(2);
    assert!(
        unanswered
            .stderr
            .contains("deletes 8 stored messages for good")
            && unanswered.stderr.contains("pass --yes"),
        "{unanswered:#?}"
    );
    assert_eq!(webhooks(&js).await?.state.messages, 8);

    let applied = run(&["streams", "apply", "--yes", "--json"]).await?;
    applied.assert_code(0);
    let plan = applied.json()?;
    assert_eq!(plan["streams"][0]["action"], "update");
    assert_eq!(plan["streams"][0]["changes"][0]["setting"], "max_age");
    assert_eq!(plan["streams"][0]["changes"][0]["effect"], "deletes");
    assert_eq!(plan["streams"][0]["changes"][0]["deletes"], 8);
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after = webhooks(&js).await?;
        if after.state.messages == 0 || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after.config.max_age, Duration::from_secs(1));
    assert_eq!(after.config.max_bytes, 1024);
    assert_eq!(after.state.messages, 0);

    let again = run(&["streams", "apply", "--dry-run"]).await?;
    again.assert_code(0);
    assert!(
        again.stdout.contains("WEBHOOKS: matches [stream]"),
        "{again:#?}"
    );
    Ok(())
}
