//! [`run`]: declares the group's consumer and idempotency bucket, pulls
//! messages with bounded concurrency, hands each to a worker, refreshes the
//! gauges, and drains on shutdown.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::{self, AckKind};
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use hookline_platform::contract::DLQ_SUBJECT_PREFIX;
use hookline_platform::streams::StreamError;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::handler::Handler;
use crate::idempotency::Store;
use crate::in_flight::InFlight;
use crate::metrics::{self, Metrics};
use crate::worker::{self, Shared};
use crate::{Error, consumer};

/// Missed idle heartbeats in a row before the pull stream is reopened.
const MAX_MISSED_HEARTBEATS: u32 = 3;
/// Pause before reopening a pull stream or recreating the consumer.
const REOPEN_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between reopening attempts.
const MAX_REOPEN_PAUSE: Duration = Duration::from_secs(5);
/// How often a missing stream is looked for again at start-up.
const STREAM_POLL: Duration = Duration::from_millis(500);

/// Runs one processor instance of `config.processor.group` until `shutdown`
/// is cancelled, then drains: it stops pulling, naks the messages it had
/// pulled but not started, lets running handlers finish (up to
/// `drain_timeout`), and flushes the connection. It waits for both streams
/// to exist (ingest creates them) and never changes them: a stream that
/// differs from `config.stream` is a warning and the
/// `hookline_stream_config_drift` gauge (see `StreamConfig::check`).
///
/// # Errors
/// Invalid configuration, a missing stream, or a consumer or bucket the
/// server refuses: everything that stops an instance from starting. Once
/// running, NATS trouble is retried and logged, never returned.
pub async fn run<H: Handler>(
    js: jetstream::Context,
    config: Config,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    config.validate()?;
    if !wait_for_streams(&js, &config, &shutdown).await? {
        return Ok(());
    }
    let stream = get_stream(&js, &config.stream.name).await?;
    let dlq = get_stream(&js, &config.stream.dlq_name).await?;
    let processor = config.processor;
    let within = config.nats.connect_timeout;
    let consumer = retry_at_start("the group's consumer", within, || {
        consumer::ensure(&stream, &processor)
    })
    .await?;
    let store = retry_at_start("the idempotency bucket", within, || async {
        Store::open(
            &js,
            &processor.idempotency_bucket,
            processor.idempotency_ttl,
            config.stream.replicas,
        )
        .await
        .map_err(|source| Error::IdempotencyBucket {
            bucket: processor.idempotency_bucket.clone(),
            source,
        })
    })
    .await?;
    tracing::info!(
        group = %processor.group,
        subjects = ?processor.subjects,
        concurrency = processor.concurrency,
        "processor started"
    );
    let tracker = TaskTracker::new();
    tracker.spawn(refresh_gauges(
        stream.clone(),
        dlq,
        processor.group.clone(),
        shutdown.clone(),
    ));
    let ctx = Arc::new(Shared {
        js: js.clone(),
        store,
        handler,
        backoff: Backoff::new(processor.backoff),
        owner: instance_id(),
        metrics: Metrics::new(&processor.group),
        config: processor,
        shutdown: shutdown.clone(),
        in_flight: InFlight::default(),
    });
    pull(&ctx, &stream, consumer, &tracker).await;
    tracker.close();
    tracker.wait().await;
    if let Err(error) = js.client().flush().await {
        tracing::warn!(%error, "cannot flush the final acks");
    }
    tracing::info!(group = %ctx.config.group, "processor stopped");
    Ok(())
}

/// Waits until both streams exist (ingest creates them at start-up, and
/// may start after this instance), checking them against the config: a
/// difference is a warning and a metric, never a change. `false` when
/// shutdown came first.
async fn wait_for_streams(
    js: &jetstream::Context,
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<bool, Error> {
    let mut waiting = false;
    loop {
        match config.stream.check(js).await {
            Ok(()) => return Ok(true),
            Err(error @ StreamError::Missing { .. }) => {
                if !waiting {
                    tracing::warn!(%error, "waiting for the stream");
                    waiting = true;
                }
            }
            Err(error) => return Err(error.into()),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            () = tokio::time::sleep(STREAM_POLL) => {}
        }
    }
}

/// Retries a start-up request that JetStream may time out for a while:
/// right after a cluster boots, or during a leader election, API requests
/// time out until a leader exists (NATS.md §6.8). Gives up after `within`
/// (`nats.connect_timeout`) with the last error. A refusal that retrying
/// cannot change ([`Error::StartChanged`]) is returned at once.
async fn retry_at_start<T, F, Fut>(what: &str, within: Duration, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut pause = Duration::from_millis(250);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error @ Error::StartChanged { .. }) => return Err(error),
            Err(error) if tokio::time::Instant::now() + pause >= deadline => return Err(error),
            Err(error) => {
                tracing::warn!(error = %hookline_platform::error::chain(&error), "cannot set up {what} yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_REOPEN_PAUSE);
            }
        }
    }
}

