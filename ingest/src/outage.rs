//! Logging 503s once per outage, not once per request: a NATS outage under
//! load would otherwise write thousands of identical ERROR lines a second.
//! The first 503 logs an ERROR with its cause; later ones are counted (the
//! `hookline_ingest_publish_failures_total{reason}` metric counts them all)
//! and summarised at most once per [`SUMMARY_EVERY`]; the first success
//! after an outage logs its end with the count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{ErrorChain, IngestError};

/// How often a continuing outage is summarised.
pub(crate) const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// A new outage starting within this time of the last one's first line is
/// not announced again (nor its end): flapping writes one line, not many.
const QUIET_AFTER_LINE: Duration = Duration::from_secs(10);

/// The outage state shared by all requests.
#[derive(Debug, Default)]
pub(crate) struct OutageLog {
    /// Read on every success without taking the lock.
    failing: AtomicBool,
    outage: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Outage>,
    /// When the last outage was announced.
    announced: Option<Instant>,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    failed: u64,
    summarised: Instant,
    summarised_count: u64,
    /// Not announced (flapping): its end is not logged either.
    quiet: bool,
}

impl OutageLog {
    /// A request was answered 5xx.
    pub(crate) fn failed(&self, error: &IngestError) {
        let Ok(mut state) = self.outage.lock() else {
            return;
        };
        let now = Instant::now();
        let announced = state.announced;
        match state.current.as_mut() {
            None => {
                let quiet = announced.is_some_and(|at| now.duration_since(at) < QUIET_AFTER_LINE);
                if !quiet {
                    state.announced = Some(now);
                    tracing::error!(
                        error = %ErrorChain(error),
                        "webhooks not accepted (503); further failures are counted in \
                         hookline_ingest_publish_failures_total until requests succeed again"
                    );
                }
                state.current = Some(Outage {
                    since: now,
                    failed: 1,
                    summarised: now,
                    summarised_count: 1,
                    quiet,
                });
                self.failing.store(true, Ordering::Release);
            }
            Some(outage) => {
                outage.failed += 1;
                if now.duration_since(outage.summarised) >= SUMMARY_EVERY {
                    tracing::error!(
                        error = %ErrorChain(error),
                        failed = outage.failed,
                        since_last = outage.failed - outage.summarised_count,
                        for_seconds = now.duration_since(outage.since).as_secs(),
                        "webhooks still not accepted (503)"
                    );
                    outage.summarised = now;
                    outage.summarised_count = outage.failed;
                }
            }
        }
    }

    /// A webhook was persisted.
    pub(crate) fn succeeded(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut state) = self.outage.lock() else {
            return;
        };
        self.failing.store(false, Ordering::Release);
        if let Some(outage) = state.current.take().filter(|outage| !outage.quiet) {
            tracing::info!(
                failed = outage.failed,
                for_seconds = outage.since.elapsed().as_secs_f64(),
                "webhooks accepted again"
            );
        }
    }
}
