//! `hookline-sink`: the demo application endpoint of the topology
//! (`app` in docker-compose.yml, started by `scripts/topology`). The
//! processors' `http` handler posts every webhook to `POST /hooks`; the sink
//! answers 200, prints one JSON line per call and counts calls by
//! `Hookline-Id`, so a person (or the topology test) can see that each
//! webhook arrived once.
//!
//! ```text
//! hookline-sink [--listen 0.0.0.0:9000]
//! GET /received   {"<Hookline-Id>": <calls>, …}
//! GET /healthz    ok
//! ```
//! Replace it with your application: it only shows the contract (2xx =
//! handled; any other status is retried, then dead-lettered).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};

/// Calls received, by `Hookline-Id`.
type Received = Arc<Mutex<BTreeMap<String, u64>>>;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn hook(State(received): State<Received>, headers: HeaderMap, body: axum::body::Bytes) {
    let id = header(&headers, "hookline-id").to_owned();
    let line = serde_json::json!({
        "id": id,
        "source": header(&headers, "hookline-source"),
        "attempt": header(&headers, "hookline-attempt"),
        "body_bytes": body.len(),
    });
    println!("{line}");
    if let Ok(mut received) = received.lock() {
        *received.entry(id).or_default() += 1;
    }
}

async fn received(State(received): State<Received>) -> Json<BTreeMap<String, u64>> {
    Json(received.lock().map(|r| r.clone()).unwrap_or_default())
}

fn listen_address() -> anyhow::Result<SocketAddr> {
    let mut args = std::env::args().skip(1);
    let mut listen = "0.0.0.0:9000".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().context("--listen ADDRESS")?,
            other => bail!("unknown argument {other:?}: hookline-sink [--listen ADDRESS]"),
        }
    }
    listen.parse().with_context(|| format!("--listen {listen}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let listen = listen_address()?;
    let app = Router::new()
        .route("/hooks", post(hook))
        .route("/received", get(received))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Received::default());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!("hookline-sink: POST http://{listen}/hooks");
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await?;
    Ok(())
}

/// Ctrl-C or SIGTERM (as PID 1 in a container, SIGTERM has no default action).
async fn stopped() {
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
