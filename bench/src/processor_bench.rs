//! The processor part: a backlog of Envelope messages is published first,
//! then drained by (a) the raw baseline (pull + explicit ack, no work), (b)
//! one `hookline-processor` with the `file` handler and idempotency on,
//! (c) three of them sharing the group. The clock runs from the consumer's
//! first delivery until nothing is pending or unacked; the handler's files
//! must then hold exactly one line per webhook.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail, ensure};
use async_nats::jetstream::{self, message::PublishMessage};
use hookline_platform::config::ByteSize;
use hookline_platform::contract::{HEADER_EVENT, HEADER_SOURCE, WebhookKey};
use hookline_platform::streams::StreamConfig;
use hookline_proto::{Envelope, Header, Message as _, Timestamp};

use crate::cli::Options;
use crate::nats_server::{self, Sync};
use crate::process::{Process, RssSampler, cpu_ticks, machine_ticks, sibling_binary};
use crate::report::{ProcessorKind, ProcessorRun, ProcessorSetting};

/// The idempotency bucket's stream (`hookline_idempotency` bucket).
const KV_STREAM: &str = "KV_hookline_idempotency";
/// Publishes in flight while filling the backlog.
const PUBLISH_WINDOW: usize = 512;
/// Webhook body size in the backlog.
const BODY_BYTES: usize = 1024;
/// The raw consumer's pull batch.
pub(crate) const RAW_BATCH: usize = 256;

