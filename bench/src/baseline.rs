//! The bare baselines, run as child processes of the bench (`hookline-bench
//! baseline …`, `hookline-bench raw-consume …`) so that they pay for their
//! own runtime and memory just like the real binaries:
//!
//! - **ingest baseline**: the minimum a verifying webhook receiver does with
//!   today's dependencies: axum reads the body, GitHub HMAC-SHA256 is checked
//!   (`Mac::verify_slice`), the raw body is published to JetStream with
//!   `Nats-Msg-Id`, the PubAck is awaited, then 200. No envelope, no
//!   metrics, no tracing, no limits.
//! - **processor baseline**: a durable pull consumer with explicit acks that
//!   acks every message as it arrives.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, message::PublishMessage};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use futures::StreamExt as _;
use hmac::{Hmac, Mac as _};
use hookline_platform::contract::WebhookKey;
use sha2::Sha256;

/// The environment variable holding the GitHub secret of the bench source.
pub(crate) const SECRET_ENV: &str = "BENCH_GITHUB_SECRET";

struct Baseline {
    js: jetstream::Context,
    mac: Hmac<Sha256>,
}

/// `baseline --nats URL --listen ADDR`: serves `POST /webhooks/github`.
pub(crate) async fn serve(args: &[String]) -> anyhow::Result<()> {
    let nats = flag(args, "--nats")?;
    let listen: SocketAddr = flag(args, "--listen")?.parse()?;
    let secret = std::env::var(SECRET_ENV).with_context(|| format!("{SECRET_ENV} not set"))?;
    let client = async_nats::connect(nats).await?;
    let state = Arc::new(Baseline {
        js: jetstream::new(client),
        mac: Hmac::<Sha256>::new_from_slice(secret.as_bytes())?,
    });
    let app = Router::new()
        .route("/webhooks/github", post(receive))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn receive(
    State(state): State<Arc<Baseline>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signature) = header("x-hub-signature-256")
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|hex| hex::decode(hex).ok())
    else {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"signature\"}");
    };
    let mut mac = state.mac.clone();
    mac.update(&body);
    if mac.verify_slice(&signature).is_err() {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"signature\"}");
    }
    let (Some(hook), Some(delivery)) = (header("x-github-hook-id"), header("x-github-delivery"))
    else {
        return (StatusCode::BAD_REQUEST, "{\"error\":\"id\"}");
    };
    let Ok(key) = WebhookKey::new("github", &format!("{hook}:{delivery}")) else {
        return (StatusCode::BAD_REQUEST, "{\"error\":\"id\"}");
    };
    let message = PublishMessage::build()
        .message_id(key.message_id())
        .payload(body);
    match state.js.send_publish("webhooks.github.push", message).await {
        Ok(ack) => match ack.await {
            Ok(_) => (StatusCode::OK, "{\"ok\":true}"),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"ack\"}"),
        },
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"publish\"}"),
    }
}

/// `raw-consume --nats URL --stream NAME --group NAME --batch N`: acks
/// every message of a new durable pull consumer until killed.
pub(crate) async fn raw_consume(args: &[String]) -> anyhow::Result<()> {
    let nats = flag(args, "--nats")?;
    let stream_name = flag(args, "--stream")?;
    let group = flag(args, "--group")?;
    let batch: usize = flag(args, "--batch")?.parse()?;
    let js = jetstream::new(async_nats::connect(nats).await?);
    let stream = js.get_stream(stream_name).await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(group.to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            filter_subject: "webhooks.>".to_owned(),
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await?;
    while let Some(message) = messages.next().await {
        match message {
            Ok(message) => {
                if let Err(error) = message.ack().await {
                    eprintln!("raw-consume: ack failed: {error}");
                }
            }
            Err(error) => eprintln!("raw-consume: {error}"),
        }
    }
    Ok(())
}

fn flag<'a>(args: &'a [String], name: &str) -> anyhow::Result<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .with_context(|| format!("missing {name}"))
}
