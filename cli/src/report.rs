//! The typed reports that `status`, `trace`, `dlq` and `replay` compute
//! once and that every front end renders: the CLI's tables, its `--json`
//! output (these structs serialised as they are) and the console's pages
//! and `/api/`. A field renamed here fails to compile wherever it is shown.

use serde::Serialize;

/// `hookline status` / `GET /api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The server the CLI talks to.
    pub nats: NatsReport,
    /// `WEBHOOKS`, then `WEBHOOKS_DLQ` when it exists.
    pub streams: Vec<StreamReport>,
    /// Processor groups (durable consumers) and groups that only have dead letters.
    pub groups: Vec<GroupReport>,
    /// The idempotency bucket.
    pub idempotency: IdempotencyReport,
    /// Replica health of the main stream.
    pub cluster: ClusterReport,
}

/// The NATS server answering.
#[derive(Debug, Clone, Serialize)]
pub struct NatsReport {
    /// `nats.url` without credentials.
    pub url: String,
    /// Server name.
    pub server: String,
    /// Server version.
    pub version: String,
    /// Cluster name, when clustered.
    pub cluster: Option<String>,
    /// Whether JetStream is enabled.
    pub jetstream: bool,
}

/// One stream's state and limits.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Stream name.
    pub name: String,
    /// Its subjects.
    pub subjects: Vec<String>,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// First sequence.
    pub first_seq: u64,
    /// Last sequence.
    pub last_seq: u64,
    /// When the first message was stored (RFC 3339, `-` when empty).
    pub first_time: String,
    /// When the last message was stored.
    pub last_time: String,
    /// Consumers.
    pub consumers: usize,
    /// Replicas.
    pub replicas: usize,
    /// Retention by age (`7days`).
    pub max_age: String,
    /// Retention by size (-1: unlimited).
    pub max_bytes: i64,
}

/// One processor group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// Group (durable consumer) name.
    pub group: String,
    /// Its dead letters in `WEBHOOKS_DLQ`.
    pub dead_letters: u64,
    /// Its consumer's position; `None` for a group that only has dead letters.
    #[serde(flatten)]
    pub consumer: Option<ConsumerReport>,
}

/// A durable consumer's position.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerReport {
    /// Messages not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acknowledged (in flight).
    pub ack_pending: usize,
    /// Delivered more than once and not yet acknowledged (redelivering).
    pub redelivered: usize,
    /// Stream sequence below which everything is acknowledged.
    pub ack_floor: u64,
    /// Last stream sequence delivered.
    pub delivered: u64,
    /// Pull requests waiting (instances pulling).
    pub waiting: usize,
    /// Filter subjects.
    pub filters: Vec<String>,
}

/// The idempotency bucket.
#[derive(Debug, Clone, Serialize)]
pub struct IdempotencyReport {
    /// Bucket name.
    pub bucket: String,
    /// Records; `None` when the bucket does not exist yet.
    pub records: Option<u64>,
    /// Bytes.
    pub bytes: Option<u64>,
    /// How long records are kept.
    pub ttl: Option<String>,
}

/// Replica health of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// One of `healthy`, `degraded: …`, `no leader: …`, `single server (no replicas)`.
    pub health: String,
    /// Cluster name.
    pub name: Option<String>,
    /// The stream's leader.
    pub leader: Option<String>,
    /// Its other replicas.
    pub peers: Vec<PeerReport>,
}

/// One replica.
#[derive(Debug, Clone, Serialize)]
pub struct PeerReport {
    /// Server name.
    pub name: String,
    /// Caught up.
    pub current: bool,
    /// Unreachable.
    pub offline: bool,
    /// Operations behind.
    pub lag: u64,
    /// Last heard (`0.3s`).
    pub active: String,
}

impl PeerReport {
    /// `offline`, `current` or `behind`.
    pub fn state(&self) -> &'static str {
        if self.offline {
            "offline"
        } else if self.current {
            "current"
        } else {
            "behind"
        }
    }
}

/// `hookline trace` / `GET /api/webhooks/{source}/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceReport {
    /// The provider's id (from the Envelope).
    pub webhook_id: Option<String>,
    /// The original message's `Nats-Msg-Id`.
    pub msg_id: String,
    /// Source.
    pub source: Option<String>,
    /// Event.
    pub event: Option<String>,
    /// When ingest received it (RFC 3339).
    pub received_at: Option<String>,
    /// Its messages in `WEBHOOKS`: the original, re-drives, replays.
    pub messages: Vec<TraceMessage>,
    /// Its state in every group.
    pub groups: Vec<GroupState>,
}

/// One message of a webhook in `WEBHOOKS`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceMessage {
    /// Stream sequence.
    pub stream_seq: u64,
    /// Subject.
    pub subject: String,
    /// `Nats-Msg-Id`.
    pub msg_id: String,
    /// When stored (RFC 3339).
    pub stored_at: String,
    /// `received`, `re-driven from …`, `replayed to …`.
    pub kind: String,
}

/// A webhook's state in one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupState {
    /// Group.
    pub group: String,
    /// `handled`, `retrying`, `running`, `dead-lettered`, `pending`, `in flight`,
    /// `acknowledged`, `not subscribed`.
    pub state: &'static str,
    /// The state in words (attempts, errors, when next).
    pub detail: String,
}

