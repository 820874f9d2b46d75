//! `hookline-ingest`: wires config, telemetry, NATS and the HTTP server.

use std::process::ExitCode;

use anyhow::Context;
use hookline_ingest::config::IngestSettings;
use hookline_ingest::{AppState, serve};
use hookline_platform::config::{self, Invocation};
use hookline_platform::{runtime, shutdown, telemetry};

const USAGE: &str = "\
hookline-ingest: verifies webhooks and makes them durable in NATS JetStream

Usage: hookline-ingest [--config FILE]

  -c, --config FILE   Hookline config file (TOML); default: $HOOKLINE_CONFIG
  -h, --help          print this help
  -V, --version       print the version

Every key can be overridden with HOOKLINE_<SECTION>_<KEY>, e.g.
HOOKLINE_NATS_URL=nats://127.0.0.1:4222 or HOOKLINE_INGEST_LISTEN=0.0.0.0:8080.
Logs: RUST_LOG (default info). Configuration reference: docs/configuration.md.";

fn main() -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let path = match config::parse_args(std::env::args().skip(1), &env) {
        Ok(Invocation::Run(path)) => path,
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("hookline-ingest {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("hookline-ingest: {message}");
            return ExitCode::from(2);
        }
    };
    match load(path.as_deref(), env).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookline-ingest: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(
    path: Option<&std::path::Path>,
    env: Vec<(String, String)>,
) -> anyhow::Result<IngestSettings> {
    let settings: IngestSettings = config::load(path, env)?;
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
    let state = AppState::connect(&settings, Some(metrics)).await?;
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
    tracing::info!(
        listen = %listener.local_addr()?,
        metrics = ?admin.as_ref().and_then(|l| l.local_addr().ok()),
        "hookline-ingest ready"
    );
    serve(listener, admin, state, shutdown::on_signal()).await?;
    tracing::info!("hookline-ingest stopped");
    Ok(())
}
