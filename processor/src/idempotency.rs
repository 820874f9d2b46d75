//! Idempotency records: one JetStream KV entry per (group, webhook id) that
//! says whether the webhook is being handled (`claimed`, with a lease),
//! waiting for its next attempt (`retrying`) or `done`.
//!
//! Keys are [`WebhookKey::record_key`](hookline_platform::contract::WebhookKey::record_key):
//! `<group>.<encoded Nats-Msg-Id>`, every byte outside `[A-Za-z0-9_-]`
//! written as `=XX` (`stripe:evt_1` in group `billing` →
//! `billing.stripe=3Aevt_1`). The key is built from the bounded webhook key
//! (long or unsafe provider ids hashed), so it is always a valid KV key of
//! bounded length, whatever the provider sends.

//! Values are small JSON objects (`{"state":"claimed","seq":7,"attempt":2,
//! "owner":"…"}`). Time comes from the server: a record's age is measured
//! from the server timestamp of its latest revision, so instances never
//! compare each other's clocks (only their own against the server's).
//!
//! Every write is a compare-and-set on the revision read, so two instances
//! cannot both claim one webhook; a claim is renewed with each in-progress
//! ack, and an instance that crashed stops renewing, so its claim lapses
//! after one lease (`ack_wait`).

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;

/// The state of one webhook in one group: the JSON value of its KV record
/// (`{"state":"done","seq":7,"attempt":1}`). Public so that tools (e.g.
/// `hookline trace`) can read records; only the processor writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Record {
    /// Delivery `attempt` of stream message `seq`, the handler's `runs`-th
    /// run for it, is running on `owner`; the claim lapses one lease after
    /// its latest revision.
    Claimed {
        /// The message's sequence in the `WEBHOOKS` stream.
        seq: u64,
        /// The delivery count.
        attempt: u32,
        /// The handler's run number for this message (the backoff exponent).
        runs: u32,
        /// The processor instance running it.
        owner: String,
    },
    /// Run `runs` (delivery `attempt`) of `seq` failed; the next run may
    /// start `delay_ms` after this revision was written.
    Retrying {
        /// The message's sequence in the `WEBHOOKS` stream.
        seq: u64,
        /// The delivery count of the failed run.
        attempt: u32,
        /// The handler's run number for this message.
        runs: u32,
        /// The backoff delay scheduled, in milliseconds.
        delay_ms: u64,
    },
    /// Handled (by delivery `attempt` of `seq`).
    Done {
        /// The message's sequence in the `WEBHOOKS` stream.
        seq: u64,
        /// The delivery that handled it.
        attempt: u32,
    },
}

impl Record {
    fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// The latest revision of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Current {
    /// `None` when the value is not a record this version understands.
    pub(crate) record: Option<Record>,
    pub(crate) revision: u64,
    /// The server's timestamp of this revision.
    pub(crate) written: SystemTime,
}

/// What to do with a delivery, given the webhook's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Claim (create when `revision` is `None`, else compare-and-set) and
    /// run the handler for the `runs`-th time for this message. Runs, not
    /// deliveries, are the backoff exponent: a gated delivery is not a run.
    Run { revision: Option<u64>, runs: u32 },
    /// Already handled, or owned by another live delivery: ack without running.
    Duplicate,
    /// Too early (backoff not yet elapsed, or a live claim): nak with this delay.
    Wait(Duration),
}

/// A gate wait shorter than this fraction of the scheduled delay (at most
/// [`MAX_TOLERANCE`]) is not worth a redelivery: it is clock skew between
/// this host and the server, or scheduling noise.
const TOLERANCE_DIVISOR: u32 = 4;
/// The largest wait that is still ignored as noise.
const MAX_TOLERANCE: Duration = Duration::from_millis(250);

