//! Retryable failures are redelivered after exponentially growing delays
//! (client-side nak delays, no server BackOff), then succeed; a handler's
//! own Retry-After wins, capped at backoff.max.

use hookline_tests::processor as support;

use std::time::Duration;

use hookline_processor::{BackoffConfig, Outcome};
use hookline_tests::publish::{TestWebhook, publish};
use support::{Action, Env, Scripted, assert_gap, gaps, processor, spawn};

const SLACK: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_back_off_exponentially_then_succeed() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let handler = Scripted::new(|webhook| {
        if webhook.delivery.attempt < 4 {
            Action::Return(Outcome::retry("downstream not ready"))
        } else {
            Action::Return(Outcome::Success)
        }
    });
    let mut config = processor("retries");
    config.max_deliver = 6;
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(5),
    };
    let running = spawn(&env, env.config(config), handler.clone()).await?;
    publish(
        &env.js,
        &TestWebhook::new("stripe", "invoice.paid", "evt_1", "{}"),
    )
    .await?;

    let calls = handler.wait_calls(4, Duration::from_secs(20)).await?;
    let attempts: Vec<u32> = calls.iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    let gaps = gaps(&calls);
    for (n, (gap, expected)) in gaps.iter().zip([200, 400, 800]).enumerate() {
        assert_gap(
            *gap,
            Duration::from_millis(expected),
            SLACK,
            &format!("retry {}", n + 1),
        );
    }
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "delays must grow: {gaps:?}"
    );

    env.wait_settled("retries", Duration::from_secs(10)).await?;
    assert_eq!(handler.calls().len(), 4, "acked after the success");
    assert_eq!(
        env.consumer_info("retries").await?.config.backoff,
        Vec::<Duration>::new()
    );
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_from_the_handler_wins_and_is_capped() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let handler = Scripted::new(|webhook| match webhook.delivery.attempt {
        1 => Action::Return(Outcome::retry_after(Duration::from_millis(900), "429")),
        2 => Action::Return(Outcome::retry_after(Duration::from_secs(3_600), "503")),
        _ => Action::Return(Outcome::Success),
    });
    let mut config = processor("retry-after");
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(1_500),
    };
    let running = spawn(&env, env.config(config), handler.clone()).await?;
    publish(&env.js, &TestWebhook::new("github", "push", "d-1", "{}")).await?;

    let calls = handler.wait_calls(3, Duration::from_secs(20)).await?;
    let gaps = gaps(&calls);
    // Retry-After is used as is (no jitter): ±10 % in assert_gap is room enough.
    assert_gap(
        gaps[0],
        Duration::from_millis(900),
        SLACK,
        "Retry-After 900ms",
    );
    assert_gap(
        gaps[1],
        Duration::from_millis(1_500),
        SLACK,
        "Retry-After 1h capped at max",
    );
    env.wait_settled("retry-after", Duration::from_secs(10))
        .await?;
    running.stop().await
}
