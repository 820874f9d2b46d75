//! Ingest's metrics. Per-source handles are registered once at start-up so
//! the hot path does no label hashing; labels are bounded (source, reason,
//! status), never a webhook id.

use metrics::{Counter, Histogram, counter, histogram};

/// Label value for requests to an unconfigured source (the path segment
/// itself is never a label: it is attacker-chosen).
pub(crate) const UNKNOWN_SOURCE: &str = "_unknown";

/// The statuses a webhook request usually ends with; their latency
/// histograms are registered up front (others are looked up when they occur).
const COMMON_STATUSES: [u16; 7] = [200, 400, 401, 408, 413, 415, 503];

#[derive(Debug, Clone)]
pub(crate) struct SourceMetrics {
    source: String,
    pub(crate) received: Counter,
    pub(crate) verified: Counter,
    pub(crate) published: Counter,
    pub(crate) duplicates: Counter,
    /// Replays caught by the source's replay guard.
    pub(crate) replays: Counter,
    pub(crate) publish_seconds: Histogram,
    /// `hookline_ingest_request_duration_seconds` for [`COMMON_STATUSES`].
    request_seconds: [Histogram; COMMON_STATUSES.len()],
}

impl SourceMetrics {
    pub(crate) fn new(source: &str) -> Self {
        let label = || source.to_owned();
        Self {
            source: source.to_owned(),
            received: counter!("hookline_ingest_received_total", "source" => label()),
            verified: counter!("hookline_ingest_verified_total", "source" => label()),
            published: counter!("hookline_ingest_published_total", "source" => label()),
            duplicates: counter!("hookline_ingest_duplicates_total", "source" => label()),
            replays: counter!("hookline_ingest_replays_total", "source" => label()),
            publish_seconds: histogram!("hookline_ingest_publish_duration_seconds", "source" => label()),
            request_seconds: COMMON_STATUSES.map(|status| request_histogram(source, status)),
        }
    }

    /// Request latency by status, recorded when the answer is ready.
    pub(crate) fn request_finished(&self, status: u16, seconds: f64) {
        match COMMON_STATUSES.iter().position(|&s| s == status) {
            Some(index) => self.request_seconds[index].record(seconds),
            None => request_histogram(&self.source, status).record(seconds),
        }
    }

    /// A rejected request, by reason (`invalid_signature`, `body_too_large`, …).
    pub(crate) fn rejected(&self, reason: &'static str) {
        rejected(&self.source, reason);
    }

    /// A failed publish (the request got 503), by reason.
    pub(crate) fn publish_failed(&self, reason: &'static str) {
        counter!("hookline_ingest_publish_failures_total", "source" => self.source.clone(), "reason" => reason)
            .increment(1);
    }
}

pub(crate) fn rejected(source: &str, reason: &'static str) {
    counter!("hookline_ingest_rejected_total", "source" => source.to_owned(), "reason" => reason)
        .increment(1);
}

fn request_histogram(source: &str, status: u16) -> Histogram {
    histogram!(
        "hookline_ingest_request_duration_seconds",
        "source" => source.to_owned(),
        "status" => status.to_string()
    )
}
