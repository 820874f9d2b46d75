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

use std::time::Duration;

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

pub(crate) fn handled(group: &str, source: &str, outcome: Handled) {
    metrics::counter!(HANDLED_TOTAL, "group" => group.to_owned(), "source" => source.to_owned(), "outcome" => outcome.label())
        .increment(1);
}

pub(crate) fn handler_duration(
    group: &str,
    source: &str,
    outcome: &'static str,
    elapsed: Duration,
) {
    metrics::histogram!(HANDLER_DURATION_SECONDS, "group" => group.to_owned(), "source" => source.to_owned(), "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

pub(crate) fn redelivered(group: &str, source: &str) {
    metrics::counter!(REDELIVERIES_TOTAL, "group" => group.to_owned(), "source" => source.to_owned()).increment(1);
}

pub(crate) fn deferred(group: &str, source: &str) {
    metrics::counter!(DEFERRED_TOTAL, "group" => group.to_owned(), "source" => source.to_owned())
        .increment(1);
}

pub(crate) fn in_flight(group: &str, delta: f64) {
    metrics::gauge!(IN_FLIGHT, "group" => group.to_owned()).increment(delta);
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
