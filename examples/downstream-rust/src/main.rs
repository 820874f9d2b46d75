//! A downstream team's consumer, in Rust: its own durable consumer
//! (`[processor] group`) on the subjects it cares about
//! (`webhooks.github.>`), built on the `hookline-processor` library, so it
//! gets retries with backoff, idempotency and dead letters for free.
//!
//! ```text
//! downstream-rust --config examples/downstream-rust/team.toml [--count N]
//! ```
//! Prints one JSON line per webhook it handles; with `--count N` it stops
//! after N (as CI runs it). The handler is where a team's own logic goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use hookline_platform::{config, nats, shutdown};
use hookline_processor::{Config, Handler, Outcome, Webhook, run};
use tokio_util::sync::CancellationToken;

/// The team's logic: here, print what arrived.
struct Printer {
    handled: AtomicUsize,
    stop_after: Option<usize>,
    stop: CancellationToken,
}

impl Handler for Printer {
    async fn handle(&self, webhook: &Webhook) -> Outcome {
        let line = serde_json::json!({
            "id": webhook.id(),
            "source": webhook.source(),
            "event": webhook.event(),
            "subject": webhook.delivery.subject,
            "attempt": webhook.delivery.attempt,
            "body_bytes": webhook.body().len(),
        });
        println!("{line}");
        let handled = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if self.stop_after.is_some_and(|n| handled >= n) {
            self.stop.cancel();
        }
        Outcome::Success
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut path, mut count) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => path = Some(PathBuf::from(args.next().context("--config FILE")?)),
            "--count" => count = Some(args.next().context("--count N")?.parse()?),
            other => bail!("unknown argument {other:?}: downstream-rust --config FILE [--count N]"),
        }
    }
    let path =
        path.context("--config FILE is required (see examples/downstream-rust/team.toml)")?;
    let config: Config = config::load(Some(&path), std::env::vars())?;
    let client = nats::connect(&config.nats, "downstream-rust").await?;
    let js = async_nats::jetstream::new(client.clone());
    let stop = shutdown::on_signal();
    let handler = Arc::new(Printer {
        handled: AtomicUsize::new(0),
        stop_after: count,
        stop: stop.clone(),
    });
    run(js, config, handler, stop).await?;
    client.flush().await?;
    Ok(())
}
