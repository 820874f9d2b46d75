//! `hookline-processor`: runs one instance of a processor group with a
//! built-in handler. `--config FILE` (or `HOOKLINE_CONFIG`) names the shared
//! Hookline TOML file; `HOOKLINE_<SECTION>_<KEY>` variables override it.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream;
use clap::Parser;
use hookline_platform::command_line::{self, ConfigArg, EXIT_FAILURE, EXIT_USAGE};
use hookline_platform::config;
use hookline_platform::{nats, runtime, shutdown, telemetry};
use hookline_processor::admin::{self, AdminState};
use hookline_processor::handlers::Builtin;
use hookline_processor::{Config, run};

/// mimalloc rather than glibc's malloc: every webhook allocates its
/// envelope, line and KV requests; glibc's malloc and free were ~17 % of an
/// instance's CPU samples (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hookline-processor: runs one instance of the processor group in [processor].
#[derive(Debug, Parser)]
#[command(
    name = "hookline-processor",
    version,
    after_help = "Example: hookline-processor --config hookline.toml\n\
                  HOOKLINE_PROCESSOR_CONCURRENCY=64 HOOKLINE_PROCESSOR_METRICS_LISTEN=127.0.0.1:0 hookline-processor -c hookline.toml\n\
                  Logs: RUST_LOG (default info). Configuration reference: docs/configuration.md.\n\
                  Exit codes: 0 stopped cleanly, 1 failed while running, 2 usage or configuration error."
)]
struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

const PROGRAM: &str = "hookline-processor";

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            return command_line::fail_with(
                PROGRAM,
                EXIT_USAGE,
                hookline_platform::error::chain(error.as_ref()),
            );
        }
    };
    let threads = config.processor.worker_threads;
    let result = runtime::build(threads)
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            if threads == 1 {
                return runtime.block_on(serve(config));
            }
            // On a worker thread rather than this one: the pull loop hands every
            // message to a worker task, and from the main thread each hand-off
            // (and each permit coming back) is a cross-thread wake-up.
            runtime.block_on(async {
                tokio::spawn(serve(config))
                    .await
                    .context("the processor task failed")?
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => command_line::fail_with(
            PROGRAM,
            EXIT_FAILURE,
            hookline_platform::error::chain(error.as_ref()),
        ),
    }
}

/// The config file with the environment's overrides, checked.
fn load(args: &ConfigArg) -> anyhow::Result<Config> {
    let config: Config = config::load(Some(args.required()?), std::env::vars())?;
    config.validate()?;
    if config.processor.handler.is_none() {
        anyhow::bail!(
            "invalid configuration: processor.handler is required, e.g. \
             handler = {{ http = {{ url = \"http://127.0.0.1:9000/hooks\" }} }} or handler = {{ file = {{ path = \"events.jsonl\" }} }}"
        );
    }
    Ok(config)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_tracing(config.telemetry.log_format);
    let metrics = telemetry::install_metrics()?;
    let handler_config = config
        .processor
        .handler
        .clone()
        .context("processor.handler is required")?;
    let handler = Arc::new(Builtin::from_config(&handler_config).await?);
    let listener = tokio::net::TcpListener::bind(config.processor.metrics_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on processor.metrics_listen {}",
                config.processor.metrics_listen
            )
        })?;
    let metrics_addr = listener.local_addr()?;
    let client = nats::connect(&config.nats, "hookline-processor").await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(config.nats.request_timeout)
        .build(client.clone());

    let shutdown = shutdown::on_signal();
    let admin = tokio::spawn(admin::serve(
        listener,
        AdminState {
            metrics: Some(metrics),
            js: js.clone(),
            stream: config.stream.name.clone(),
            group: config.processor.group.clone(),
        },
        shutdown.clone(),
    ));
    tracing::info!(
        group = %config.processor.group,
        metrics = %metrics_addr,
        "hookline-processor metrics listening"
    );
    let result = run(js, config, handler, shutdown.clone()).await;
    shutdown.cancel();
    if let Ok(Err(error)) = admin.await {
        tracing::warn!(%error, "admin endpoint failed");
    }
    client
        .flush()
        .await
        .context("cannot flush the NATS connection")?;
    Ok(result?)
}
