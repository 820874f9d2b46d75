//! `hookline console`: the operator's web console and its JSON API, served
//! from this binary (no CDN, no script: server-rendered HTML and one
//! stylesheet compiled in).
//!
//! | part | module |
//! |---|---|
//! | the router, start-up, who may listen where | here |
//! | token, login cookie, CSRF, Host check, security headers | [`guard`] |
//! | pages (maud: every value escaped) | [`pages`] |
//! | `/api/` (the typed reports as JSON) | [`api`] |
//! | the state-changing actions both call | [`actions`] |
//!
//! Every page and API call reads a bounded part of the streams: the
//! queries are in [`crate::webhooks`], [`crate::status`], [`crate::trace`]
//! and [`crate::dlq`], shared with the CLI.

pub mod actions;
pub mod api;
pub mod guard;
pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream;
use axum::Router;
use axum::routing::{get, post};
use hookline_platform::secret::Secret;

use crate::args::ConsoleArgs;
use crate::error::{Error, Result};
use crate::settings::Settings;

/// The port the console listens on (on 127.0.0.1) when neither `--listen`
/// nor `[console] listen` says.
pub const DEFAULT_PORT: u16 = 8899;

/// What every handler shares.
pub struct Console {
    /// The configuration.
    pub settings: Settings,
    /// JetStream.
    pub js: jetstream::Context,
    /// The token requests must carry (required off loopback).
    pub token: Option<Secret>,
    /// The CSRF token forms and POSTs carry.
    pub csrf: String,
    /// Where it listens (for the Host check).
    pub listen: SocketAddr,
}

/// Runs `hookline console` until Ctrl-C.
///
/// # Errors
/// A non-loopback address without a token (2), the address taken, NATS (1).
pub async fn run(settings: &Settings, args: &ConsoleArgs) -> Result<()> {
    let listen = args
        .listen
        .or(settings.console.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)));
    let listener = bind(listen).await?;
    let js = settings.connect().await?;
    let console = prepare(
        settings.clone(),
        js,
        listener.local_addr().unwrap_or(listen),
    )?;
    println!("console: {}", url(console.listen));
    serve(listener, console, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Binds the console's address.
///
/// # Errors
/// The address is taken or not ours (1).
pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::caused(format!("cannot listen on {listen} for the console"), e))
}

/// The console's state; refuses a non-loopback address without a token.
///
/// # Errors
/// No token for a non-loopback address, or the token cannot be read (2).
pub fn prepare(settings: Settings, js: jetstream::Context, listen: SocketAddr) -> Result<Console> {
    let token = match &settings.console.token {
        Some(source) => Some(
            source
                .resolve()
                .map_err(|e| Error::Usage(format!("[console] token: {e}")))?,
        ),
        None => None,
    };
    if token.is_none() && !listen.ip().is_loopback() {
        return Err(Error::Usage(format!(
            "the console would listen on {listen}, which is not a loopback address: set \
             [console] token = {{ env = \"HOOKLINE_CONSOLE_TOKEN\" }} (or listen on 127.0.0.1)"
        )));
    }
    Ok(Console {
        settings,
        js,
        token,
        csrf: guard::random_token()?,
        listen,
    })
}

/// The URL to open.
pub fn url(listen: SocketAddr) -> String {
    format!("http://{}/", crate::settings::reachable(listen))
}

/// Serves until `shutdown` completes.
///
/// # Errors
/// The server fails (1).
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Console,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(Arc::new(console)))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::caused("the console stopped", e))
}

/// Every route, behind the guard.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/webhooks", get(pages::webhooks))
        .route("/webhooks/{source}/{id}", get(pages::webhook))
        .route(
            "/webhooks/{source}/{id}/replay",
            post(pages::replay_webhook),
        )
        .route("/dlq", get(pages::dead_letters))
        .route("/dlq/replay", post(pages::redrive))
        .route("/dlq/purge", post(pages::purge))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/assets/console.css", get(pages::stylesheet))
        .route("/api/status", get(api::status))
        .route("/api/webhooks", get(api::webhooks))
        .route("/api/webhooks/{source}/{id}", get(api::webhook))
        .route(
            "/api/webhooks/{source}/{id}/replay",
            post(api::replay_webhook),
        )
        .route("/api/dlq", get(api::dead_letters))
        .route("/api/dlq/replay", post(api::redrive))
        .route("/api/dlq/purge", post(api::purge))
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            guard::check,
        ))
        .with_state(console)
}
