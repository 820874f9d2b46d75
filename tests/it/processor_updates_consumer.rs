//! Restarting a group with a different configuration updates its durable
//! consumer in place (create-or-update), and the new backoff applies.

use hookline_tests::processor as support;

use std::time::Duration;

use async_nats::jetstream::consumer::AckPolicy;
use hookline_processor::{BackoffConfig, Outcome};
use hookline_tests::publish::{TestWebhook, publish};
use support::{Action, Env, Scripted, assert_gap, gaps, processor, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_new_settings_updates_the_consumer() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let handler = Scripted::new(|webhook| {
        if webhook.delivery.attempt == 1 {
            Action::Return(Outcome::retry("once"))
        } else {
            Action::Return(Outcome::Success)
        }
    });

    let mut first = processor("orders");
    first.subjects = vec!["webhooks.shopify.>".into()];
    first.ack_wait = Duration::from_secs(5);
    first.max_deliver = 3;
    first.max_ack_pending = 500;
    first.backoff = BackoffConfig {
        initial: Duration::from_secs(3),
        max: Duration::from_secs(30),
    };
    let running = spawn(&env, env.config(first), handler.clone()).await?;
    env.wait_pulling("orders", 1, Duration::from_secs(10))
        .await?;
    let info = env.consumer_info("orders").await?;
    assert_eq!(info.config.durable_name.as_deref(), Some("orders"));
    assert_eq!(info.config.ack_policy, AckPolicy::Explicit);
    assert_eq!(info.config.ack_wait, Duration::from_secs(5));
    assert_eq!(
        info.config.max_deliver, 4,
        "max_deliver + 1 reserved delivery"
    );
    assert_eq!(
        info.config.filter_subjects,
        ["webhooks.shopify.>", "replay.orders.>"],
        "the configured subjects plus the group's replay subjects"
    );
    assert_eq!(info.config.max_ack_pending, 500);
    assert!(info.config.backoff.is_empty(), "no server-side BackOff");
    running.stop().await?;

    let mut second = processor("orders");
    second.subjects = vec!["webhooks.shopify.>".into(), "webhooks.stripe.>".into()];
    second.ack_wait = Duration::from_secs(7);
    second.max_deliver = 6;
    second.max_ack_pending = 2_000;
    second.backoff = BackoffConfig {
        initial: Duration::from_millis(300),
        max: Duration::from_secs(2),
    };
    let running = spawn(&env, env.config(second), handler.clone()).await?;
    env.wait_pulling("orders", 1, Duration::from_secs(10))
        .await?;
    let info = env.consumer_info("orders").await?;
    assert_eq!(info.config.ack_wait, Duration::from_secs(7));
    assert_eq!(info.config.max_deliver, 7);
    assert_eq!(
        info.config.filter_subjects,
        ["webhooks.shopify.>", "webhooks.stripe.>", "replay.orders.>"]
    );
    assert_eq!(info.config.max_ack_pending, 2_000);
    assert!(info.config.backoff.is_empty());

    // The new filter and the new backoff are live: a stripe webhook, retried after ≈300 ms (not 3 s).
    publish(
        &env.js,
        &TestWebhook::new("stripe", "invoice.paid", "evt_new", "{}"),
    )
    .await?;
    let calls = handler.wait_calls(2, Duration::from_secs(10)).await?;
    assert_gap(
        gaps(&calls)[0],
        Duration::from_millis(300),
        Duration::from_millis(400),
        "new backoff",
    );
    env.wait_settled("orders", Duration::from_secs(10)).await?;
    running.stop().await
}
