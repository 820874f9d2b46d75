//! The built-in `http` handler against a real HTTP server: what it sends,
//! and how statuses, Retry-After, timeouts and refused connections map to
//! success, retry and dead letter.

use hookline_tests::processor as support;

use std::sync::Arc;
use std::time::Duration;

use hookline_platform::contract::HEADER_DLQ_REASON;
use hookline_processor::BackoffConfig;
use hookline_processor::handlers::HttpHandler;
use hookline_tests::publish::{TestWebhook, publish};
use support::{Env, Reply, Sink, assert_gap, processor, spawn};

fn handler(url: &str, timeout: Duration) -> anyhow::Result<Arc<HttpHandler>> {
    Ok(Arc::new(HttpHandler::new(url, timeout)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_the_body_and_headers_with_an_idempotency_key() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::ok().await?;
    let running = spawn(
        &env,
        env.config(processor("fwd")),
        handler(&sink.url, Duration::from_secs(5))?,
    )
    .await?;
    let mut webhook = TestWebhook::new("github", "push", "42:d-1", br#"{"ref":"main"}"#.to_vec());
    webhook.headers = vec![
        ("x-github-event".into(), "push".into()),
        ("x-github-delivery".into(), "d-1".into()),
        ("idempotency-key".into(), "spoofed".into()),
        ("hookline-id".into(), "spoofed".into()),
    ];
    publish(&env.js, &webhook).await?;

    let requests = sink.wait_requests(1, Duration::from_secs(10)).await?;
    let request = &requests[0];
    assert_eq!(request.body.as_ref(), br#"{"ref":"main"}"#);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-github-event"), Some("push"));
    assert_eq!(request.header("x-github-delivery"), Some("d-1"));
    assert_eq!(request.header("hookline-id"), Some("42:d-1"));
    assert_eq!(request.header("hookline-source"), Some("github"));
    assert_eq!(request.header("hookline-event"), Some("push"));
    assert_eq!(request.header("hookline-attempt"), Some("1"));
    assert_eq!(request.header("idempotency-key"), Some("github:42:d-1"));
    env.wait_settled("fwd", Duration::from_secs(10)).await?;
    assert_eq!(sink.requests().len(), 1);
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_statuses_honour_retry_after() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::start(|_, earlier| match earlier {
        0 => Reply::StatusWith(503, vec![("retry-after", "1".into())]),
        1 => Reply::Status(429),
        2 => Reply::Status(408),
        _ => Reply::Status(204),
    })
    .await?;
    let mut config = processor("statuses");
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    let running = spawn(
        &env,
        env.config(config),
        handler(&sink.url, Duration::from_secs(5))?,
    )
    .await?;
    publish(
        &env.js,
        &TestWebhook::new("stripe", "invoice.paid", "evt_s", "{}"),
    )
    .await?;

    let requests = sink.wait_requests(4, Duration::from_secs(15)).await?;
    let at: Vec<_> = requests.iter().map(|r| r.at).collect();
    let slack = Duration::from_millis(400);
    assert_gap(
        at[1] - at[0],
        Duration::from_secs(1),
        slack,
        "503 with Retry-After: 1",
    );
    assert_gap(
        at[2] - at[1],
        Duration::from_millis(200),
        slack,
        "429: delay(2)",
    );
    assert_gap(
        at[3] - at[2],
        Duration::from_millis(400),
        slack,
        "408: delay(3)",
    );
    let attempts: Vec<_> = requests
        .iter()
        .map(|r| r.header("hookline-attempt").unwrap_or(""))
        .collect();
    assert_eq!(attempts, ["1", "2", "3", "4"]);
    env.wait_settled("statuses", Duration::from_secs(10))
        .await?;
    assert_eq!(sink.requests().len(), 4);
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_is_permanent() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::start(|_, _| Reply::Status(422)).await?;
    let running = spawn(
        &env,
        env.config(processor("strict")),
        handler(&sink.url, Duration::from_secs(5))?,
    )
    .await?;
    publish(
        &env.js,
        &TestWebhook::new("slack", "event_callback", "Ev9", "{}"),
    )
    .await?;

    let letters = env.dead_letters(1, Duration::from_secs(10)).await?;
    let reason = letters[0]
        .headers
        .get(HEADER_DLQ_REASON)
        .map(|v| v.to_string());
    assert_eq!(
        reason.as_deref(),
        Some("permanent failure: handler endpoint answered 422 Unprocessable Entity")
    );
    env.wait_settled("strict", Duration::from_secs(10)).await?;
    assert_eq!(sink.requests().len(), 1);
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_refused_connections_are_retried() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::start(|_, earlier| {
        if earlier == 0 {
            Reply::After(Duration::from_secs(3), 200)
        } else {
            Reply::Status(200)
        }
    })
    .await?;
    let running = spawn(
        &env,
        env.config(processor("slow")),
        handler(&sink.url, Duration::from_millis(300))?,
    )
    .await?;
    publish(
        &env.js,
        &TestWebhook::new("stripe", "invoice.paid", "evt_t", "{}"),
    )
    .await?;
    sink.wait_requests(2, Duration::from_secs(10)).await?;
    env.wait_settled("slow", Duration::from_secs(10)).await?;
    running.stop().await?;

    // Nothing listens on a port we just released: every attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut config = processor("refused");
    config.max_deliver = 2;
    let running = spawn(
        &env,
        env.config(config),
        handler(
            &format!("http://127.0.0.1:{port}/hooks"),
            Duration::from_secs(1),
        )?,
    )
    .await?;
    publish(
        &env.js,
        &TestWebhook::new("github", "push", "h:refused", "{}"),
    )
    .await?;
    let letters = env.dead_letters(1, Duration::from_secs(10)).await?;
    let reason = letters[0]
        .headers
        .get(HEADER_DLQ_REASON)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(
        reason.starts_with("attempt 2 of 2 failed: request failed"),
        "{reason}"
    );
    running.stop().await
}
