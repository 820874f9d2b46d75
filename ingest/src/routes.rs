//! The HTTP surface: `POST /webhooks/{source}`, `/healthz`, `/readyz`,
//! `/metrics`, and JSON answers for unknown routes and wrong methods.

use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use hookline_proto::Message;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use tracing::Instrument;

use crate::challenge::{ChallengeReply, handshake};
use crate::envelope::{self, VerifiedRequest};
use crate::error::{IngestError, plain};
use crate::publish::Outgoing;
use crate::sources::Source;
use crate::state::AppState;
use crate::telemetry::{self, UNKNOWN_SOURCE};

/// The public router: webhooks, health, and `/metrics` unless metrics are
/// served on a separate address (then see [`admin_router`]).
pub fn router(state: AppState) -> Router {
    let webhooks = post(receive).fallback(method_not_allowed);
    let mut router = Router::new()
        .route("/webhooks/{source}", webhooks)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.inner.metrics_on_public {
        router = router.route("/metrics", get(metrics));
    }
    router.fallback(not_found).with_state(state)
}

/// The admin router for `ingest.metrics_listen`: health and `/metrics`.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// The 200 answers: a persisted webhook, or a provider handshake's reply.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Accepted {
    Persisted {
        id: String,
        duplicate: bool,
        sequence: u64,
    },
    Handshake(ChallengeReply),
}

async fn receive(
    State(state): State<AppState>,
    source_name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    // A segment that does not decode (e.g. `%ff`) cannot name a source.
    let source = source_name
        .ok()
        .and_then(|Path(name)| state.inner.sources.get(&name).cloned());
    let Some(source) = source else {
        telemetry::rejected(UNKNOWN_SOURCE, "unknown_source");
        return IngestError::UnknownSource.into_response();
    };
    let span =
        tracing::info_span!("webhook", source = %source.name, webhook_id = tracing::field::Empty);
    let result = accept(&state, &source, &headers, body)
        .instrument(span)
        .await;
    let response = match result {
        Ok(accepted) => Json(accepted).into_response(),
        Err(error) => {
            // 503s are counted as publish failures by `accept`; the rest are rejections.
            if !matches!(error, IngestError::Unavailable { .. }) {
                source.metrics.rejected(error.reason());
            }
            error.into_response()
        }
    };
    source
        .metrics
        .request_finished(response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

async fn accept(
    state: &AppState,
    source: &Source,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, IngestError> {
    let inner = &state.inner;
    let received_at = SystemTime::now();
    source.metrics.received.increment(1);
    let body = read_body(headers, body, source.max_body, inner.body_timeout).await?;

    let request = hookline_signature::Request {
        headers,
        body: &body,
        url: None,
    };
    let verified = source
        .verifier
        .verify(&request, received_at)
        .map_err(IngestError::Unauthorized)?;
    source.metrics.verified.increment(1);
    if let Some(reply) = handshake(source.verifier.scheme(), &body) {
        return Ok(Accepted::Handshake(reply));
    }

    let id = verified
        .id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| envelope::content_id(&source.name, &body));
    tracing::Span::current().record("webhook_id", id.as_str());
    let dedup_id = envelope::dedup_id(&source.name, &id);
    let event = verified.event;
    let subject = format!(
        "{}{}",
        source.subject_prefix,
        event.as_deref().map_or_else(
            || hookline_platform::contract::UNKNOWN_EVENT.to_owned(),
            hookline_platform::contract::subject_token
        )
    );
    let envelope = envelope::build(
        VerifiedRequest {
            id,
            source: &source.name,
            event,
            scheme: source.verifier.scheme(),
            body,
            headers,
            received_at,
        },
        |name| !source.verifier.is_secret_header(name),
    );
    let payload = Bytes::from(envelope.encode_to_vec());
    // Only the id and event are needed from here on: the body is released
    // now rather than after the PubAck (it lives on in `payload`).
    let hookline_proto::Envelope {
        id,
        event: event_name,
        ..
    } = envelope;

    let publish_started = Instant::now();
    let outcome = inner
        .publisher
        .publish(Outgoing {
            subject,
            dedup_id: &dedup_id,
            source: &source.name,
            event: &event_name,
            payload,
        })
        .await;
    source
        .metrics
        .publish_seconds
        .record(publish_started.elapsed().as_secs_f64());
    match outcome {
        Ok(persisted) => {
            source.metrics.published.increment(1);
            if persisted.duplicate {
                source.metrics.duplicates.increment(1);
            }
            tracing::debug!(
                sequence = persisted.sequence,
                duplicate = persisted.duplicate,
                "persisted"
            );
            Ok(Accepted::Persisted {
                id,
                duplicate: persisted.duplicate,
                sequence: persisted.sequence,
            })
        }
        Err(cause) => {
            source.metrics.publish_failed(cause.reason());
            Err(IngestError::Unavailable {
                cause,
                retry_after: inner.retry_after,
            })
        }
    }
}

/// Reads the body, never buffering past `limit` and never waiting past `timeout`.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, IngestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(IngestError::BodyTooLarge { limit });
    }
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_elapsed) => Err(IngestError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => {
            Err(IngestError::BodyTooLarge { limit })
        }
        Ok(Err(error)) => Err(IngestError::BadBody(axum::Error::new(error))),
    }
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    let js = inner.publisher.jetstream();
    let problem = if js.client().connection_state() != async_nats::connection::State::Connected {
        Some("not connected to NATS")
    } else {
        match tokio::time::timeout(Duration::from_secs(2), js.get_stream(&inner.stream_name)).await
        {
            Ok(Ok(_)) => None,
            Ok(Err(_)) => Some("stream not available"),
            Err(_) => Some("JetStream not answering"),
        }
    };
    match problem {
        None => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not_ready", "reason": reason })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.inner.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => plain(
            StatusCode::NOT_FOUND,
            "not_found",
            "metrics are not enabled",
        ),
    }
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> Response {
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "webhooks are delivered with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}
