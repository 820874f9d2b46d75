//! The HTTP surface: `POST /webhooks/{source}` (and `GET`/`HEAD` for the
//! providers whose handshakes use them), `/healthz`, `/readyz`, `/metrics`,
//! and JSON answers for unknown routes and wrong methods.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use hookline_platform::contract::WebhookKey;
use hookline_proto::Message;
use hookline_signature::Outcome;
use serde::Serialize;
use tracing::Instrument;

use crate::body::{BodyBounds, read_body};
use crate::envelope::{self, Fields, VerifiedRequest};
use crate::error::{IngestError, plain};
use crate::publish::{Outgoing, PublishError};
use crate::replay::Seen;
use crate::sources::Source;
use crate::state::{AppState, Inner};
use crate::telemetry::{self, UNKNOWN_SOURCE};

/// The public router: webhooks, health, and `/metrics` unless metrics are
/// served on a separate address (then see [`admin_router`]).
pub fn router(state: AppState) -> Router {
    // GET and HEAD reach only sources whose provider uses them (checked in
    // `receive`); everything else is 405.
    let webhooks = post(receive)
        .get(receive)
        .head(receive)
        .fallback(method_not_allowed);
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

/// The answers to an accepted request: a persisted webhook, or what the
/// provider's handshake expects (never published).
#[derive(Debug)]
enum Accepted {
    Persisted(Persisted),
    /// A replay caught by the source's replay guard: the first delivery's
    /// id; nothing was stored, so there is no sequence.
    Replay(Replay),
    Answer(hookline_signature::Response),
}

/// The JSON of a replay caught by the guard (`duplicate` is always true).
#[derive(Debug, Serialize)]
struct Replay {
    id: String,
    duplicate: bool,
}

/// The JSON of a persisted webhook.
#[derive(Debug, Serialize)]
struct Persisted {
    id: String,
    duplicate: bool,
    sequence: u64,
}

impl Accepted {
    fn into_response(self, source: &Source) -> Response {
        match self {
            // Adyen expects `[accepted]`; everyone else gets the JSON.
            Self::Persisted(persisted) => match source.verifier.accepted_response() {
                Some(answer) => answer_response(answer),
                None => Json(persisted).into_response(),
            },
            Self::Replay(replay) => match source.verifier.accepted_response() {
                Some(answer) => answer_response(answer),
                None => Json(replay).into_response(),
            },
            Self::Answer(answer) => answer_response(answer),
        }
    }
}

/// An answer decided by the signature crate, as an HTTP response.
fn answer_response(answer: hookline_signature::Response) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    for (name, value) in answer.headers {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Where the request went: its method and the public URL the provider called.
struct Target<'a> {
    method: &'a axum::http::Method,
    url: &'a str,
}

async fn receive(
    State(state): State<AppState>,
    source_name: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let body_started = tokio::time::Instant::now();
    // The request taken apart rather than extracted as `HeaderMap` + `Body`:
    // the `HeaderMap` extractor clones the whole map.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // A segment that does not decode (e.g. `%ff`) cannot name a source.
    let source = source_name
        .ok()
        .and_then(|Path(name)| state.inner.sources.get(&name));
    let Some(source) = source else {
        telemetry::rejected(UNKNOWN_SOURCE, "unknown_source");
        return IngestError::UnknownSource.into_response();
    };
    if !source.accepts(&parts.method) {
        return method_not_allowed().await;
    }
    let url = source.request_url(parts.uri.path(), parts.uri.query());
    let target = Target {
        method: &parts.method,
        url: &url,
    };
    // A debug span: nothing inside logs at info or above (rejections and
    // 503s are logged by the error's response, outside it), so at the
    // default level an info span only cost ~5 µs of CPU per request
    // (field formatting, registry bookkeeping, enter/exit on every poll).
    let span =
        tracing::debug_span!("webhook", source = %source.name, webhook_id = tracing::field::Empty);
    // Not wrapped at all when disabled: an `Instrumented` future still
    // enters and exits its (empty) span on every poll.
    let result = if span.is_disabled() {
        accept(&state, source, &headers, &target, body, body_started).await
    } else {
        accept(&state, source, &headers, &target, body, body_started)
            .instrument(span)
            .await
    };
    let response = match result {
        Ok(accepted) => {
            state.inner.outage.succeeded();
            accepted.into_response(source)
        }
        Err(error) => {
            if error.status().is_server_error() {
                state.inner.outage.failed(&error);
            }
            // 503s are counted as publish failures by `accept`; the rest are rejections.
            if !matches!(
                error,
                IngestError::Unavailable { .. }
                    | IngestError::Overloaded { .. }
                    | IngestError::Shed { .. }
                    | IngestError::ReplayGuard { .. }
            ) {
                source.metrics.rejected(error.reason());
            }
            // Some providers' protocols fix the rejection's answer (Figma 400).
            match (&error, source.verifier.rejection_response()) {
                (IngestError::Unauthorized(_), Some(answer)) => answer_response(answer),
                _ => error.into_response(),
            }
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
    target: &Target<'_>,
    body: Body,
    started: tokio::time::Instant,
) -> Result<Accepted, IngestError> {
    let inner = &state.inner;
    let received_at = inner.sources.now();
    source.metrics.received.increment(1);
    let declared = declared_length(headers);
    if declared.is_some_and(|len| len > source.max_body as u64) {
        return Err(IngestError::BodyTooLarge {
            limit: source.max_body,
        });
    }
    // Held until the answer: the body, then its Envelope, are in memory.
    let mut budget = inner.body_budget.reservation();
    let bounds = BodyBounds {
        limit: source.max_body,
        started,
        timeout: inner.body_timeout,
        min_rate: inner.min_body_rate,
        retry_after: inner.retry_after,
    };
    let read = read_body(body, declared, bounds, &mut budget)
        .await
        .inspect_err(|error| {
            if matches!(
                error,
                IngestError::Overloaded { .. } | IngestError::Shed { .. }
            ) {
                source.metrics.publish_failed(error.reason());
            }
        })?;
    let body = &read.buffer[read.offset..];

    let request = hookline_signature::Request::new(headers, body)
        .with_method(target.method.as_str())
        .with_url(target.url);
    let outcome = match source.verifier.receive(&request, received_at) {
        Err(rejection) => match captured_verifier(inner, source).await {
            Some(verifier) => verifier.receive(&request, received_at),
            None => Err(rejection),
        },
        outcome => outcome,
    };
    let verified = match outcome.map_err(IngestError::Unauthorized)? {
        Outcome::Deliver(verified) => verified,
        Outcome::Respond(answer) => return Ok(Accepted::Answer(answer)),
        Outcome::Capture { secret, response } => {
            return Ok(Accepted::Answer(
                capture(inner, source, &secret, response, received_at).await,
            ));
        }
    };
    // Verified: its bytes leave the share unauthenticated bodies may hold.
    budget.body_complete();
    if verified
        .event
        .as_ref()
        .is_some_and(|event| event.len() > envelope::MAX_EVENT_BYTES)
    {
        return Err(IngestError::EventTooLong {
            limit: envelope::MAX_EVENT_BYTES,
        });
    }
    source.metrics.verified.increment(1);

    let id = verified
        .id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| envelope::content_id(&source.name, body));
    tracing::Span::current().record("webhook_id", id.as_str());
    // Source names are validated when the config loads, so this holds.
    let key = WebhookKey::new(&source.name, &id).map_err(|_| IngestError::UnknownSource)?;
    let event = verified.event;
    let subject = format!(
        "{}{}",
        source.subject_prefix,
        event.as_deref().map_or_else(
            || hookline_platform::contract::UNKNOWN_EVENT.to_owned(),
            hookline_platform::contract::subject_token
        )
    );
    let keep = |name: &http::HeaderName| !source.verifier.is_secret_header(name);
    let event_name = event.unwrap_or_default();
    if let Some(guard) = &source.replay_guard {
        match guard.check(body, &id, &event_name).await {
            Ok(Seen::Publish) => {}
            Ok(Seen::Replay { first_id }) => {
                source.metrics.replays.increment(1);
                tracing::debug!(first_id, "replay of an earlier delivery");
                return Ok(Accepted::Replay(Replay {
                    id: first_id,
                    duplicate: true,
                }));
            }
            Err(cause) => {
                source.metrics.publish_failed("replay_guard");
                return Err(IngestError::ReplayGuard {
                    cause,
                    retry_after: inner.retry_after,
                });
            }
        }
    }
    // A body read into its place in the payload is neither copied again nor
    // wrapped in an Envelope: the other fields are appended from the
    // request. The body is released with the buffer once the payload is
    // made, not after the PubAck (it lives on in `payload`).
    let payload = if read.in_place {
        envelope::finish_payload(
            read.buffer,
            &Fields {
                id: &id,
                source: &source.name,
                event: &event_name,
                scheme: source.verifier.scheme(),
                headers,
                received_at,
            },
            keep,
        )
    } else {
        let envelope = envelope::build(
            VerifiedRequest {
                id: id.clone(),
                source: &source.name,
                event: Some(event_name.clone()),
                scheme: source.verifier.scheme(),
                body: read.buffer.freeze(),
                headers,
                received_at,
            },
            keep,
        );
        Bytes::from(envelope.encode_to_vec())
    };

    let publish_started = Instant::now();
    let outcome = inner
        .publisher
        .publish(Outgoing {
            subject,
            dedup_id: key.message_id(),
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
            Ok(Accepted::Persisted(Persisted {
                id,
                duplicate: persisted.duplicate,
                sequence: persisted.sequence,
            }))
        }
        // The Envelope does not fit the server's `max_payload` (start-up
        // checks make this rare: an id or event from a huge body): no retry
        // can succeed, so 413, never 503.
        Err(PublishError::TooLarge(_)) => Err(IngestError::BodyTooLarge {
            limit: source.max_body,
        }),
        Err(cause) => {
            source.metrics.publish_failed(cause.reason());
            Err(IngestError::Unavailable {
                cause,
                retry_after: inner.retry_after,
            })
        }
    }
}

/// Keeps a secret handed over in a handshake (Asana, Notion) when the
/// source's capture window is open; refuses (403) otherwise, so the provider
/// does not go live with a secret Hookline does not hold. The secret is never
/// logged.
async fn capture(
    inner: &Inner,
    source: &Source,
    secret: &str,
    response: hookline_signature::Response,
    now: std::time::SystemTime,
) -> hookline_signature::Response {
    let Some(captures) = &inner.captures else {
        return hookline_signature::Response::empty(403);
    };
    match captures.capture(&source.name, secret, now).await {
        Ok(()) => {
            tracing::info!(source = %source.name, "secret captured from the provider's handshake");
            response
        }
        Err(error) => {
            tracing::warn!(source = %source.name, %error, "handshake secret refused");
            hookline_signature::Response::empty(403)
        }
    }
}

/// For a source that captured its secret from a handshake: a verifier with
/// that secret (`None` for other sources, or before a capture).
async fn captured_verifier(inner: &Inner, source: &Source) -> Option<hookline_signature::Verifier> {
    let spec = source.captures.as_ref()?;
    let secret = inner.captures.as_ref()?.secret(&source.name).await.ok()??;
    hookline_signature::Verifier::new(spec, &[&secret[..]], None).ok()
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
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
