//! One delivery, start to finish: decode, consult the idempotency record
//! (duplicate? backoff gate?), claim, run the handler under supervision
//! (in-progress acks, claim renewal, timeout, panic, shutdown), then settle:
//! ack, nak with backoff, or dead-letter and term. This is the one place
//! that decides how a message is acknowledged.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, AckKind};
use futures::FutureExt as _;
use hookline_platform::contract::{WebhookKey, original_subject};
use hookline_platform::error::chain;
use hookline_proto::{DecodeError, Envelope, Message as _};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::config::ProcessorConfig;
use crate::dead_letter::DeadLetter;
use crate::handler::{Delivery, Handler, Outcome, Webhook};
use crate::idempotency::{self, Current, Decision, Record, Store, WriteError};
use crate::in_flight::InFlight;
use crate::metrics::{Handled, Metrics, SourceMetrics};

/// What every worker shares.
pub(crate) struct Shared<H> {
    pub(crate) js: jetstream::Context,
    pub(crate) store: Store,
    pub(crate) handler: Arc<H>,
    pub(crate) config: ProcessorConfig,
    pub(crate) backoff: Backoff,
    /// This instance's id in claim records.
    pub(crate) owner: String,
    pub(crate) shutdown: CancellationToken,
    /// Keys this instance is working on (see [`InFlight`]).
    pub(crate) in_flight: InFlight,
    pub(crate) metrics: Metrics,
}

/// How many times a claim is re-read after losing a compare-and-set race.
const CLAIM_TRIES: usize = 3;
/// Dead-letter publish tries before falling back to a nak.
const DLQ_TRIES: u32 = 3;

/// Handles one delivery; never fails (every problem ends in an ack, a nak,
/// a term, or, when even that cannot be sent, a redelivery after `ack_wait`).
pub(crate) async fn process<H: Handler>(ctx: &Shared<H>, msg: jetstream::Message) {
    let (seq, attempt) = match msg.info() {
        Ok(info) => (
            info.stream_sequence,
            u32::try_from(info.delivered).unwrap_or(u32::MAX),
        ),
        Err(error) => {
            tracing::error!(%error, subject = %msg.subject, "message without JetStream metadata; terminating it");
            ack(&msg, AckKind::Term).await;
            return;
        }
    };
    // A replayed copy (`replay.<group>.<source>.<event>`) stands for its
    // webhook subject everywhere: labels, dead letters, the handler.
    let subject = original_subject(&msg.subject).into_owned();
    let source = subject.split('.').nth(1).unwrap_or("unknown");
    let metrics = ctx.metrics.source(source);
    // Decoded before the span is made, so that the span is created with
    // every field at once (recording fields later re-formats them all).
    let envelope = Envelope::decode(msg.payload.clone());
    let (webhook_id, webhook_source) = match &envelope {
        Ok(envelope) => (envelope.id.as_str(), envelope.source.as_str()),
        Err(_) => ("", ""),
    };
    let span = tracing::info_span!(
        "webhook",
        group = %ctx.config.group,
        webhook_id,
        source = webhook_source,
        stream_seq = seq,
        attempt,
    );
    Delivered {
        ctx,
        msg,
        seq,
        attempt,
        metrics,
        subject,
    }
    .process(envelope)
    .instrument(span)
    .await;
}

/// One delivery in progress.
struct Delivered<'a, H> {
    ctx: &'a Shared<H>,
    msg: jetstream::Message,
    seq: u64,
    attempt: u32,
    /// Metric handles labelled with the subject's source token.
    metrics: Arc<SourceMetrics>,
    /// The webhook subject, `webhooks.<source>.<event>` (also for a replayed copy).
    subject: String,
}

/// How a supervised handler call ended.
enum Finished {
    /// The handler answered (or panicked / timed out, mapped to a retry);
    /// the claim is at `revision`.
    Outcome {
        outcome: Outcome,
        revision: u64,
        elapsed: Duration,
    },
    /// Another delivery took the claim over: this one must not settle.
    ClaimLost,
    /// Shutdown's drain timeout passed; the claim is at `revision`.
    Interrupted { revision: u64 },
}

