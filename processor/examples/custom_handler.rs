//! A processor with application code: forward paid Stripe invoices to a
//! ledger service, idempotently. Run with
//! `cargo run -p hookline-processor --example custom_handler -- hookline.toml`.

use std::sync::Arc;

use hookline_platform::{config, nats, shutdown};
use hookline_processor::{Config, Handler, Outcome, Webhook, run};

struct Ledger {
    http: reqwest::Client,
}

impl Handler for Ledger {
    async fn handle(&self, webhook: &Webhook) -> Outcome {
        if webhook.event() != "invoice.paid" {
            return Outcome::Success; // not ours: ack and move on
        }
        if serde_json::from_slice::<serde_json::Value>(webhook.body()).is_err() {
            return Outcome::permanent("body is not JSON"); // dead-lettered at once
        }
        let sent = self
            .http
            .post("http://127.0.0.1:9000/payments")
            .header("Idempotency-Key", webhook.idempotency_key()) // the ledger dedups on it
            .header("Content-Type", "application/json")
            .body(webhook.body().to_vec())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Outcome::Success,
            Ok(response) if response.status().is_client_error() => {
                Outcome::permanent(format!("ledger answered {}", response.status()))
            }
            Ok(response) => Outcome::retry(format!("ledger answered {}", response.status())),
            Err(error) => Outcome::retry(error.to_string()), // backoff, then the DLQ
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).map(std::path::PathBuf::from);
    let config: Config = config::load(path.as_deref(), std::env::vars())?;
    let client = nats::connect(&config.nats, "ledger-processor").await?;
    let js = async_nats::jetstream::new(client.clone());
    let handler = Arc::new(Ledger {
        http: reqwest::Client::new(),
    });
    run(js, config, handler, shutdown::on_signal()).await?; // until SIGTERM/SIGINT, then drains
    client.flush().await?;
    Ok(())
}
