//! The state every request handler shares, built once at start-up.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::budget::BodyBudget;
use crate::config::IngestSettings;
use crate::error::Error;
use crate::outage::OutageLog;
use crate::publish::Publisher;
use crate::sources::Sources;

/// Shared, cheaply cloned state: sources, publisher, settings.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) sources: Sources,
    pub(crate) publisher: Publisher,
    pub(crate) stream_name: String,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) metrics_on_public: bool,
    pub(crate) header_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) retry_after: Duration,
    /// `ingest.max_in_flight_bytes`, reserved as bodies arrive.
    pub(crate) body_budget: BodyBudget,
    /// `ingest.min_body_rate` in bytes per second (0: off).
    pub(crate) min_body_rate: u64,
    /// `ingest.max_connections`, per listener.
    pub(crate) max_connections: usize,
    /// 503s, logged once per outage.
    pub(crate) outage: OutageLog,
    /// Secrets captured from handshakes (only when a source captures one).
    pub(crate) captures: Option<crate::capture::Captures>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("sources", &self.inner.sources.names())
            .field("stream", &self.inner.stream_name)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Validates the settings, resolves sources, connects to NATS and
    /// declares the streams: creates a missing one, only checks an existing
    /// one (`StreamConfig::declare`; call it once the listeners are bound). `metrics` renders `/metrics` (the binary
    /// installs the global recorder; `None` answers 404 there).
    ///
    /// # Errors
    /// Invalid settings or sources, NATS unreachable, streams refused.
    pub async fn connect(
        settings: &IngestSettings,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Self, Error> {
        settings.validate()?;
        let mut sources = Sources::build(settings)?;
        let client = hookline_platform::nats::connect(&settings.nats, "hookline-ingest").await?;
        let max_payload = client.server_info().max_payload as u64;
        sources.default_max_body(settings.check_payload_fit(max_payload)?);
        let publisher = Publisher::new(client, settings.ingest.publish_timeout);
        settings.stream.declare(publisher.jetstream()).await?;
        sources
            .declare_replay_guards(publisher.jetstream(), settings.stream.replicas)
            .await?;
        for name in sources.names() {
            if let Some(source) = sources.get(name) {
                tracing::info!(source = %source.describe(), "source configured");
            }
        }
        let captures = if sources.any_captures() {
            let store = crate::capture::open(publisher.jetstream())
                .await
                .map_err(|e| Error::Captures(e.to_string()))?;
            Some(crate::capture::Captures::new(store))
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                sources,
                publisher,
                stream_name: settings.stream.name.clone(),
                metrics,
                metrics_on_public: settings.ingest.metrics_listen.is_none(),
                header_timeout: settings.ingest.header_timeout,
                body_timeout: settings.ingest.body_timeout,
                retry_after: settings.ingest.retry_after,
                // A request waits for budget as long as for a PubAck.
                body_budget: BodyBudget::new(
                    settings.ingest.max_in_flight_bytes.0,
                    settings.ingest.publish_timeout,
                ),
                min_body_rate: settings.ingest.min_body_rate.0,
                max_connections: settings.ingest.max_connections,
                outage: OutageLog::default(),
                captures,
            }),
        })
    }

    /// The same state verifying against `clock` instead of the system clock,
    /// for tests that replay signed vectors at their recorded instant. Call it
    /// right after [`AppState::connect`], before the state is shared.
    #[must_use]
    pub fn with_clock(mut self, clock: crate::sources::Clock) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.sources.set_clock(clock);
        }
        self
    }

    /// The NATS client, e.g. to flush after shutdown.
    pub fn nats(&self) -> async_nats::Client {
        self.inner.publisher.jetstream().client()
    }
}