/// One dead letter (`hookline dlq list`, `GET /api/dlq`).
#[derive(Debug, Clone, Serialize)]
pub struct LetterSummary {
    /// Sequence in the dead-letter stream.
    pub seq: u64,
    /// When it was dead-lettered (RFC 3339).
    pub dead_lettered_at: String,
    /// The group that gave up.
    pub group: String,
    /// Source.
    pub source: String,
    /// Event.
    pub event: String,
    /// The webhook id, when the payload is an Envelope.
    pub webhook_id: Option<String>,
    /// The dead letter's `Nats-Msg-Id`.
    pub msg_id: String,
    /// Deliveries attempted.
    pub attempts: Option<u64>,
    /// Why it was dead-lettered.
    pub reason: String,
    /// The message's sequence in `WEBHOOKS`.
    pub original_seq: Option<u64>,
    /// `dlq.<group>.<source>.<event>`.
    pub subject: String,
}

/// A dead letter in full (`hookline dlq show`).
#[derive(Debug, Clone, Serialize)]
pub struct LetterDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: LetterSummary,
    /// The webhook it holds, when the payload decodes.
    pub envelope: Option<EnvelopeReport>,
}

/// A webhook as ingest stored it (signature headers left out by ingest).
#[derive(Debug, Clone, Serialize)]
pub struct EnvelopeReport {
    /// Provider id.
    pub id: String,
    /// Source.
    pub source: String,
    /// Event.
    pub event: String,
    /// When ingest received it (RFC 3339).
    pub received_at: Option<String>,
    /// Content type.
    pub content_type: String,
    /// Signature scheme that verified it.
    pub scheme: String,
    /// Provider headers kept by ingest, `[name, value]`.
    pub headers: Vec<(String, String)>,
    /// The body: text, or base64 when not UTF-8.
    pub body: String,
    /// Whether `body` is base64.
    pub body_base64: bool,
}

/// One re-driven dead letter (`hookline dlq replay`, `POST /api/dlq/replay`).
#[derive(Debug, Clone, Serialize)]
pub struct Redriven {
    /// Its sequence in the dead-letter stream.
    pub seq: u64,
    /// The group that had given up.
    pub group: String,
    /// Source.
    pub source: String,
    /// Webhook id.
    pub webhook_id: Option<String>,
    /// Stream the copy went to.
    pub stream: String,
    /// The copy's sequence there.
    pub stream_seq: u64,
    /// Whether the stream already had it (deduplicated).
    pub duplicate: bool,
    /// Whether the dead letter was deleted.
    pub removed: bool,
}

/// What a `hookline replay` did.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The group that received the copies.
    pub group: String,
    /// The source replayed.
    pub source: String,
    /// From (RFC 3339).
    pub since: String,
    /// To (RFC 3339).
    pub until: String,
    /// Only counted.
    pub dry_run: bool,
    /// The counts.
    #[serde(flatten)]
    pub summary: crate::replay::Summary,
}

/// One page of `GET /api/webhooks`: newest first.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookPage {
    /// The webhooks found.
    pub rows: Vec<WebhookRow>,
    /// Lowest sequence looked at.
    pub scanned_from: u64,
    /// Highest sequence looked at.
    pub scanned_to: u64,
    /// Cursor for the next (older) page: pass it as `before`.
    pub next: Option<u64>,
}

/// One webhook message in a list.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookRow {
    /// Stream sequence.
    pub seq: u64,
    /// When stored (RFC 3339).
    pub stored_at: String,
    /// Subject.
    pub subject: String,
    /// Source.
    pub source: String,
    /// Event.
    pub event: String,
    /// Provider id (from the Envelope).
    pub webhook_id: Option<String>,
    /// `Nats-Msg-Id`.
    pub msg_id: String,
    /// `received`, `re-driven from …`, `replayed to …`.
    pub kind: String,
    /// State in every group.
    pub states: Vec<RowState>,
}

/// A list row's state in one group.
#[derive(Debug, Clone, Serialize)]
pub struct RowState {
    /// Group.
    pub group: String,
    /// `handled`, `retrying`, `running`, `dead-lettered`, `pending`, `in flight`,
    /// `acknowledged`, `not subscribed`.
    pub state: &'static str,
    /// Attempt, next retry, dead letter.
    pub detail: String,
}

/// Webhooks received from one source recently.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCounts {
    /// Source.
    pub source: String,
    /// In the last 5 minutes.
    pub last_5m: u64,
    /// In the last hour.
    pub last_1h: u64,
    /// In the last 24 hours.
    pub last_24h: u64,
}

/// `GET /api/status` of the console: `hookline status` plus recent counts.
#[derive(Debug, Clone, Serialize)]
pub struct OverviewReport {
    /// What `hookline status --json` prints.
    pub status: StatusReport,
    /// Received per source.
    pub sources: Vec<SourceCounts>,
}

/// One webhook in full (`GET /api/webhooks/{source}/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookReport {
    /// Where it is (as `hookline trace`).
    pub trace: TraceReport,
    /// The stored webhook (headers, body), when its message decodes.
    pub envelope: Option<EnvelopeReport>,
}
