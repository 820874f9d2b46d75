//! Three instances of one group (the binary, `http` handler, one sink)
//! share 1000 webhooks: every one handled, none twice.

use hookline_tests::processor as support;

use std::time::Duration;

use hookline_tests::publish::publish_many;
use support::{Env, Instance, Reply, Sink, duplicates, fleet_config, wait_all_handled};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_work_and_handle_each_webhook_once() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let sink = Sink::start(|_, _| Reply::After(Duration::from_millis(5), 200)).await?;
    let config = fleet_config(&env, &sink, 16);
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(Instance::spawn(&config).await?);
    }
    env.wait_pulling("fleet", 3, Duration::from_secs(15))
        .await?;

    publish_many(&env.js, "stripe", "invoice.paid", "evt", 1_000).await?;
    let counts = wait_all_handled(
        &env,
        &sink,
        "fleet",
        "stripe",
        "evt",
        1_000,
        Duration::from_secs(120),
    )
    .await?;
    let (twice, extra) = duplicates(&counts);
    assert!(twice.is_empty(), "{extra} extra runs: {twice:?}");
    assert_eq!(counts.len(), 1_000);

    for instance in &instances {
        instance.sigterm()?;
    }
    for instance in &mut instances {
        let status = instance.wait(Duration::from_secs(20)).await?;
        assert!(status.success(), "{status:?}: {}", instance.stderr());
    }
    Ok(())
}
