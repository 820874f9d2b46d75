//! Deliveries that time out back off exponentially too: a handler that
//! hangs past `handler_timeout` is abandoned and retried with backoff (while
//! it hangs, in-progress acks keep the message from being redelivered), and
//! an instance that dies mid-handler has its message redelivered no sooner
//! than the backoff allows (the gate on the idempotency claim). A last
//! attempt that dies is still dead-lettered.

use hookline_tests::processor as support;

use std::time::Duration;

use hookline_platform::contract::HEADER_DLQ_REASON;
use hookline_processor::{BackoffConfig, Outcome};
use hookline_tests::publish::{TestWebhook, publish};
use support::{
    Action, Env, Instance, Reply, Scripted, Sink, assert_gap, config_file, gaps, processor, spawn,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_handler_is_abandoned_and_retried_with_growing_delays() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let handler = Scripted::new(|webhook| {
        if webhook.delivery.attempt < 3 {
            Action::Hang
        } else {
            Action::Return(Outcome::Success)
        }
    });
    let mut config = processor("hung");
    config.ack_wait = Duration::from_millis(600);
    config.handler_timeout = Duration::from_millis(1_500);
    config.backoff = BackoffConfig {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(10),
    };
    let running = spawn(&env, env.config(config), handler.clone()).await?;
    publish(
        &env.js,
        &TestWebhook::new("stripe", "charge.failed", "evt_hang", "{}"),
    )
    .await?;

    let calls = handler.wait_calls(3, Duration::from_secs(20)).await?;
    let attempts: Vec<u32> = calls.iter().map(|c| c.attempt).collect();
    assert_eq!(
        attempts,
        [1, 2, 3],
        "hanging 1.5 s with ack_wait 0.6 s caused no redelivery"
    );
    let gaps = gaps(&calls);
    eprintln!("hang gaps {gaps:?}");
    let slack = Duration::from_millis(600);
    assert_gap(
        gaps[0],
        Duration::from_millis(1_500 + 1_000),
        slack,
        "timeout + delay(1)",
    );
    assert_gap(
        gaps[1],
        Duration::from_millis(1_500 + 2_000),
        slack,
        "timeout + delay(2)",
    );
    env.wait_settled("hung", Duration::from_secs(10)).await?;
    assert_eq!(handler.calls().len(), 3);
    running.stop().await
}

fn crashy(env: &Env, sink: &Sink, max_deliver: u32, initial: &str) -> String {
    config_file(
        env,
        &format!(
            "group = \"crashy\"\nack_wait = \"500ms\"\nmax_deliver = {max_deliver}\n\
             backoff = {{ initial = \"{initial}\", max = \"10s\" }}\nhandler_timeout = \"1m\"\n\
             handler = {{ http = {{ url = \"{}\", timeout = \"1m\" }} }}\n",
            sink.url
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_instance_redelivery_waits_for_the_backoff() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::start(|_, _| Reply::Hang).await?; // every attempt "hangs" until its instance dies
    let config = crashy(&env, &sink, 8, "1s");
    let mut instance = Instance::spawn(&config).await?;
    env.wait_pulling("crashy", 1, Duration::from_secs(10))
        .await?;
    publish(
        &env.js,
        &TestWebhook::new("github", "push", "h:crash", "{}"),
    )
    .await?;

    for seen in 1..=3 {
        sink.wait_requests(seen, Duration::from_secs(20)).await?;
        instance.sigkill().await?; // crash mid-handler: no ack, no nak, no progress
        instance = Instance::spawn(&config).await?;
    }
    let requests = sink.requests();
    let times: Vec<_> = requests.iter().map(|r| r.at).collect();
    let gap1 = times[1] - times[0];
    let gap2 = times[2] - times[1];
    // Without the gate both gaps would be ≈ ack_wait (500 ms).
    let slack = Duration::from_millis(800);
    assert_gap(
        gap1,
        Duration::from_secs(1),
        slack,
        "after the first crash: delay(1)",
    );
    assert_gap(
        gap2,
        Duration::from_secs(2),
        slack,
        "after the second crash: delay(2)",
    );
    let attempts: Vec<u32> = requests
        .iter()
        .map(|r| {
            r.header("hookline-attempt")
                .unwrap_or("0")
                .parse()
                .unwrap_or(0)
        })
        .collect();
    eprintln!("crash gaps {gap1:?} {gap2:?}, attempts {attempts:?}");
    assert!(attempts.windows(2).all(|w| w[0] < w[1]), "{attempts:?}");
    drop(instance);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_attempt_that_crashes_is_still_dead_lettered() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::start(|_, _| Reply::Hang).await?;
    let config = crashy(&env, &sink, 2, "100ms");
    let mut instance = Instance::spawn(&config).await?;
    env.wait_pulling("crashy", 1, Duration::from_secs(10))
        .await?;
    publish(
        &env.js,
        &TestWebhook::new("shopify", "orders/paid", "o-crash", "{}"),
    )
    .await?;

    for seen in 1..=2 {
        sink.wait_requests(seen, Duration::from_secs(20)).await?;
        instance.sigkill().await?;
        instance = Instance::spawn(&config).await?;
    }
    let letters = env.dead_letters(1, Duration::from_secs(20)).await?;
    let reason = letters[0]
        .headers
        .get(HEADER_DLQ_REASON)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(reason.contains("attempt 2 did not finish"), "{reason}");
    env.wait_settled("crashy", Duration::from_secs(10)).await?;
    assert_eq!(
        sink.requests().len(),
        2,
        "the reserved delivery does not run the handler"
    );
    drop(instance);
    Ok(())
}
