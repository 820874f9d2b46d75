//! Serving: the public listener (and an optional admin listener), both
//! stopping on the shutdown token after in-flight requests finish.
//!
//! Each connection is served by hyper's HTTP/1 server with a header read
//! timeout (`ingest.header_timeout`), so a client that dribbles its request
//! head (slowloris) or holds an idle keep-alive connection is disconnected
//! within that bound; a slow body is bounded by `ingest.body_timeout` in
//! the handler (408). `axum::serve` sets no such timeout, hence this loop.
//!
//! hyper's own answers to requests it cannot parse (400, 431) get JSON
//! bodies from [`crate::parse_errors`].
//!
//! Each listener holds at most `ingest.max_connections` connections: one
//! more is answered a canned 503 and closed at once, without reading it
//! (`hookline_ingest_open_connections` and
//! `hookline_ingest_connections_refused_total`).

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::parse_errors::{Answered, JsonParseErrors};
use crate::routes::{admin_router, router};
use crate::state::AppState;

/// Most header fields accepted in one request; more is answered 431. This
/// is hyper's own limit, which it enforces for free: configuring the same
/// number explicitly (`max_headers`) makes hyper initialise two 100-entry
/// arrays on every request instead (~1,100 instructions, of ~70,000).
pub const MAX_HEADERS: usize = 100;
/// Largest request head (request line and headers) accepted; more is
/// answered 431. Webhook heads are a few KiB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// A connection's read buffer never grows past this (hyper's default is
/// ~400 KiB, which 256 connections streaming large bodies all reach).
const MAX_READ_BUFFER: usize = MAX_HEADER_BYTES + 16 * 1024;

/// Serves the public router on `listener` (and the admin router on
/// `admin`, when given) until `shutdown` is cancelled, drains in-flight
/// requests, then flushes the NATS connection.
///
/// # Errors
/// None today: accept errors are logged and retried, never fatal. The
/// `Result` keeps room for listener failures that should stop the service.
pub async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let limits = ConnectionLimits {
        header_timeout: state.inner.header_timeout,
        max_connections: state.inner.max_connections,
        retry_after: state.inner.retry_after,
    };
    let public = serve_router(
        listener,
        router(state.clone()),
        limits,
        "public",
        shutdown.clone(),
    );
    match admin {
        Some(admin) => {
            let admin = serve_router(
                admin,
                admin_router(state.clone()),
                limits,
                "admin",
                shutdown,
            );
            tokio::join!(public, admin);
        }
        None => public.await,
    }
    if let Err(error) = state.nats().flush().await {
        tracing::warn!(%error, "could not flush NATS on shutdown");
    }
    Ok(())
}

/// What bounds each listener's connections.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    header_timeout: Duration,
    max_connections: usize,
    retry_after: Duration,
}

/// Accepts connections until `shutdown`, then asks every open connection to
/// finish its in-flight request and close, and waits for them all.
async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    name: &'static str,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = metrics::gauge!("hookline_ingest_open_connections", "listener" => name);
    let refused =
        metrics::counter!("hookline_ingest_connections_refused_total", "listener" => name);
    let refusal = refusal(limits.retry_after);
    let header_timeout = limits.header_timeout;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Per-connection failures (reset before accept) and resource
                // exhaustion (EMFILE): never stop serving; pause on the latter.
                tracing::warn!(%error, "accepting a connection failed");
                if !is_connection_error(&error) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            refused.increment(1);
            refuse(&stream, &refusal);
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let answered = Answered::default();
        let io = TokioIo::new(JsonParseErrors::new(stream, answered.clone()));
        let tower = TowerToHyperService::new(app.clone());
        let service = hyper::service::service_fn(move |request| {
            let response = tower.call(request);
            let answered = answered.clone();
            async move {
                let response = response.await;
                answered.one_more();
                response
            }
        });
        // A child token per connection: the select below polls it on every
        // wake-up of the connection, and the shared token's lock and notifier
        // would be contended by every connection at once.
        let shutdown = shutdown.child_token();
        let open = open.clone();
        open.increment(1.0);
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(MAX_HEADER_BYTES)
                .max_buf_size(MAX_READ_BUFFER);
            let mut connection = pin!(builder.serve_connection(io, service));
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection closed with an error");
            }
            open.decrement(1.0);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// The canned answer to a connection over the cap.
fn refusal(retry_after: Duration) -> Vec<u8> {
    let body = r#"{"error":"unavailable","message":"too many connections; retry later"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        retry_after.as_secs().max(1),
        body.len()
    )
    .into_bytes()
}

/// Answers 503 without waiting (whatever the socket takes now) and closes:
/// a refused connection costs no task, no buffer and no timer.
fn refuse(stream: &TcpStream, refusal: &[u8]) {
    if let Err(error) = stream.try_write(refusal) {
        tracing::debug!(%error, "could not answer a refused connection");
    }
}

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
