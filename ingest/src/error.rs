//! Errors: [`IngestError`] is what can go wrong with one request, mapped
//! here, and only here, to the statuses of the design. Bodies are short,
//! fixed JSON; nothing internal (and no signature detail) reaches a client.
//! [`Error`] is what can stop the service from starting or serving.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hookline_signature::Rejection;
use serde_json::json;

use crate::publish::PublishError;

/// Why one request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// `{source}` is not configured.
    #[error("unknown source")]
    UnknownSource,
    /// The signature did not verify (missing, malformed, wrong, stale).
    #[error("signature rejected")]
    Unauthorized(#[source] Rejection),
    /// The provider's event name is longer than [`crate::envelope::MAX_EVENT_BYTES`].
    #[error("event name longer than {limit} bytes")]
    EventTooLong {
        /// The limit.
        limit: usize,
    },
    /// The body exceeds the source's limit.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The body did not arrive within the body timeout.
    #[error("request body not received in time")]
    BodyTimeout,
    /// The body arrived slower than `ingest.min_body_rate`.
    #[error("request body arriving too slowly")]
    BodyTooSlow,
    /// The body could not be read (client aborted, bad chunked encoding).
    #[error("unreadable request body")]
    BadBody(#[source] axum::Error),
    /// Too many bodies in flight (`ingest.max_in_flight_bytes`) for longer
    /// than `publish_timeout`: shed before reading the body.
    #[error("too many request bodies in flight")]
    Overloaded {
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
    /// A body still arriving slowly gave its budget to a newcomer.
    #[error("slow request body shed to serve others")]
    Shed {
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
    /// The source's replay guard could not be consulted.
    #[error("replay guard unavailable")]
    ReplayGuard {
        /// What went wrong.
        #[source]
        cause: crate::replay::ReplayError,
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
    /// Not persisted: JetStream away, slow or full.
    #[error("webhook not persisted")]
    Unavailable {
        /// What went wrong.
        #[source]
        cause: PublishError,
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
}

impl IngestError {
    /// The HTTP status of the design's table.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownSource => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::EventTooLong { .. } => StatusCode::BAD_REQUEST,
            Self::BodyTimeout | Self::BodyTooSlow => StatusCode::REQUEST_TIMEOUT,
            Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::Overloaded { .. }
            | Self::Shed { .. }
            | Self::ReplayGuard { .. }
            | Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short label for metrics (`rejected_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownSource => "unknown_source",
            Self::Unauthorized(rejection) => rejection.reason(),
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::EventTooLong { .. } => "event_too_long",
            Self::BodyTimeout => "body_timeout",
            Self::BodyTooSlow => "body_too_slow",
            Self::BadBody(_) => "bad_body",
            Self::Overloaded { .. } => "overloaded",
            Self::Shed { .. } => "shed_slow_body",
            Self::ReplayGuard { .. } => "replay_guard",
            Self::Unavailable { cause, .. } => cause.reason(),
        }
    }

    /// The fixed, client-safe message.
    fn public_message(&self) -> &'static str {
        match self {
            Self::UnknownSource => "no such webhook source",
            // One message for every signature failure: the reason is in
            // metrics and debug logs, not in what an attacker sees.
            Self::Unauthorized(_) => "webhook signature could not be verified",
            Self::BodyTooLarge { .. } => "request body too large",
            Self::EventTooLong { .. } => "event name longer than 4096 bytes",
            Self::BodyTimeout => "request body not received in time",
            Self::BodyTooSlow => "request body arrived too slowly",
            Self::BadBody(_) => "request body could not be read",
            Self::Overloaded { .. }
            | Self::Shed { .. }
            | Self::ReplayGuard { .. }
            | Self::Unavailable { .. } => "webhook not persisted; retry later",
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::UnknownSource => "unknown_source",
            Self::Unauthorized(_) => "unauthorized",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::EventTooLong { .. } => "event_too_long",
            Self::BodyTimeout => "body_timeout",
            Self::BodyTooSlow => "body_too_slow",
            Self::BadBody(_) => "bad_request",
            Self::Overloaded { .. }
            | Self::Shed { .. }
            | Self::ReplayGuard { .. }
            | Self::Unavailable { .. } => "unavailable",
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        // 5xx are logged once per outage by the caller (`outage.rs`).
        tracing::debug!(error = %ErrorChain(&self), status = status.as_u16(), "webhook not accepted");
        let body = json!({ "error": self.code(), "message": self.public_message() });
        let mut response = (status, Json(body)).into_response();
        if let Self::Overloaded { retry_after }
        | Self::Shed { retry_after }
        | Self::ReplayGuard { retry_after, .. }
        | Self::Unavailable { retry_after, .. } = &self
        {
            let seconds = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// A JSON error answer for router-level failures (404 route, 405 method).
pub(crate) fn plain(status: StatusCode, code: &'static str, message: &'static str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

/// Displays an error with its `source()` chain, each cause once.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // async-nats errors print their source in their message too.
        hookline_platform::error::Chain(self.0).fmt(f)
    }
}

/// Why the service could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid configuration")]
    Settings(#[from] crate::config::SettingsError),
    /// A source could not be built.
    #[error("invalid source")]
    Source(#[from] crate::sources::SourceError),
    /// NATS could not be reached (the cause says where and why).
    #[error(transparent)]
    Connect(#[from] hookline_platform::nats::ConnectError),
    /// The streams could not be declared.
    #[error("cannot declare streams")]
    Streams(#[from] hookline_platform::streams::StreamError),
    /// A replay guard's bucket could not be declared.
    #[error("cannot declare a replay guard")]
    ReplayGuard(#[from] crate::replay::ReplayError),
    /// A listener failed.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// The bucket of captured handshake secrets could not be opened.
    #[error("cannot open the capture bucket: {0}")]
    Captures(String),
}