async fn get_stream(js: &jetstream::Context, name: &str) -> Result<Stream, Error> {
    js.get_stream(name).await.map_err(|source| Error::Stream {
        name: name.to_owned(),
        source,
    })
}

/// The pull loop: a permit first (bounded concurrency), then a message.
async fn pull<H: Handler>(
    ctx: &Arc<Shared<H>>,
    stream: &Stream,
    mut consumer: PullConsumer,
    tracker: &TaskTracker,
) {
    let shutdown = &ctx.shutdown;
    let permits = Arc::new(Semaphore::new(ctx.config.concurrency));
    let mut pause = REOPEN_PAUSE;
    'reopen: loop {
        let mut messages = match consumer::messages(&consumer, ctx.config.concurrency).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot open the pull stream; retrying");
                if sleep_or_shutdown(shutdown, &mut pause).await {
                    return;
                }
                if let Ok(recreated) = consumer::ensure(stream, &ctx.config).await {
                    consumer = recreated;
                }
                continue 'reopen;
            }
        };
        let mut missed_heartbeats = 0;
        loop {
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'reopen nak_buffered(messages).await,
                permit = Arc::clone(&permits).acquire_owned() => permit,
            };
            let Ok(permit) = permit else { return };
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'reopen nak_buffered(messages).await,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(msg)) => {
                    missed_heartbeats = 0;
                    pause = REOPEN_PAUSE;
                    let ctx = Arc::clone(ctx);
                    tracker.spawn(async move {
                        worker::process(&ctx, msg).await;
                        drop(permit);
                    });
                }
                Some(Err(error)) => match error.kind() {
                    MessagesErrorKind::MissingHeartbeat => {
                        missed_heartbeats += 1;
                        tracing::warn!(missed_heartbeats, "pull stream missed a heartbeat");
                        if missed_heartbeats >= MAX_MISSED_HEARTBEATS {
                            continue 'reopen;
                        }
                    }
                    MessagesErrorKind::ConsumerDeleted
                    | MessagesErrorKind::PushBasedConsumer
                    | MessagesErrorKind::RequestLimitExceeded => {
                        tracing::warn!(%error, "pull stream ended; recreating the consumer");
                        if sleep_or_shutdown(shutdown, &mut pause).await {
                            return;
                        }
                        match consumer::ensure(stream, &ctx.config).await {
                            Ok(recreated) => consumer = recreated,
                            Err(error) => tracing::warn!(%error, "cannot recreate the consumer"),
                        }
                        continue 'reopen;
                    }
                    _ => {
                        tracing::warn!(%error, "pull stream error");
                        if sleep_or_shutdown(shutdown, &mut pause).await {
                            return;
                        }
                    }
                },
                None => {
                    tracing::warn!("pull stream closed; reopening");
                    if sleep_or_shutdown(shutdown, &mut pause).await {
                        return;
                    }
                    continue 'reopen;
                }
            }
        }
    }
}

/// Naks (no delay) the messages already received but not started, so other
/// instances get them now rather than after `ack_wait`.
async fn nak_buffered(mut messages: jetstream::consumer::pull::Stream) {
    let mut released = 0usize;
    while let Some(Some(Ok(msg))) = messages.next().now_or_never() {
        if msg.ack_with(AckKind::Nak(None)).await.is_ok() {
            released += 1;
        }
    }
    tracing::info!(released, "stopped pulling; buffered messages released");
}

/// Sleeps `pause` (then doubles it); `true` when shutdown came first.
async fn sleep_or_shutdown(shutdown: &CancellationToken, pause: &mut Duration) -> bool {
    let sleep = *pause;
    *pause = (*pause * 2).min(MAX_REOPEN_PAUSE);
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(sleep) => false,
    }
}

/// Refreshes the lag, ack-pending and dead-letter gauges every few seconds.
async fn refresh_gauges(stream: Stream, dlq: Stream, group: String, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(metrics::GAUGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let filter = format!("{DLQ_SUBJECT_PREFIX}.{group}.>");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let refresh = async {
            let info = stream.consumer_info(&group).await?;
            let dead_letters = match dlq.info_with_subjects(&filter).await {
                Ok(subjects) => subjects
                    .try_fold(
                        0u64,
                        |sum, (_, count)| async move { Ok(sum + count as u64) },
                    )
                    .await
                    .ok(),
                Err(_) => None,
            };
            metrics::consumer_state(&group, info.num_pending, info.num_ack_pending, dead_letters);
            Ok::<_, async_nats::Error>(())
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = refresh => if let Err(error) = result {
                tracing::debug!(%error, "cannot refresh consumer gauges");
            },
        }
    }
}

/// A random id naming this instance in claim records.
fn instance_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{}-{:016x}", std::process::id(), hasher.finish())
}