/// Decides what delivery `seq` does, from the record as read at `now`.
///
/// - no record → run;
/// - `done` → duplicate;
/// - a record of another message `seq'` (the same webhook published again
///   past the stream's duplicate window) that is still live → duplicate:
///   `seq'` is pending in this consumer and ends handled or dead-lettered;
///   a stale one (its owner gone for longer than a lease plus its backoff)
///   is taken over;
/// - this message's own record is the backoff gate: `retrying` waits until
///   its delay has passed since it was written; `claimed` means the previous
///   run timed out (crash, freeze, partition), so the next run waits until
///   `max(lease, delay(runs))` after the claim was last renewed.
pub(crate) fn decide(
    current: Option<&Current>,
    seq: u64,
    now: SystemTime,
    lease: Duration,
    backoff: &Backoff,
) -> Decision {
    let Some(current) = current else {
        return Decision::Run {
            revision: None,
            runs: 1,
        };
    };
    let run = |runs: u32| Decision::Run {
        revision: Some(current.revision),
        runs,
    };
    let Some(record) = &current.record else {
        return run(1);
    };
    let since = |delay: Duration| {
        let earliest = current.written + delay;
        let wait = earliest.duration_since(now).unwrap_or_default();
        // A server clock far ahead of ours must not park a message for long.
        wait.min(lease + backoff.max())
    };
    let gate = |scheduled: Duration, runs: u32| {
        let wait = since(scheduled);
        if wait <= (scheduled / TOLERANCE_DIVISOR).min(MAX_TOLERANCE) {
            run(runs.saturating_add(1))
        } else {
            Decision::Wait(wait)
        }
    };
    let other_message = |live: Duration| {
        if since(live).is_zero() {
            run(1)
        } else {
            Decision::Duplicate
        }
    };
    match record {
        Record::Done { .. } => Decision::Duplicate,
        Record::Claimed {
            seq: other, runs, ..
        } if *other != seq => other_message(lease + backoff.delay(*runs) + lease),
        Record::Retrying {
            seq: other,
            delay_ms,
            ..
        } if *other != seq => other_message(Duration::from_millis(*delay_ms) + lease),
        Record::Claimed { runs, .. } => gate(lease.max(backoff.delay(*runs)), *runs),
        Record::Retrying { runs, delay_ms, .. } => gate(Duration::from_millis(*delay_ms), *runs),
    }
}

