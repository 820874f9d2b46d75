//! A hard kill (SIGKILL) of one of three instances mid-run loses nothing;
//! webhooks run twice only if they were in that instance's hands, so the
//! extra runs are bounded by its concurrency.

use hookline_tests::processor as support;

use std::time::Duration;

use hookline_tests::publish::publish_many;
use support::{Env, Instance, Reply, Sink, duplicates, fleet_config, wait_all_handled};

const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_one_instance_loses_nothing_and_bounds_duplicates() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::start(|_, _| Reply::After(Duration::from_millis(20), 200)).await?;
    let config = fleet_config(&env, &sink, CONCURRENCY);
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(Instance::spawn(&config).await?);
    }
    env.wait_pulling("fleet", 3, Duration::from_secs(15))
        .await?;

    publish_many(&env.js, "shopify", "orders_create", "o", 1_000).await?;
    sink.wait_requests(300, Duration::from_secs(60)).await?;
    instances[0].sigkill().await?;

    let counts = wait_all_handled(
        &env,
        &sink,
        "fleet",
        "shopify",
        "o",
        1_000,
        Duration::from_secs(120),
    )
    .await?;
    let (twice, extra) = duplicates(&counts);
    eprintln!("hard kill: {extra} extra runs ({} webhooks)", twice.len());
    assert!(
        extra <= CONCURRENCY,
        "{extra} extra runs exceed the killed instance's {CONCURRENCY} in hand: {twice:?}"
    );
    for instance in &instances[1..] {
        instance.sigterm()?;
    }
    for instance in &mut instances[1..] {
        assert!(instance.wait(Duration::from_secs(20)).await?.success());
    }
    Ok(())
}
