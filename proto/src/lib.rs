//! Hookline's message contract.
//!
//! Ingest encodes one [`Envelope`] per verified webhook and publishes it to
//! `webhooks.<source>.<event>`; processors and downstream consumers decode
//! it. `proto/hookline/v1/envelope.proto` is the source of truth, compiled
//! at build time without a system `protoc`; other languages generate their
//! own types from that file.

#![allow(missing_docs, unreachable_pub)] // generated code documents itself from the .proto comments

/// Version 1 of the contract (package `hookline.v1`).
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/hookline.v1.rs"));
}

pub use prost::{DecodeError, Message};
pub use prost_types::Timestamp;
pub use v1::{Envelope, Header};

/// The `.proto` source, for tools that want to ship or print the contract.
pub const ENVELOPE_PROTO: &str = include_str!("../proto/hookline/v1/envelope.proto");
