//! Regression test for a processor bug found by chaos scenario 3 (a
//! nats-server SIGKILLed and restarted under load: a webhook was handled
//! twice, both runs "attempt 1", 4.1 s apart, with no processor killed).
//!
//! When the handler succeeds just as the connection to NATS dies, the
//! processor's `done` record write and its ack are lost with the
//! connection. The worker logs "handled, but the done record was not
//! written", acks (also lost) and forgets the outcome. The message is
//! redelivered after `ack_wait`, the record still says `claimed` with a
//! lapsed lease, and the handler runs a second time to completion.
//! Fixed: on a failed (non-conflict) `done` write the worker keeps the
//! outcome and retries the write until it lands, and a redelivery reaching
//! the same instance meanwhile waits for that worker (`in_flight`) instead
//! of taking the lapsed claim over; it then finds `done` and is acked as a
//! duplicate.
//!
//! The test puts a TCP proxy between the processor and NATS that, while the
//! handler finishes, swallows what the processor sends (as a server killed
//! mid-stream does) and then drops the connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_platform::streams::StreamConfig;
use hookline_tests::NatsServer;
use hookline_tests::process::{Process, free_port, wait_ready};
use hookline_tests::publish::{TestWebhook, publish};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// A TCP proxy to NATS. While `swallowing`, bytes from the client are read
/// and dropped (as by a server killed before it read them); `cut` closes
/// every proxied connection, so the client reconnects through the proxy.
struct Proxy {
    port: u16,
    swallowing: Arc<AtomicBool>,
    cut: Arc<Mutex<CancellationToken>>,
}

impl Proxy {
    async fn start(upstream: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let swallowing = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let (swallow, cuts) = (swallowing.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let token = cuts.lock().map(|t| t.clone()).unwrap_or_default();
                let swallow = swallow.clone();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream_token = token.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = tokio::select! {
                            () = upstream_token.cancelled() => break,
                            read = client_read.read(&mut buf) => match read {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            },
                        };
                        if !swallow.load(Ordering::SeqCst)
                            && server_write.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = tokio::select! {
                            () = token.cancelled() => break,
                            read = server_read.read(&mut buf) => match read {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            },
                        };
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Self {
            port,
            swallowing,
            cut,
        })
    }

    /// Drops every open connection and stops swallowing.
    fn cut_all(&self) {
        if let Ok(mut token) = self.cut.lock() {
            token.cancel();
            *token = CancellationToken::new();
        }
        self.swallowing.store(false, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Sink {
    successes: Mutex<u32>,
    release: Notify,
}

#[tokio::test]
async fn a_handler_that_succeeds_while_nats_is_away_runs_once() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let proxy = Proxy::start(nats.port()).await?;
    let js = async_nats::jetstream::new(nats.client().await?);
    StreamConfig {
        max_bytes: hookline_platform::config::ByteSize(64 << 20),
        dlq_max_bytes: hookline_platform::config::ByteSize(16 << 20),
        ..StreamConfig::default()
    }
    .declare(&js)
    .await?;

    // The sink reports each call, and answers 200 only when released.
    let sink = Arc::new(Sink::default());
    let (called, mut calls) = mpsc::unbounded_channel::<()>();
    let state = sink.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let (state, called) = (state.clone(), called.clone());
            async move {
                let _ = called.send(());
                state.release.notified().await;
                if let Ok(mut successes) = state.successes.lock() {
                    *successes += 1;
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let admin = free_port()?;
    let proxy_port = proxy.port;
    let mut processor = Process::spawn(
        "hookline-processor",
        &format!(
            "[nats]\nurl = \"nats://127.0.0.1:{proxy_port}\"\nrequest_timeout = \"1s\"\nping_interval = \"1s\"\n\
             [stream]\nmax_bytes = \"64MiB\"\ndlq_max_bytes = \"16MiB\"\n\
             [processor]\ngroup = \"once\"\nack_wait = \"2s\"\nbackoff = {{ initial = \"100ms\", max = \"1s\" }}\n\
             metrics_listen = \"127.0.0.1:{admin}\"\nhandler = {{ http = {{ url = \"{url}\", timeout = \"30s\" }} }}\n",
        ),
        &[("RUST_LOG", "info")],
    )?;
    wait_ready(
        &mut processor,
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    publish(
        &js,
        &TestWebhook::new("shop", "orders/create", "order-1", "{}"),
    )
    .await?;

    // The handler is running: from now on the processor's writes vanish;
    // let the handler succeed; then the connection drops.
    tokio::time::timeout(Duration::from_secs(20), calls.recv()).await?;
    proxy.swallowing.store(true, Ordering::SeqCst);
    sink.release.notify_one();
    tokio::time::sleep(Duration::from_secs(2)).await; // past request_timeout
    proxy.cut_all();

    // Once NATS is back, the processor must record the success it had
    // (before the fix the record stayed `claimed`, so the redelivery ran
    // again: chaos scenario 3 saw exactly that).
    let webhook = TestWebhook::new("shop", "orders/create", "order-1", "{}");
    let key = webhook.key().record_key("once");
    let js = async_nats::jetstream::new(nats.client().await?);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let record = loop {
        let record = match js.get_key_value("hookline_idempotency").await {
            Ok(store) => store
                .get(&key)
                .await
                .ok()
                .flatten()
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
            Err(_) => None,
        };
        let done = record.as_deref().is_some_and(|r| r.contains("\"done\""));
        if done || std::time::Instant::now() > deadline {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        record.as_deref().is_some_and(|r| r.contains("\"done\"")),
        "after the connection came back the record of a handled webhook is {record:?}, not done (runs > 1: the handler ran again)"
    );

    // Well past ack_wait and the backoff: a second run would have happened.
    let second = tokio::time::timeout(Duration::from_secs(10), calls.recv()).await;
    sink.release.notify_one(); // let a second run finish, if there is one
    tokio::time::sleep(Duration::from_millis(200)).await;
    let successes = *sink.successes.lock().map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(
        second.is_err() && successes == 1,
        "the handler ran {successes} times to completion:\n{}",
        processor.output()?
    );
    Ok(())
}
