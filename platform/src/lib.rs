//! What every Hookline binary shares.
//!
//! - [`command_line`]: `--config FILE`, `--help`, `--version` and the
//!   exit codes every binary shares (clap).
//! - [`config`]: one TOML file plus `HOOKLINE_<SECTION>_<KEY>` environment
//!   overrides, deserialized into each binary's typed config; human
//!   durations and byte sizes.
//! - [`secret`]: secrets from the environment or a file, redacted in `Debug`.
//! - [`nats`]: the `[nats]` section and [`nats::connect`].
//! - [`streams`]: the `[stream]` section and who may touch the `WEBHOOKS`
//!   and `WEBHOOKS_DLQ` streams: ingest creates ([`streams::StreamConfig::declare`]),
//!   everyone else checks ([`streams::StreamConfig::check`]), drift is a
//!   warning and a gauge; only `hookline streams apply` changes them.
//! - [`contract`]: subjects and header names fixed by the design, the
//!   sanitising of subject tokens, and [`contract::WebhookKey`], the one rule
//!   for `Nats-Msg-Id`, idempotency record keys and `Idempotency-Key`.
//! - [`error`]: an error and its causes on one line, each cause once.
//! - [`telemetry`]: tracing subscriber and Prometheus recorder (binaries only).
//! - [`shutdown`]: a cancellation token cancelled by SIGINT/SIGTERM.
//! - [`runtime`]: the tokio runtime sized by a binary's `worker_threads`.

pub mod command_line;
pub mod config;
pub mod contract;
pub mod error;
pub mod nats;
pub mod runtime;
pub mod secret;
pub mod shutdown;
pub mod streams;
pub mod telemetry;
