//! Hookline ingest: the HTTP front door of the pipeline.
//!
//! `POST /webhooks/{source}` → [`sources`] finds the configured source →
//! its verifier checks the signature over the raw body (constant time,
//! replay window) → [`envelope`] builds the protobuf `Envelope` (webhook id,
//! event, raw body, selected headers) → [`publish`] sends it to
//! `webhooks.<source>.<event>` with `Nats-Msg-Id = <source>:<id>` (the
//! bounded `WebhookKey`: long or unsafe ids hashed) and awaits
//! the PubAck → 200 `{"id", "duplicate"}`. Provider handshakes (Slack's
//! `url_verification`, Zoom, Discord, Twitch, Meta's GET, ...) are decided by
//! the signature crate's `Verifier::receive` and answered, never published.
//! Every failure maps to one status
//! in [`error`]; nothing is answered 2xx before the PubAck.
//!
//! Entry points: [`config::IngestSettings`] (the whole config file),
//! [`AppState::connect`] (sources, NATS, streams), [`router`] and [`serve`].
//! `main.rs` only wires these together.

pub mod body;
pub mod budget;
pub mod capture;
pub mod config;
pub mod envelope;
pub mod error;
pub mod publish;
pub mod replay;
pub mod sources;

mod outage;
mod parse_errors;
mod routes;
mod server;
mod telemetry;

pub use error::{Error, IngestError};
pub use routes::{admin_router, router};
pub use server::{MAX_HEADER_BYTES, MAX_HEADERS, serve};
pub use state::AppState;

mod state;