/// Runs every kind `options.rounds` times (rotating the order) for one sync mode.
pub(crate) async fn run(options: &Options, sync: Sync) -> anyhow::Result<ProcessorSetting> {
    let backlog = match sync {
        Sync::Default => options.backlog,
        Sync::Always => options.backlog_always,
    };
    let server = nats_server::start(sync).await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let stream_config = StreamConfig {
        max_bytes: ByteSize(24 << 30),
        duplicate_window: Duration::from_secs(120),
        ..StreamConfig::default()
    };
    stream_config.declare(&js).await?;
    let stream = js.get_stream(&stream_config.name).await?;
    let work = tempfile::Builder::new()
        .prefix("hookline-bench-processor-")
        .tempdir()?;
    let processor = sibling_binary("hookline-processor")?;
    let kinds = [ProcessorKind::Raw, ProcessorKind::One, ProcessorKind::Three];
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut runs: Vec<Vec<ProcessorRun>> = vec![Vec::new(); kinds.len()];
    for round in 0..options.rounds {
        for offset in 0..kinds.len() {
            let index = (round + offset) % kinds.len();
            let kind = kinds[index];
            stream.purge().await.context("purging WEBHOOKS")?;
            if let Ok(kv) = js.get_stream(KV_STREAM).await {
                kv.purge().await.context("purging the idempotency bucket")?;
            }
            let group = format!("bench-{}-{round}-{}", sync.label(), kind.label());
            publish_backlog(&js, &group, backlog).await?;
            let dir = work.path().join(&group);
            std::fs::create_dir_all(&dir)?;
            let mut instances = Vec::new();
            for instance in 0..kind.instances() {
                instances.push(match kind {
                    ProcessorKind::Raw => Process::spawn(
                        &std::env::current_exe()?,
                        &[
                            "raw-consume".to_owned(),
                            "--nats".to_owned(),
                            server.url(),
                            "--stream".to_owned(),
                            stream_config.name.clone(),
                            "--group".to_owned(),
                            group.clone(),
                            "--batch".to_owned(),
                            RAW_BATCH.to_string(),
                            "--worker-threads".to_owned(),
                            options.worker_threads.to_string(),
                        ],
                        &[],
                        &dir,
                        "raw-consume",
                    )?,
                    ProcessorKind::One | ProcessorKind::Three => {
                        let config = dir.join(format!("hookline-{instance}.toml"));
                        let events = dir.join(format!("events-{instance}.jsonl"));
                        std::fs::write(
                            &config,
                            format!(
                                "[nats]\nurl = \"{url}\"\n\n[stream]\nmax_bytes = \"24GiB\"\nduplicate_window = \"2m\"\n\n\
                                 [processor]\ngroup = \"{group}\"\nstart = \"all\"\nmetrics_listen = \"127.0.0.1:0\"\nworker_threads = {threads}\nconcurrency = {concurrency}\n\
                                 handler = {{ file = {{ path = {events:?} }} }}\n",
                                url = server.url(),
                                threads = options.worker_threads,
                                concurrency = options.processor_concurrency,
                            ),
                        )?;
                        Process::spawn(
                            &processor,
                            &["--config".to_owned(), config.display().to_string()],
                            &[("RUST_LOG", "info")],
                            &dir,
                            &format!("hookline-processor-{instance}"),
                        )?
                    }
                });
            }
            let pids: Vec<u32> = instances.iter().map(Process::pid).collect();
            let sampler = RssSampler::start(pids.clone());
            let cpu_before = cpu_of(&pids);
            let nats_before = server.pid().and_then(cpu_ticks).unwrap_or(0);
            let machine_before = machine_ticks();
            let elapsed = drain(&stream, &group, &mut instances, backlog).await;
            let cpu = cpu_of(&pids).saturating_sub(cpu_before);
            let nats_cpu = server
                .pid()
                .and_then(cpu_ticks)
                .unwrap_or(0)
                .saturating_sub(nats_before);
            let busy_cores = busy_cores(machine_before, machine_ticks(), cores);
            let rss = sampler.stop().await;
            let elapsed = elapsed?;
            drop(instances);
            if kind != ProcessorKind::Raw {
                let lines = count_lines(&dir)?;
                ensure!(
                    lines == backlog,
                    "{group}: {lines} lines written for {backlog} webhooks"
                );
            }
            let _ = stream.delete_consumer(&group).await;
            let rate = backlog as f64 / elapsed.as_secs_f64();
            eprintln!(
                "  process sync={:<7} backlog={backlog:<6} round={round} {:<12} {:>9.0} msg/s  ({:.2} s)  cpu {:>5.1} µs/msg  nats-server {:>5.1} µs/msg  busy {:.2} cores  rss {:.1} MiB",
                sync.label(),
                kind.label(),
                rate,
                elapsed.as_secs_f64(),
                per_message(cpu, backlog),
                per_message(nats_cpu, backlog),
                busy_cores,
                kib_to_mib(rss),
            );
            runs[index].push(ProcessorRun {
                rate,
                seconds: elapsed.as_secs_f64(),
                rss_peak_mib: kib_to_mib(rss),
                cpu_us_per_message: per_message(cpu, backlog),
                nats_server_cpu_us_per_message: per_message(nats_cpu, backlog),
                machine_busy_cores: busy_cores,
            });
        }
    }
    Ok(ProcessorSetting::new(sync, backlog, &kinds, runs))
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Clock ticks (10 ms) per message, in µs (the instances' CPU includes
/// their start-up; the drain is what dominates).
#[allow(clippy::cast_precision_loss)]
fn per_message(ticks: u64, messages: usize) -> f64 {
    ticks as f64 * 10_000.0 / messages.max(1) as f64
}

/// How many of `cores` were busy between two `/proc/stat` readings.
#[allow(clippy::cast_precision_loss)]
fn busy_cores(before: Option<(u64, u64)>, after: Option<(u64, u64)>, cores: usize) -> f64 {
    match (before, after) {
        (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
            (busy1 - busy0) as f64 / (total1 - total0) as f64 * cores as f64
        }
        _ => 0.0,
    }
}

fn cpu_of(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&pid| cpu_ticks(pid)).sum()
}

/// Publishes `count` Envelopes (1 KiB GitHub-like bodies) as ingest would.
async fn publish_backlog(js: &jetstream::Context, tag: &str, count: usize) -> anyhow::Result<()> {
    let body = crate::loadgen::body(BODY_BYTES);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut pending = std::collections::VecDeque::with_capacity(PUBLISH_WINDOW);
    for i in 0..count {
        let id = format!("1:{tag}-{i}");
        let envelope = Envelope {
            id: id.clone(),
            source: "github".to_owned(),
            event: "push".to_owned(),
            received_at: Some(Timestamp {
                seconds: i64::try_from(now.as_secs()).unwrap_or(0),
                nanos: 0,
            }),
            body: body.clone(),
            headers: vec![
                Header {
                    name: "x-github-event".to_owned(),
                    value: "push".to_owned(),
                },
                Header {
                    name: "x-github-delivery".to_owned(),
                    value: format!("{tag}-{i}"),
                },
                Header {
                    name: "user-agent".to_owned(),
                    value: "GitHub-Hookshot/bench".to_owned(),
                },
            ],
            content_type: "application/json".to_owned(),
            scheme: "github".to_owned(),
        };
        let message = PublishMessage::build()
            .message_id(WebhookKey::new("github", &id)?.message_id())
            .header(HEADER_SOURCE, "github")
            .header(HEADER_EVENT, "push")
            .payload(envelope.encode_to_vec().into());
        pending.push_back(js.send_publish("webhooks.github.push", message).await?);
        if pending.len() >= PUBLISH_WINDOW
            && let Some(ack) = pending.pop_front()
        {
            ack.await.context("backlog PubAck")?;
        }
    }
    for ack in pending {
        ack.await.context("backlog PubAck")?;
    }
    Ok(())
}

/// From the first delivery until the group has nothing pending or unacked.
async fn drain(
    stream: &jetstream::stream::Stream,
    group: &str,
    instances: &mut [Process],
    backlog: usize,
) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut started = None;
    loop {
        if let Ok(info) = stream.consumer_info(group).await {
            if started.is_none() && info.delivered.consumer_sequence > 0 {
                started = Some(Instant::now());
            }
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.ack_floor.stream_sequence > 0
                && let Some(started) = started
            {
                return Ok(started.elapsed());
            }
        }
        for instance in instances.iter_mut() {
            instance.check_alive()?;
        }
        if Instant::now() > deadline {
            bail!("{group}: {backlog} webhooks not drained within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn count_lines(dir: &Path) -> anyhow::Result<usize> {
    let mut lines = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            lines += std::fs::read(&path)?
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
        }
    }
    Ok(lines)
}
