//! Stopping an instance gracefully loses nothing: it stops pulling, hands
//! back what it had not started, finishes what it had, and exits 0.

use hookline_tests::processor as support;

use std::time::{Duration, Instant};

use hookline_processor::Outcome;
use hookline_tests::publish::{TestWebhook, publish, publish_many};
use support::{
    Action, Env, Instance, Reply, Scripted, Sink, duplicates, fleet_config, processor, spawn,
    wait_all_handled,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_one_of_three_instances_mid_run_loses_nothing() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::start(|_, _| Reply::After(Duration::from_millis(20), 200)).await?;
    let config = fleet_config(&env, &sink, 16);
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(Instance::spawn(&config).await?);
    }
    env.wait_pulling("fleet", 3, Duration::from_secs(15))
        .await?;

    publish_many(&env.js, "github", "push", "d", 1_000).await?;
    sink.wait_requests(300, Duration::from_secs(60)).await?;
    instances[0].sigterm()?;
    let status = instances[0].wait(Duration::from_secs(20)).await?;
    assert!(status.success(), "{status:?}: {}", instances[0].stderr());

    let counts = wait_all_handled(
        &env,
        &sink,
        "fleet",
        "github",
        "d",
        1_000,
        Duration::from_secs(120),
    )
    .await?;
    let (twice, extra) = duplicates(&counts);
    assert!(
        twice.is_empty(),
        "a graceful stop ran {extra} webhooks twice: {twice:?}"
    );
    for instance in &instances[1..] {
        instance.sigterm()?;
    }
    for instance in &mut instances[1..] {
        assert!(instance.wait(Duration::from_secs(20)).await?.success());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_running_handler_and_releases_the_rest_at_once() -> anyhow::Result<()>
{
    let env = Env::start().await?;
    let slow = Scripted::new(|_| Action::Sleep(Duration::from_secs(1), Outcome::Success));
    let mut config = processor("drain");
    config.concurrency = 1;
    config.ack_wait = Duration::from_secs(30); // anything not released would come back only after 30 s
    let a = spawn(&env, env.config(config.clone()), slow.clone()).await?;
    for i in 0..4 {
        publish(
            &env.js,
            &TestWebhook::new("stripe", "invoice.paid", &format!("evt_{i}"), "{}"),
        )
        .await?;
    }
    slow.wait_calls(1, Duration::from_secs(10)).await?;
    let stopping = Instant::now();
    a.stop().await?;
    assert!(
        stopping.elapsed() >= Duration::from_millis(500),
        "waited for the running handler"
    );
    assert_eq!(slow.calls().len(), 1, "nothing new started after shutdown");

    let fast = Scripted::succeeding();
    let b = spawn(&env, env.config(config), fast.clone()).await?;
    env.wait_settled("drain", Duration::from_secs(10)).await?;
    let mut ids: Vec<String> = slow
        .calls()
        .into_iter()
        .chain(fast.calls())
        .map(|c| c.id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["evt_0", "evt_1", "evt_2", "evt_3"],
        "each once, none lost"
    );
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_outliving_the_drain_timeout_is_released_for_redelivery() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let stuck = Scripted::new(|_| Action::Hang);
    let mut config = processor("stuck");
    config.ack_wait = Duration::from_secs(30);
    config.drain_timeout = Duration::from_millis(500);
    let a = spawn(&env, env.config(config.clone()), stuck.clone()).await?;
    publish(
        &env.js,
        &TestWebhook::new("stripe", "invoice.paid", "evt_stuck", "{}"),
    )
    .await?;
    stuck.wait_calls(1, Duration::from_secs(10)).await?;
    a.stop().await?;

    let fast = Scripted::succeeding();
    let b = spawn(&env, env.config(config), fast.clone()).await?;
    env.wait_settled("stuck", Duration::from_secs(10)).await?;
    assert_eq!(
        fast.calls().len(),
        1,
        "redelivered at once, not after ack_wait"
    );
    b.stop().await
}