impl<H: Handler> Delivered<'_, H> {
    async fn process(self, envelope: Result<Envelope, DecodeError>) {
        let config = &self.ctx.config;
        if self.attempt > 1 {
            self.metrics.redelivered();
        }
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(error) => {
                let reason = format!("undecodable envelope: {error}");
                self.dead_letter(&reason, None).await;
                return;
            }
        };
        let webhook_key = match WebhookKey::new(&envelope.source, &envelope.id) {
            Ok(key) => key,
            Err(error) => {
                let reason = format!("envelope source: {error}");
                self.dead_letter(&reason, None).await;
                return;
            }
        };
        let key = webhook_key.record_key(&config.group);

        // A redelivery of a webhook this instance is still settling waits
        // for that worker rather than taking its lapsed claim over.
        let _held = self.ctx.in_flight.enter(&key, config.ack_wait).await;
        if self.attempt > config.max_deliver {
            self.dead_letter_reserved(&key).await;
            return;
        }
        let Some((revision, runs)) = self.claim(&key).await else {
            return;
        };
        let webhook = Webhook {
            envelope,
            delivery: Delivery {
                group: config.group.clone(),
                subject: self.subject.clone(),
                stream_sequence: self.seq,
                attempt: self.attempt,
                max_attempts: config.max_deliver,
                idempotency_key: webhook_key.idempotency_key().to_owned(),
            },
        };
        self.ctx.metrics.in_flight(1.0);
        let finished = self.supervise(&key, revision, runs, &webhook).await;
        self.ctx.metrics.in_flight(-1.0);
        match finished {
            Finished::Outcome {
                outcome,
                revision,
                elapsed,
            } => {
                self.metrics.handler_duration(&outcome, elapsed);
                self.settle(&key, revision, runs, outcome).await;
            }
            Finished::ClaimLost => {
                tracing::warn!(
                    "another delivery took over this webhook's claim; leaving it to that one"
                );
            }
            Finished::Interrupted { revision } => {
                tracing::warn!("shutting down: handler abandoned, message released for redelivery");
                let record = Record::Retrying {
                    seq: self.seq,
                    attempt: self.attempt,
                    runs,
                    delay_ms: 0,
                };
                let _ = self.ctx.store.write(&key, Some(revision), &record).await;
                ack(&self.msg, AckKind::Nak(None)).await;
            }
        }
    }

    /// Reads the record and claims the webhook: the claim's revision and
    /// the run number, or `None` when the delivery was settled instead
    /// (duplicate, gate, store trouble).
    async fn claim(&self, key: &str) -> Option<(u64, u32)> {
        let ctx = self.ctx;
        // A first delivery is nearly always of a webhook without a record,
        // for which `decide` says "create the claim": try that at once and
        // read the record only when one exists (the create then fails). One
        // KV round trip less per webhook; the outcome is the same.
        if self.attempt == 1 {
            match ctx.store.write(key, None, &self.claim_record(1)).await {
                Ok(revision) => return Some((revision, 1)),
                Err(WriteError::Conflict) => {}
                Err(error) => {
                    self.store_unusable("cannot claim the webhook", chain(&error))
                        .await;
                    return None;
                }
            }
        }
        for _ in 0..CLAIM_TRIES {
            let current = match ctx.store.read(key).await {
                Ok(current) => current,
                Err(error) => {
                    self.store_unusable("cannot read the idempotency record", chain(&error))
                        .await;
                    return None;
                }
            };
            let decision = idempotency::decide(
                current.as_ref(),
                self.seq,
                SystemTime::now(),
                ctx.config.ack_wait,
                &ctx.backoff,
            );
            match decision {
                Decision::Duplicate => {
                    tracing::info!(record = ?current.and_then(|c| c.record), "already handled (or being handled by another delivery); acking");
                    ack(&self.msg, AckKind::Ack).await;
                    self.metrics.handled(Handled::Duplicate);
                    return None;
                }
                Decision::Wait(delay) => {
                    tracing::info!(
                        ?delay,
                        "backoff not yet elapsed since the previous attempt; deferring"
                    );
                    ack(&self.msg, AckKind::Nak(Some(delay))).await;
                    self.metrics.deferred();
                    return None;
                }
                Decision::Run { revision, runs } => match ctx
                    .store
                    .write(key, revision, &self.claim_record(runs))
                    .await
                {
                    Ok(revision) => return Some((revision, runs)),
                    Err(WriteError::Conflict) => continue,
                    Err(error) => {
                        self.store_unusable("cannot claim the webhook", chain(&error))
                            .await;
                        return None;
                    }
                },
            }
        }
        tracing::info!("lost the claim race repeatedly; retrying later");
        self.nak_later().await;
        None
    }

    /// Runs the handler (a panic is caught and becomes a retry), sending an
    /// in-progress ack and renewing the claim every `ack_wait / 3`. The
    /// handler's future is polled here rather than spawned (a task per
    /// webhook cost ~2 µs); dropping it cancels the handler as aborting its
    /// task did. It is not polled while a renewal (one in-progress ack and
    /// one KV write every `ack_wait / 3`) is being sent.
    async fn supervise(
        &self,
        key: &str,
        mut revision: u64,
        runs: u32,
        webhook: &Webhook,
    ) -> Finished {
        let ctx = self.ctx;
        let config = &ctx.config;
        let started = Instant::now();
        let task = AssertUnwindSafe(ctx.handler.handle(webhook)).catch_unwind();
        let period = (config.ack_wait / 3).max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = tokio::time::sleep(config.handler_timeout);
        let drain_timeout = config.drain_timeout;
        let drain = async {
            ctx.shutdown.cancelled().await;
            tokio::time::sleep(drain_timeout).await;
        };
        tokio::pin!(task, deadline, drain);
        loop {
            tokio::select! {
                joined = &mut task => {
                    let outcome = match joined {
                        Ok(outcome) => outcome,
                        Err(panic) => {
                            let reason = format!("handler panicked: {}", panic_message(&*panic));
                            tracing::error!(%reason, "handler panicked");
                            Outcome::retry(reason)
                        }
                    };
                    return Finished::Outcome { outcome, revision, elapsed: started.elapsed() };
                }
                _ = ticker.tick() => {
                    ack(&self.msg, AckKind::Progress).await;
                    // Built here, not per webhook: most handlers finish before the first tick.
                    match ctx.store.write(key, Some(revision), &self.claim_record(runs)).await {
                        Ok(renewed) => revision = renewed,
                        Err(WriteError::Conflict) => match self.still_ours(key).await {
                            Some(current) => revision = current,
                            None => return Finished::ClaimLost,
                        },
                        Err(error) => tracing::warn!(%error, "cannot renew the claim"),
                    }
                }
                () = &mut deadline => {
                    let reason = format!(
                        "handler did not finish within handler_timeout ({})",
                        humantime::format_duration(config.handler_timeout)
                    );
                    tracing::warn!(%reason, "handler timed out");
                    return Finished::Outcome { outcome: Outcome::retry(reason), revision, elapsed: started.elapsed() };
                }
                () = &mut drain => {
                    return Finished::Interrupted { revision };
                }
            }
        }
    }

    /// This delivery's claim record.
    fn claim_record(&self, runs: u32) -> Record {
        Record::Claimed {
            seq: self.seq,
            attempt: self.attempt,
            runs,
            owner: self.ctx.owner.clone(),
        }
    }

    /// After a failed renewal: the claim's revision if it is still this
    /// delivery's (an earlier write may have landed after timing out).
    async fn still_ours(&self, key: &str) -> Option<u64> {
        match self.ctx.store.read(key).await {
            Ok(Some(Current {
                record:
                    Some(Record::Claimed {
                        seq,
                        attempt,
                        owner,
                        ..
                    }),
                revision,
                ..
            })) if seq == self.seq && attempt == self.attempt && owner == self.ctx.owner => {
                Some(revision)
            }
            _ => None,
        }
    }

    /// Maps the handler's outcome to ack / nak with backoff / dead letter.
    /// `runs` (the handler's run number for this message) is the backoff
    /// exponent.
    async fn settle(&self, key: &str, revision: u64, runs: u32, outcome: Outcome) {
        let ctx = self.ctx;
        let config = &ctx.config;
        match outcome {
            Outcome::Success => {
                let done = Record::Done {
                    seq: self.seq,
                    attempt: self.attempt,
                };
                self.record_done(key, revision, &done).await;
                ack(&self.msg, AckKind::Ack).await;
                self.metrics.handled(Handled::Success);
                tracing::debug!("handled");
            }
            Outcome::Retry { reason, .. } if self.attempt >= config.max_deliver => {
                let reason = format!(
                    "attempt {} of {} failed: {reason}",
                    self.attempt, config.max_deliver
                );
                self.dead_letter(&reason, Some((key, revision))).await;
            }
            Outcome::Retry { after, reason } => {
                let delay = after.map_or_else(
                    || ctx.backoff.jittered(runs),
                    |after| ctx.backoff.requested(after),
                );
                let record = Record::Retrying {
                    seq: self.seq,
                    attempt: self.attempt,
                    runs,
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                };
                if let Err(error) = ctx.store.write(key, Some(revision), &record).await {
                    tracing::warn!(%error, "cannot release the claim; the next attempt may wait one ack_wait longer");
                }
                ack(&self.msg, AckKind::Nak(Some(delay))).await;
                self.metrics.handled(Handled::Retry);
                tracing::info!(%reason, ?delay, "retryable failure; redelivery scheduled");
            }
            Outcome::Permanent { reason } => {
                let reason = format!("permanent failure: {reason}");
                self.dead_letter(&reason, Some((key, revision))).await;
            }
        }
    }

    /// Writes the `done` record after a successful run. The handler's side
    /// effect has happened, so losing this record would run it again after
    /// redelivery: store errors (NATS away, a timed-out write) are retried
    /// with the same revision until the write lands, the claim turns out to
    /// be taken over, or `drain_timeout` after shutdown began. A retry that
    /// conflicts may be our own earlier write whose answer was lost, so the
    /// record is read back.
    async fn record_done(&self, key: &str, revision: u64, done: &Record) {
        let ctx = self.ctx;
        let drain_timeout = ctx.config.drain_timeout;
        let drain = async {
            ctx.shutdown.cancelled().await;
            tokio::time::sleep(drain_timeout).await;
        };
        tokio::pin!(drain);
        let mut pause = Duration::from_millis(100);
        let mut retried = false;
        loop {
            match ctx.store.write(key, Some(revision), done).await {
                Ok(_) => return,
                Err(WriteError::Conflict) => {
                    let ours = retried
                        && matches!(
                            ctx.store.read(key).await,
                            Ok(Some(Current { record: Some(Record::Done { seq, attempt }), .. }))
                                if seq == self.seq && attempt == self.attempt
                        );
                    if !ours {
                        tracing::warn!(
                            "the claim was taken over while the handler ran; this webhook may have been handled twice"
                        );
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, ?pause, "handled, but the done record was not written yet; retrying");
                    retried = true;
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = &mut drain => {
                            tracing::warn!("drain timed out before the done record was written; a redelivery may run the handler again");
                            return;
                        }
                    }
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// The reserved delivery after `max_deliver` attempts: the last attempt
    /// never settled (it timed out), so dead-letter without running again.
    async fn dead_letter_reserved(&self, key: &str) {
        let current = self.ctx.store.read(key).await.ok().flatten();
        let own = match &current {
            Some(Current {
                record: Some(Record::Done { .. }),
                ..
            }) => {
                ack(&self.msg, AckKind::Ack).await;
                self.metrics.handled(Handled::Duplicate);
                return;
            }
            Some(Current {
                record: Some(Record::Claimed { seq, .. } | Record::Retrying { seq, .. }),
                revision,
                ..
            }) if *seq == self.seq => Some((key, *revision)),
            _ => None,
        };
        let reason = format!(
            "attempt {} did not finish within ack_wait (instance crashed, hung or disconnected)",
            self.ctx.config.max_deliver
        );
        self.dead_letter(&reason, own).await;
    }

    /// Publishes the dead letter, then terms the original and forgets the
    /// record; if the DLQ cannot be reached, naks for a later try instead.
    async fn dead_letter(&self, reason: &str, record: Option<(&str, u64)>) {
        let ctx = self.ctx;
        let group = &ctx.config.group;
        let attempts = self.attempt.min(ctx.config.max_deliver);
        for try_number in 0..DLQ_TRIES {
            let letter = DeadLetter {
                group,
                reason,
                attempts,
                stream_sequence: self.seq,
                subject: &self.subject,
                headers: self.msg.headers.as_ref(),
                payload: self.msg.payload.clone(),
            };
            match letter.publish(&ctx.js).await {
                Ok(()) => {
                    ack(&self.msg, AckKind::Term).await;
                    if let Some((key, revision)) = record
                        && let Err(error) = ctx.store.forget(key, revision).await
                    {
                        tracing::debug!(%error, "idempotency record not removed");
                    }
                    self.metrics.handled(Handled::DeadLettered);
                    tracing::warn!(%reason, attempts, "dead-lettered");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, try_number, "cannot publish the dead letter");
                    tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(try_number)).await;
                }
            }
        }
        tracing::error!(%reason, "dead-letter stream unreachable; the message will be redelivered");
        self.nak_later().await;
    }

    /// The idempotency store failed for this delivery: retried later with
    /// backoff, or, on the last attempt, dead-lettered with that failure as
    /// the reason (not as a delivery that timed out).
    async fn store_unusable(&self, what: &str, error: String) {
        let max_deliver = self.ctx.config.max_deliver;
        if self.attempt >= max_deliver {
            let reason = format!(
                "attempt {} of {max_deliver}: {what} in the idempotency store: {error}",
                self.attempt
            );
            self.dead_letter(&reason, None).await;
        } else {
            tracing::warn!(%error, "{what}; retrying later");
            self.nak_later().await;
        }
    }

    /// Nak with the backoff delay of this attempt (infrastructure trouble).
    async fn nak_later(&self) {
        ack(
            &self.msg,
            AckKind::Nak(Some(self.ctx.backoff.jittered(self.attempt))),
        )
        .await;
    }
}

/// Sends an ack of any kind; a failure is logged (the server redelivers
/// after `ack_wait`, and idempotency absorbs the repeat).
async fn ack(msg: &jetstream::Message, kind: AckKind) {
    if let Err(error) = msg.ack_with(kind).await {
        tracing::warn!(%error, ?kind, "cannot send ack");
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
