//! `hookline-processor`: runs one instance of a processor group with a
//! built-in handler. `--config FILE` (or `HOOKLINE_CONFIG`) names the shared
//! Hookline TOML file; `HOOKLINE_<SECTION>_<KEY>` variables override it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream;
use hookline_platform::config::{self, Invocation};
use hookline_platform::{nats, runtime, shutdown, telemetry};
use hookline_processor::admin::{self, AdminState};
use hookline_processor::handlers::Builtin;
use hookline_processor::{Config, run};

/// mimalloc rather than glibc's malloc: every webhook allocates its
/// envelope, line and KV requests; glibc's malloc and free were ~17 % of an
/// instance's CPU samples (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: hookline-processor [--config FILE]

Runs one instance of the processor group configured in [processor].
The config file may also be named by HOOKLINE_CONFIG; every key can be
overridden with HOOKLINE_<SECTION>_<KEY> (e.g. HOOKLINE_PROCESSOR_CONCURRENCY=64).";

fn main() -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = match config::parse_args(std::env::args().skip(1), &env) {
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("hookline-processor {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run(path)) => load(path, env),
        Err(error) => Err(anyhow::anyhow!(error)),
    };
    let result = config.and_then(|config| {
        let threads = config.processor.worker_threads;
        let runtime = runtime::build(threads).context("cannot start the async runtime")?;
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
        Err(error) => {
            eprintln!("hookline-processor: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<PathBuf>, env: Vec<(String, String)>) -> anyhow::Result<Config> {
    let path = path.context("no config file: pass --config FILE or set HOOKLINE_CONFIG")?;
    let config: Config = config::load(Some(&path), env)?;
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
    let client = nats::connect(&config.nats, "hookline-processor").await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(config.nats.request_timeout)
        .build(client.clone());
    config.stream.ensure(&js).await?;

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
