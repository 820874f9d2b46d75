//! Telemetry for binaries: a `tracing` subscriber (`RUST_LOG`, text or JSON)
//! and the process-wide Prometheus recorder. Libraries only emit.

use std::io::IsTerminal as _;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Log output format.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `[telemetry]` section.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// Latency buckets (seconds) for every `*_seconds` histogram: 0.5 ms … 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Installs the global tracing subscriber; the filter comes from `RUST_LOG`
/// (default `info`). Text is coloured only on a terminal: a log file,
/// journald or a collector gets plain lines (and no escape codes to format).
///
/// A log line that cannot be written (the reader of stdout has gone, the
/// disk is full) is dropped without a word: the subscriber would otherwise
/// report it on stderr with `eprintln!`, which panics when stderr is the
/// same closed pipe, and a panic in the signal task left a binary unable
/// to stop.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Why the metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the Prometheus recorder")]
pub struct MetricsError(#[source] metrics_exporter_prometheus::BuildError);

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the global Prometheus recorder and returns the handle that
/// renders `/metrics`. A background thread runs the recorder's upkeep every
/// few seconds: histogram samples are buffered until then, so without it
/// memory would grow with every request until someone scrapes `/metrics`.
///
/// # Errors
/// A recorder is already installed, or the upkeep thread cannot start.
pub fn install_metrics() -> Result<PrometheusHandle, MetricsError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
        .map_err(MetricsError)?
        .install_recorder()
        .map_err(MetricsError)?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| {
            MetricsError(
                metrics_exporter_prometheus::BuildError::FailedToCreateRuntime(e.to_string()),
            )
        })?;
    Ok(handle)
}
