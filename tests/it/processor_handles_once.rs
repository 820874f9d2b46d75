//! The same webhook id delivered again past the stream's duplicate window
//! (a late provider retry, a replay) runs the handler once per group; a
//! second delivery while the first is still running is not run either.

use hookline_tests::processor as support;

use std::time::{Duration, Instant};

use async_nats::jetstream::publish::PublishAck;
use hookline_platform::streams::StreamConfig;
use hookline_processor::Outcome;
use hookline_tests::publish::{TestWebhook, publish};
use support::{Action, Env, Scripted, processor, spawn, stream_config};

/// A stream that forgets `Nats-Msg-Id`s after one second.
fn short_dedup() -> StreamConfig {
    StreamConfig {
        duplicate_window: Duration::from_secs(1),
        ..stream_config()
    }
}

/// Publishes until the stream accepts the webhook as new (the duplicate
/// window has passed): the condition observed, not a sleep.
async fn publish_past_window(env: &Env, webhook: &TestWebhook) -> anyhow::Result<PublishAck> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ack = publish(&env.js, webhook).await?;
        if !ack.duplicate {
            return Ok(ack);
        }
        anyhow::ensure!(Instant::now() < deadline, "still a duplicate after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_past_the_duplicate_window_is_acked_without_running() -> anyhow::Result<()> {
    let env = Env::start_with(short_dedup()).await?;
    let handler = Scripted::succeeding();
    let running = spawn(&env, env.config(processor("once")), handler.clone()).await?;
    let webhook = TestWebhook::new("stripe", "invoice.paid", "evt_once", "{}");

    let first = publish(&env.js, &webhook).await?;
    handler.wait_calls(1, Duration::from_secs(10)).await?;
    env.wait_settled("once", Duration::from_secs(10)).await?;
    let second = publish_past_window(&env, &webhook).await?;
    assert_ne!(
        first.sequence, second.sequence,
        "two messages in the stream"
    );
    env.wait_settled("once", Duration::from_secs(10)).await?;

    let calls = handler.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].key, "stripe:evt_once");

    // After a restart too: the record lives in KV, not in memory.
    running.stop().await?;
    let running = spawn(&env, env.config(processor("once")), handler.clone()).await?;
    publish_past_window(&env, &webhook).await?;
    env.wait_settled("once", Duration::from_secs(10)).await?;
    assert_eq!(handler.calls().len(), 1);

    // Another group has its own record and handles it once too.
    let other = Scripted::succeeding();
    let audit = spawn(&env, env.config(processor("audit")), other.clone()).await?;
    env.wait_settled("audit", Duration::from_secs(10)).await?;
    assert_eq!(
        other.calls().len(),
        1,
        "3 messages of one webhook, one run in group audit"
    );
    audit.stop().await?;
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_delivery_while_the_first_runs_is_not_run_concurrently() -> anyhow::Result<()> {
    let env = Env::start_with(short_dedup()).await?;
    // The first call takes 3 s; two instances of one group share the work.
    let handler = Scripted::new(|_| Action::Sleep(Duration::from_secs(3), Outcome::Success));
    let mut config = processor("slow");
    config.ack_wait = Duration::from_secs(1); // the handler outlives it: in-progress acks keep it
    let a = spawn(&env, env.config(config.clone()), handler.clone()).await?;
    let b = spawn(&env, env.config(config), handler.clone()).await?;
    env.wait_pulling("slow", 2, Duration::from_secs(10)).await?;
    let webhook = TestWebhook::new("github", "push", "hook:delivery-7", "{}");

    publish(&env.js, &webhook).await?;
    handler.wait_calls(1, Duration::from_secs(10)).await?;
    let started = Instant::now();
    publish_past_window(&env, &webhook).await?;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "second copy published while the first runs"
    );
    env.wait_settled("slow", Duration::from_secs(15)).await?;

    let calls = handler.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0].attempt, 1,
        "no redelivery while the handler ran past ack_wait"
    );
    a.stop().await?;
    b.stop().await
}