#[derive(Debug)]
pub(crate) enum WriteError {
    /// Someone else wrote first (the compare-and-set failed).
    Conflict,
    /// The store did not answer or refused.
    Store(async_nats::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict => f.write_str("the record changed concurrently"),
            Self::Store(e) => write!(f, "idempotency store error: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// The idempotency bucket.
#[derive(Clone)]
pub(crate) struct Store {
    kv: kv::Store,
}

impl Store {
    /// Creates the bucket, or updates it to `ttl` and `replicas`.
    pub(crate) async fn open(
        js: &jetstream::Context,
        bucket: &str,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self, jetstream::context::CreateKeyValueError> {
        let kv = js
            .create_or_update_key_value(kv::Config {
                bucket: bucket.to_owned(),
                description: "Hookline processor idempotency records".to_owned(),
                history: 1,
                max_age: ttl,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await?;
        Ok(Self { kv })
    }

    /// The latest revision of `key`, `None` when absent or deleted.
    pub(crate) async fn read(&self, key: &str) -> Result<Option<Current>, kv::EntryError> {
        let Some(entry) = self.kv.entry(key).await? else {
            return Ok(None);
        };
        if matches!(
            entry.operation,
            kv::Operation::Delete | kv::Operation::Purge
        ) {
            return Ok(None);
        }
        let nanos = entry.created.unix_timestamp_nanos();
        let written = u64::try_from(nanos)
            .map(|n| SystemTime::UNIX_EPOCH + Duration::from_nanos(n))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let record = serde_json::from_slice(&entry.value).ok();
        if record.is_none() {
            tracing::warn!(key, "unreadable idempotency record; it will be overwritten");
        }
        Ok(Some(Current {
            record,
            revision: entry.revision,
            written,
        }))
    }

    /// Writes `record`: a create when `revision` is `None`, else a
    /// compare-and-set on `revision`. Returns the new revision.
    pub(crate) async fn write(
        &self,
        key: &str,
        revision: Option<u64>,
        record: &Record,
    ) -> Result<u64, WriteError> {
        match revision {
            None => self
                .kv
                .create(key, record.encode())
                .await
                .map_err(|e| match e.kind() {
                    kv::CreateErrorKind::AlreadyExists => WriteError::Conflict,
                    _ => WriteError::Store(e.into()),
                }),
            Some(revision) => self
                .kv
                .update(key, record.encode(), revision)
                .await
                .map_err(|e| match e.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => WriteError::Conflict,
                    _ => WriteError::Store(e.into()),
                }),
        }
    }

    /// Deletes `key` if it is still at `revision` (after a dead letter, so a
    /// later provider retry or a re-drive gets a fresh start).
    pub(crate) async fn forget(&self, key: &str, revision: u64) -> Result<(), WriteError> {
        self.kv
            .delete_expect_revision(key, Some(revision))
            .await
            .map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => WriteError::Conflict,
                _ => WriteError::Store(e.into()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackoffConfig;

    fn backoff() -> Backoff {
        Backoff::new(BackoffConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        })
    }

    fn at(record: Record, age_ms: u64, now: SystemTime) -> Current {
        Current {
            record: Some(record),
            revision: 7,
            written: now - Duration::from_millis(age_ms),
        }
    }

    #[test]
    fn decisions() {
        let now = SystemTime::now();
        let lease = Duration::from_secs(10);
        let b = backoff();
        let decide = |c: Option<Current>| decide(c.as_ref(), 5, now, lease, &b);
        let run = |runs| Decision::Run {
            revision: Some(7),
            runs,
        };
        let claimed = |seq, runs| Record::Claimed {
            seq,
            attempt: runs,
            runs,
            owner: "x".into(),
        };
        let retrying = |seq, delay_ms| Record::Retrying {
            seq,
            attempt: 1,
            runs: 1,
            delay_ms,
        };
        let wait = |ms| Decision::Wait(Duration::from_millis(ms));

        assert_eq!(
            decide(None),
            Decision::Run {
                revision: None,
                runs: 1
            }
        );
        assert_eq!(
            decide(Some(at(Record::Done { seq: 1, attempt: 1 }, 0, now))),
            Decision::Duplicate
        );
        assert_eq!(
            decide(Some(Current {
                record: None,
                revision: 7,
                written: now
            })),
            run(1)
        );

        // Own retry record: the gate waits out the remaining delay.
        assert_eq!(decide(Some(at(retrying(5, 2_000), 500, now))), wait(1_500));
        assert_eq!(decide(Some(at(retrying(5, 2_000), 2_000, now))), run(2));
        assert_eq!(
            decide(Some(at(retrying(5, 2_000), 1_800, now))),
            run(2),
            "within the skew tolerance"
        );
        assert_eq!(decide(Some(at(retrying(5, 0), 0, now))), run(2));

        // Own claim = the previous run timed out: max(lease, delay(runs)) from the last renewal.
        assert_eq!(decide(Some(at(claimed(5, 1), 10_000, now))), run(2));
        assert_eq!(decide(Some(at(claimed(5, 1), 4_000, now))), wait(6_000));
        assert_eq!(decide(Some(at(claimed(5, 5), 10_000, now))), wait(6_000));
        assert_eq!(decide(Some(at(claimed(5, 5), 16_000, now))), run(6));

        // Another message of the same webhook: live → duplicate, stale → take over.
        assert_eq!(
            decide(Some(at(claimed(4, 1), 1_000, now))),
            Decision::Duplicate
        );
        assert_eq!(decide(Some(at(claimed(4, 1), 22_000, now))), run(1));
        assert_eq!(
            decide(Some(at(retrying(4, 5_000), 1_000, now))),
            Decision::Duplicate
        );
        assert_eq!(decide(Some(at(retrying(4, 5_000), 16_000, now))), run(1));

        // A server clock far ahead never parks a message for longer than lease + max.
        let future = Current {
            record: Some(retrying(5, 1_000)),
            revision: 7,
            written: now + Duration::from_secs(3_600),
        };
        assert_eq!(
            decide(Some(future)),
            Decision::Wait(lease + Duration::from_secs(60))
        );
    }

    #[test]
    fn records_round_trip_as_small_json() {
        let record = Record::Claimed {
            seq: 7,
            attempt: 3,
            runs: 2,
            owner: "abc".into(),
        };
        let bytes = record.encode();
        assert_eq!(
            &bytes[..],
            br#"{"state":"claimed","seq":7,"attempt":3,"runs":2,"owner":"abc"}"#
        );
        assert_eq!(serde_json::from_slice::<Record>(&bytes).unwrap(), record);
    }
}
