//! Serving: the public listener (and an optional admin listener), both
//! stopping on the shutdown token after in-flight requests finish.
//!
//! Each connection is served by hyper's HTTP/1 server with a header read
//! timeout (`ingest.header_timeout`), so a client that dribbles its request
//! head (slowloris) or holds an idle keep-alive connection is disconnected
//! within that bound; a slow body is bounded by `ingest.body_timeout` in
//! the handler (408). `axum::serve` sets no such timeout, hence this loop.

use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
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
    let header_timeout = state.inner.header_timeout;
    let public = serve_router(
        listener,
        router(state.clone()),
        header_timeout,
        shutdown.clone(),
    );
    match admin {
        Some(admin) => {
            let admin = serve_router(admin, admin_router(state.clone()), header_timeout, shutdown);
            tokio::join!(public, admin);
        }
        None => public.await,
    }
    if let Err(error) = state.nats().flush().await {
        tracing::warn!(%error, "could not flush NATS on shutdown");
    }
    Ok(())
}

/// Accepts connections until `shutdown`, then asks every open connection to
/// finish its in-flight request and close, and waits for them all.
async fn serve_router(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
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
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(app.clone());
        // A child token per connection: the select below polls it on every
        // wake-up of the connection, and the shared token's lock and notifier
        // would be contended by every connection at once.
        let shutdown = shutdown.child_token();
        connections.spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(MAX_HEADER_BYTES)
                .max_buf_size(MAX_READ_BUFFER);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
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
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
