//! `hookline-bench console [--webhooks N]`: the console's answer times on a
//! big stream (issue 15). Publishes N Envelopes (default 1,000,000; three
//! sources) as ingest would, two processor groups' consumers, their
//! idempotency records for the webhooks looked up, then times over HTTP the
//! overview, a list page (unfiltered and filtered by source) and a lookup
//! by id, each several times, against the console served in this process.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use async_nats::jetstream::{self, kv, message::PublishMessage};
use hookline_platform::config::ByteSize;
use hookline_platform::contract::{HEADER_EVENT, HEADER_SOURCE};
use hookline_platform::streams::StreamConfig;
use hookline_proto::{Envelope, Header, Message as _, Timestamp};

use crate::nats_server::{self, Sync};

const SOURCES: [(&str, &str); 3] = [
    ("stripe", "invoice.paid"),
    ("github", "push"),
    ("shopify", "orders/create"),
];
const GROUPS: [&str; 2] = ["billing", "audit"];
const PUBLISH_WINDOW: usize = 2048;
const REPEATS: usize = 7;

/// Runs the console benchmark.
///
/// # Errors
/// The server, the publish or an HTTP call fails.
pub(crate) async fn run(args: &[String]) -> anyhow::Result<()> {
    let webhooks: usize = match args.iter().position(|a| a == "--webhooks") {
        Some(i) => args.get(i + 1).context("--webhooks N")?.parse()?,
        None => 1_000_000,
    };
    let server = nats_server::start(Sync::Default).await?;
    let js = jetstream::new(server.client().await?);
    let streams = StreamConfig {
        max_bytes: ByteSize(24 << 30),
        ..StreamConfig::default()
    };
    streams.declare(&js).await?;
    let stream = js.get_stream("WEBHOOKS").await?;
    for group in GROUPS {
        let config = hookline_processor::ProcessorConfig::new(group);
        stream
            .create_consumer(hookline_processor::consumer_config(&config))
            .await?;
    }
    let bucket = js
        .create_key_value(kv::Config {
            bucket: "hookline_idempotency".to_owned(),
            history: 1,
            max_age: Duration::from_secs(86_400),
            ..Default::default()
        })
        .await?;

    let started = Instant::now();
    let probes: Vec<usize> = (1..=5).map(|k| webhooks * k / 6).collect();
    let mut probe_seqs = Vec::new();
    let body = bytes::Bytes::from(format!(
        "{{\"object\":\"event\",\"type\":\"invoice.paid\",\"data\":{{\"object\":{{\"amount_paid\":2000,\"currency\":\"usd\",\"lines\":\"{}\"}}}}}}",
        "x".repeat(300)
    ));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut pending = std::collections::VecDeque::with_capacity(PUBLISH_WINDOW);
    for i in 0..webhooks {
        let (source, event) = SOURCES[i % SOURCES.len()];
        let id = format!("evt_{i:08}");
        let envelope = Envelope {
            id: id.clone(),
            source: source.to_owned(),
            event: event.to_owned(),
            received_at: Some(Timestamp {
                seconds: i64::try_from(now.as_secs()).unwrap_or(0),
                nanos: 0,
            }),
            body: body.clone(),
            headers: vec![Header {
                name: "user-agent".to_owned(),
                value: "bench".to_owned(),
            }],
            content_type: "application/json".to_owned(),
            scheme: source.to_owned(),
        };
        let subject = format!(
            "webhooks.{source}.{}",
            hookline_platform::contract::subject_token(event)
        );
        let message = PublishMessage::build()
            .message_id(format!("{source}:{id}"))
            .header(HEADER_SOURCE, source)
            .header(HEADER_EVENT, event)
            .payload(envelope.encode_to_vec().into());
        let ack = js.send_publish(subject, message).await?;
        if probes.contains(&i) {
            probe_seqs.push((source, id, ack.await.context("PubAck")?.sequence));
            continue;
        }
        pending.push_back(ack);
        if pending.len() >= PUBLISH_WINDOW
            && let Some(ack) = pending.pop_front()
        {
            ack.await.context("PubAck")?;
        }
    }
    for ack in pending {
        ack.await.context("PubAck")?;
    }
    for (source, id, seq) in &probe_seqs {
        for group in GROUPS {
            let key = hookline_platform::contract::WebhookKey::new(source, id)?.record_key(group);
            bucket
                .put(
                    key,
                    format!("{{\"state\":\"done\",\"seq\":{seq},\"attempt\":1}}").into(),
                )
                .await?;
        }
    }
    println!(
        "published {webhooks} webhooks in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("hookline.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = \"{}\"\n\n[stream]\nmax_bytes = \"24GiB\"\n",
            server.url()
        ),
    )?;
    let settings = hookline_cli::settings::Settings::load(Some(&config), &[])
        .map_err(|e| anyhow::anyhow!(e.one_line()))?;
    let listener = hookline_cli::console::bind("127.0.0.1:0".parse()?)
        .await
        .map_err(|e| anyhow::anyhow!(e.one_line()))?;
    let address = listener.local_addr()?;
    let console_js = settings
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!(e.one_line()))?;
    let console = hookline_cli::console::prepare(settings, console_js, address)
        .map_err(|e| anyhow::anyhow!(e.one_line()))?;
    tokio::spawn(hookline_cli::console::serve(
        listener,
        console,
        std::future::pending(),
    ));

    let http = reqwest::Client::new();
    let base = format!("http://{address}");
    let (source, id, _) = &probe_seqs[probe_seqs.len() / 2];
    let calls = [
        ("overview page", "/".to_owned()),
        ("GET /api/status", "/api/status".to_owned()),
        ("webhooks page (newest 50)", "/webhooks".to_owned()),
        (
            "webhooks page, source=github",
            "/webhooks?source=github".to_owned(),
        ),
        (
            "webhooks page, id text matching none",
            "/webhooks?id=no-such-id".to_owned(),
        ),
        (
            "one webhook page (by id)",
            format!("/webhooks/{source}/{id}"),
        ),
        (
            "GET /api/webhooks/{source}/{id}",
            format!("/api/webhooks/{source}/{id}"),
        ),
    ];
    println!("\n{webhooks} webhooks in WEBHOOKS; {REPEATS} calls each (after one warm-up)");
    println!("{:<44} {:>10} {:>10}", "call", "median ms", "max ms");
    for (name, path) in calls {
        let url = format!("{base}{path}");
        let warm = http.get(&url).send().await?;
        anyhow::ensure!(warm.status().is_success(), "{path}: {}", warm.status());
        let mut times = Vec::new();
        for _ in 0..REPEATS {
            let start = Instant::now();
            let response = http.get(&url).send().await?;
            let _ = response.bytes().await?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name:<44} {:>10.1} {:>10.1}",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    Ok(())
}
