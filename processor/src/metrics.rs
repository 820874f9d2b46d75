//! The processor's metrics (emitted through the `metrics` facade; the binary
//! installs the Prometheus recorder). Labels are `group`, `source` and
//! `outcome` only: never a webhook id.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `hookline_processor_handled_total` | counter | group, source, outcome = success / retry / dead_lettered / duplicate |
//! | `hookline_processor_handler_duration_seconds` | histogram | group, source, outcome = success / retry / permanent |
//! | `hookline_processor_redeliveries_total` | counter | group, source |
//! | `hookline_processor_deferred_total` | counter | group, source (deliveries held back by the backoff gate) |
//! | `hookline_processor_in_flight` | gauge | group |
//! | `hookline_processor_consumer_pending` | gauge | group (messages not yet delivered: lag) |
//! | `hookline_processor_consumer_ack_pending` | gauge | group (delivered, not yet acked, incl. waiting in backoff) |
//! | `hookline_processor_dead_letters` | gauge | group (messages in the DLQ stream for this group) |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use crate::handler::Outcome;

/// Webhooks handled, by outcome.
pub const HANDLED_TOTAL: &str = "hookline_processor_handled_total";
/// Handler call duration.
pub const HANDLER_DURATION_SECONDS: &str = "hookline_processor_handler_duration_seconds";
/// Deliveries after the first.
pub const REDELIVERIES_TOTAL: &str = "hookline_processor_redeliveries_total";
/// Deliveries held back by the backoff gate (nak'd before running).
pub const DEFERRED_TOTAL: &str = "hookline_processor_deferred_total";
/// Handler calls running in this instance.
pub const IN_FLIGHT: &str = "hookline_processor_in_flight";
/// The consumer's `num_pending`.
pub const CONSUMER_PENDING: &str = "hookline_processor_consumer_pending";
/// The consumer's `num_ack_pending`.
pub const CONSUMER_ACK_PENDING: &str = "hookline_processor_consumer_ack_pending";
/// Messages on `dlq.<group>.>` in the dead-letter stream.
pub const DEAD_LETTERS: &str = "hookline_processor_dead_letters";

/// How often the gauges are refreshed from the server.
pub(crate) const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// Outcome label values of [`HANDLED_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    Success,
    Retry,
    DeadLettered,
    Duplicate,
}

impl Handled {
    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Retry => "retry",
            Self::DeadLettered => "dead_lettered",
            Self::Duplicate => "duplicate",
        }
    }
}

/// The per-webhook metric handles of one group, resolved once per source:
/// `metrics::counter!` with labels builds and hashes its key on every call,
/// which cost about 1.5 µs per webhook on the hot path.
pub(crate) struct Metrics {
    group: String,
    in_flight: Gauge,
    sources: Mutex<HashMap<String, Arc<SourceMetrics>>>,
}

/// The handles labelled with one `source`.
pub(crate) struct SourceMetrics {
    success: Counter,
    retry: Counter,
    dead_lettered: Counter,
    duplicate: Counter,
    redeliveries: Counter,
    deferred: Counter,
    duration_success: Histogram,
    duration_retry: Histogram,
    duration_permanent: Histogram,
}

impl Metrics {
    pub(crate) fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
            in_flight: metrics::gauge!(IN_FLIGHT, "group" => group.to_owned()),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// The handles for `source` (a subject token: one entry per source
    /// that ingest publishes, so the map stays small).
    pub(crate) fn source(&self, source: &str) -> Arc<SourceMetrics> {
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = sources.get(source) {
            return Arc::clone(found);
        }
        let handles = Arc::new(SourceMetrics::new(&self.group, source));
        sources.insert(source.to_owned(), Arc::clone(&handles));
        handles
    }

    pub(crate) fn in_flight(&self, delta: f64) {
        self.in_flight.increment(delta);
    }
}

impl SourceMetrics {
    fn new(group: &str, source: &str) -> Self {
        let handled = |outcome: Handled| metrics::counter!(HANDLED_TOTAL, "group" => group.to_owned(), "source" => source.to_owned(), "outcome" => outcome.label());
        let duration = |outcome: &'static str| metrics::histogram!(HANDLER_DURATION_SECONDS, "group" => group.to_owned(), "source" => source.to_owned(), "outcome" => outcome);
        Self {
            success: handled(Handled::Success),
            retry: handled(Handled::Retry),
            dead_lettered: handled(Handled::DeadLettered),
            duplicate: handled(Handled::Duplicate),
            redeliveries: metrics::counter!(REDELIVERIES_TOTAL, "group" => group.to_owned(), "source" => source.to_owned()),
            deferred: metrics::counter!(DEFERRED_TOTAL, "group" => group.to_owned(), "source" => source.to_owned()),
            duration_success: duration("success"),
            duration_retry: duration("retry"),
            duration_permanent: duration("permanent"),
        }
    }

    pub(crate) fn handled(&self, outcome: Handled) {
        match outcome {
            Handled::Success => &self.success,
            Handled::Retry => &self.retry,
            Handled::DeadLettered => &self.dead_lettered,
            Handled::Duplicate => &self.duplicate,
        }
        .increment(1);
    }

    pub(crate) fn handler_duration(&self, outcome: &Outcome, elapsed: Duration) {
        match outcome {
            Outcome::Success => &self.duration_success,
            Outcome::Retry { .. } => &self.duration_retry,
            Outcome::Permanent { .. } => &self.duration_permanent,
        }
        .record(elapsed.as_secs_f64());
    }

    pub(crate) fn redelivered(&self) {
        self.redeliveries.increment(1);
    }

    pub(crate) fn deferred(&self) {
        self.deferred.increment(1);
    }
}

#[allow(clippy::cast_precision_loss)] // gauges are approximate above 2^53
pub(crate) fn consumer_state(
    group: &str,
    pending: u64,
    ack_pending: usize,
    dead_letters: Option<u64>,
) {
    metrics::gauge!(CONSUMER_PENDING, "group" => group.to_owned()).set(pending as f64);
    metrics::gauge!(CONSUMER_ACK_PENDING, "group" => group.to_owned()).set(ack_pending as f64);
    if let Some(count) = dead_letters {
        metrics::gauge!(DEAD_LETTERS, "group" => group.to_owned()).set(count as f64);
    }
}
