//! `hookline-ingest`: wires config, telemetry, NATS and the HTTP server.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use hookline_ingest::config::IngestSettings;
use hookline_ingest::{AppState, serve};
use hookline_platform::command_line::{self, ConfigArg, EXIT_FAILURE, EXIT_USAGE};
use hookline_platform::{config, runtime, shutdown, telemetry};

/// hookline-ingest: verifies webhooks and makes them durable in NATS JetStream.
#[derive(Debug, Parser)]
#[command(
    name = "hookline-ingest",
    version,
    after_help = "Example: hookline-ingest --config hookline.toml\n\
                  HOOKLINE_INGEST_LISTEN=0.0.0.0:8080 HOOKLINE_NATS_URL=nats://10.0.0.5:4222 hookline-ingest -c hookline.toml\n\
                  Logs: RUST_LOG (default info). Configuration reference: docs/configuration.md.\n\
                  Exit codes: 0 stopped cleanly, 1 failed while running, 2 usage or configuration error."
)]
struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

const PROGRAM: &str = "hookline-ingest";

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match load(&args.config) {
        Ok(settings) => settings,
        Err(error) => {
            return command_line::fail_with(
                PROGRAM,
                EXIT_USAGE,
                hookline_platform::error::chain(error.as_ref()),
            );
        }
    };
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => command_line::fail_with(
            PROGRAM,
            EXIT_FAILURE,
            hookline_platform::error::chain(error.as_ref()),
        ),
    }
}

/// The config file with the environment's overrides, checked.
fn load(args: &ConfigArg) -> anyhow::Result<IngestSettings> {
    let settings: IngestSettings = config::load(Some(args.required()?), std::env::vars())?;
    settings.validate()?;
    Ok(settings)
}

fn run(settings: IngestSettings) -> anyhow::Result<()> {
    runtime::build(settings.ingest.worker_threads)
        .context("cannot start the async runtime")?
        .block_on(serve_until_shutdown(settings))
}

async fn serve_until_shutdown(settings: IngestSettings) -> anyhow::Result<()> {
    telemetry::init_tracing(settings.telemetry.log_format);
    let metrics = telemetry::install_metrics()?;
    // Ports first: an ingest that cannot listen must not touch NATS.
    let listener = tokio::net::TcpListener::bind(settings.ingest.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.ingest.listen))?;
    let admin = match settings.ingest.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let state = AppState::connect(&settings, Some(metrics)).await?;
    tracing::info!(
        listen = %listener.local_addr()?,
        metrics = ?admin.as_ref().and_then(|l| l.local_addr().ok()),
        "hookline-ingest ready"
    );
    serve(listener, admin, state, shutdown::on_signal()).await?;
    tracing::info!("hookline-ingest stopped");
    Ok(())
}
