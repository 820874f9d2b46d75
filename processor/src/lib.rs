//! Hookline's processor: the second half of the pipeline. Each processor
//! group is one durable JetStream pull consumer on the `WEBHOOKS` stream;
//! any number of instances of a group share its messages. Every message is
//! decoded into the protobuf [`Envelope`](hookline_proto::Envelope) and given
//! to a [`Handler`]; the runtime turns the handler's [`Outcome`] into an ack,
//! a nak with exponential backoff, or a dead letter in `WEBHOOKS_DLQ`, and an
//! idempotency record makes a webhook handled once per group.
//!
//! ```text
//! WEBHOOKS ──pull (batch ≈ concurrency)──▶ run ──permit──▶ worker ──▶ Handler::handle
//!                                            │               │  KV record: claimed → retrying/done
//!                                            │               ├─ Success   → done record, ack
//!                                            │               ├─ Retry     → retrying record, nak(delay)
//!                                            │               └─ Permanent / last attempt / undecodable
//!                                            │                            → publish dlq.<group>.<source>.<event>,
//!                                            ▼                              await PubAck, term
//!                                    gauges every 5 s
//! ```
//!
//! # Entry points
//! - [`run`]: one processor instance until a [`CancellationToken`](tokio_util::sync::CancellationToken) is cancelled.
//! - [`Handler`], [`Webhook`], [`Delivery`], [`Outcome`]: what application code implements.
//! - [`Config`] / [`ProcessorConfig`]: the `[processor]` section and what else the binary reads.
//! - [`handlers`]: the built-in `http` and `file` handlers; [`admin`]: `/metrics`, `/healthz`, `/readyz`.
//!
//! # Redelivery and backoff
//! The consumer has no server-side `BackOff` (it would overwrite `ack_wait`
//! and skew nak delays, NATS.md §1). After the handler's `n`-th run for a
//! message fails, the worker naks with `delay(n) = min(initial · 2^(n-1),
//! max)` ±10 % jitter, or with the handler's own `Retry-After` capped at
//! `max` ([`Backoff`]).
//!
//! Deliveries that *time out* (the instance crashed, froze or lost its
//! connection, so neither an ack nor an in-progress ack arrived within
//! `ack_wait`) are redelivered by the server after `ack_wait`, with no delay
//! of ours. They are spaced by a **gate**: before running the handler, the
//! worker reads the webhook's idempotency record.
//!
//! | record of this message | meaning | the delivery … |
//! |---|---|---|
//! | `retrying` (delay `d`) | run `n` failed and scheduled `d` | runs once `d` has passed since the record was written, else naks with the rest |
//! | `claimed`, lease expired | run `n` never settled: it timed out | runs once `max(ack_wait, delay(n))` has passed since the claim's last renewal, else naks with the rest |
//! | `claimed`, lease live | someone is still running it | naks until the lease has lapsed (a live owner's in-progress acks override that nak) |
//!
//! Record times are the server's timestamps of the record's revisions, so
//! instances never compare clocks with each other. A crashed instance's
//! webhook therefore waits `ack_wait`, then `delay(1)`, `delay(2)`, … once
//! those exceed `ack_wait`. A delivery held back by the gate is not a run
//! (runs are the backoff exponent), but it is a delivery: `max_deliver`
//! bounds deliveries, and a timed-out run costs two.
//!
//! `max_deliver` deliveries may run the handler; the consumer's server
//! `MaxDeliver` is `max_deliver + 1`. The extra delivery happens only when
//! the last one never settled (it timed out) or was held back: it is
//! dead-lettered without running the handler. Without it, the server would
//! silently stop redelivering a message whose last attempt crashed.
//!
//! # Handled once
//! Records live in a KV bucket (history 1, `max_age` = `idempotency_ttl`),
//! keyed `<group>.<encoded WebhookKey>` (the id hashed when long or unsafe;
//! see [`idempotency`]). Before the
//! handler runs, the worker *claims* the webhook with a compare-and-set
//! write; while the handler runs, every `ack_wait / 3` it sends an
//! in-progress ack and renews the claim (the lease is `ack_wait`). A claim
//! whose owner died simply stops being renewed and lapses. After success the
//! record becomes `done`: a later delivery of the same id (a provider retry
//! hours later, a replay, a publish past the stream's duplicate window) is
//! acked as a duplicate without running the handler. Two deliveries of one
//! id never run concurrently: the second sees the live claim of the first
//! and is acked as a duplicate, because the first is still pending in the
//! consumer and will end handled or dead-lettered. After a dead letter the
//! record is removed, so a provider retry or a re-drive starts fresh.
//!
//! What this does **not** promise: if an instance dies after the handler's
//! side effect but before the `done` record is written, or stalls longer
//! than a lease while its claim is taken over, the handler runs again.
//! Downstream side effects must be idempotent on [`Webhook::idempotency_key`]
//! (the `http` handler sends it as `Idempotency-Key`).
//!
//! # Failures and shutdown
//! A panicking handler is a retryable failure (each call runs in its own
//! task); a call running past `handler_timeout` is aborted and retried. On
//! shutdown, [`run`] stops pulling, naks the messages it had received but
//! not started, gives running handlers `drain_timeout` to finish (then
//! releases them for immediate redelivery), waits for its workers, and
//! flushes the connection.

pub mod admin;
mod backoff;
pub mod config;
mod consumer;
pub mod dead_letter;
mod error;
mod handler;
pub mod handlers;
pub mod idempotency;
mod in_flight;
pub mod metrics;
mod runtime;
mod worker;

pub use backoff::Backoff;
pub use config::{BackoffConfig, Config, HandlerConfig, ProcessorConfig, Start};
pub use consumer::consumer_config;
pub use error::Error;
pub use handler::{Delivery, Handler, Outcome, Webhook};
pub use runtime::run;
