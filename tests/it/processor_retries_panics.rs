//! A panicking handler is a retryable failure, not a dead worker: the
//! webhook is retried and the instance keeps handling others.

use hookline_tests::processor as support;

use std::time::Duration;

use hookline_platform::contract::HEADER_DLQ_REASON;
use hookline_processor::Outcome;
use hookline_tests::publish::{TestWebhook, publish};
use support::{Action, Env, Scripted, processor, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_retried_and_the_instance_keeps_working() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let handler = Scripted::new(|webhook| match (webhook.id(), webhook.delivery.attempt) {
        ("boom", 1) => Action::Panic("index out of bounds"),
        ("always", _) => Action::Panic("always broken"),
        _ => Action::Return(Outcome::Success),
    });
    let mut config = processor("panics");
    config.concurrency = 1; // one worker slot: a dead worker would stall everything
    config.max_deliver = 3;
    let running = spawn(&env, env.config(config), handler.clone()).await?;
    for id in ["boom", "always", "after-1", "after-2"] {
        publish(
            &env.js,
            &TestWebhook::new("stripe", "invoice.paid", id, "{}"),
        )
        .await?;
    }

    let letters = env.dead_letters(1, Duration::from_secs(15)).await?;
    env.wait_settled("panics", Duration::from_secs(15)).await?;
    let attempts = |id| {
        handler
            .calls_for(id)
            .iter()
            .map(|c| c.attempt)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        attempts("boom"),
        [1, 2],
        "retried after the panic, then succeeded"
    );
    assert_eq!(attempts("always"), [1, 2, 3]);
    assert_eq!(attempts("after-1"), [1]);
    assert_eq!(attempts("after-2"), [1]);
    let reason = letters[0]
        .headers
        .get(HEADER_DLQ_REASON)
        .map(|v| v.to_string());
    assert_eq!(
        reason.as_deref(),
        Some("attempt 3 of 3 failed: handler panicked: always broken")
    );
    assert!(!running.is_finished());
    running.stop().await
}
