//! The binary's operations endpoints: `GET /metrics` (Prometheus text),
//! `GET /healthz` (the process is alive) and `GET /readyz` (NATS connected
//! and the group's consumer present).

use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream;
use axum::Router;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long `/readyz` waits for the server.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often histogram buckets are drained into the rendered output.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// What the endpoints read.
#[derive(Clone)]
pub struct AdminState {
    /// The Prometheus recorder's handle (`None`: `/metrics` answers 404).
    pub metrics: Option<PrometheusHandle>,
    /// The JetStream context the processor runs on.
    pub js: jetstream::Context,
    /// The `WEBHOOKS` stream's name.
    pub stream: String,
    /// The group (consumer name).
    pub group: String,
}

/// The router serving `/metrics`, `/healthz` and `/readyz`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown`, refreshing histograms.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Some(handle) = state.metrics.clone() {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = interval.tick() => handle.run_upkeep(),
                }
            }
        });
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn metrics(Extract(state): Extract<AdminState>) -> (StatusCode, String) {
    match &state.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled\n".to_owned(),
        ),
    }
}

async fn ready(Extract(state): Extract<AdminState>) -> (StatusCode, &'static str) {
    if state.js.client().connection_state() != State::Connected {
        return (StatusCode::SERVICE_UNAVAILABLE, "nats disconnected\n");
    }
    let consumer = async {
        let stream = state.js.get_stream(&state.stream).await.ok()?;
        stream.consumer_info(&state.group).await.ok()
    };
    match tokio::time::timeout(READY_TIMEOUT, consumer).await {
        Ok(Some(_)) => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "consumer not available\n"),
    }
}
