//! Measures handled webhooks per second for one and for three instances of
//! the binary (`file` handler, idempotency on) draining a backlog. Ignored
//! by default; run it with
//! `cargo test --release -p hookline-tests --test it -- processor_throughput --ignored --nocapture`
//! after `cargo build --release -p hookline-processor --bins`.

use hookline_tests::processor as support;

use std::time::{Duration, Instant};

use hookline_tests::publish::publish_many;
use support::{Env, Instance, config_file};

const WEBHOOKS: usize = 20_000;

async fn measure(instances: usize) -> anyhow::Result<f64> {
    let env = Env::start().await?;
    publish_many(&env.js, "bench", "event", "b", WEBHOOKS).await?;
    let out = tempfile::tempdir()?;
    let mut running = Vec::new();
    for i in 0..instances {
        let path = out.path().join(format!("events-{i}.jsonl"));
        let toml = config_file(
            &env,
            &format!(
                "group = \"bench\"\nconcurrency = 32\nhandler = {{ file = {{ path = {path:?} }} }}\n"
            ),
        );
        running.push(Instance::spawn(&toml).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut started = None;
    loop {
        if let Ok(info) = env.consumer_info("bench").await {
            if started.is_none() && info.delivered.consumer_sequence > 0 {
                started = Some(Instant::now());
            }
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                break;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "backlog not drained within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    let mut lines = 0;
    for i in 0..instances {
        lines += std::fs::read_to_string(out.path().join(format!("events-{i}.jsonl")))?
            .lines()
            .count();
    }
    assert_eq!(lines, WEBHOOKS, "every webhook written exactly once");
    for instance in &running {
        instance.sigterm()?;
    }
    for instance in &mut running {
        instance.wait(Duration::from_secs(20)).await?;
    }
    let rate = WEBHOOKS as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{instances} instance(s): {WEBHOOKS} webhooks in {elapsed:.2?} = {rate:.0} handled/s"
    );
    Ok(rate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; see the module docs"]
async fn handled_per_second() -> anyhow::Result<()> {
    measure(1).await?;
    measure(3).await?;
    Ok(())
}
