//! Queries over the webhooks stream that never read the whole stream: a
//! newest-first page of webhooks from a bounded window of sequences (with
//! a cursor to the next page), each with its state in every group, and the
//! per-source counts of the last 5 minutes, hour and day (from the server's
//! pending counts, without reading messages). The console and its API call
//! these; their reports are in [`crate::report`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use async_nats::jetstream::{self, kv};
use futures::{StreamExt as _, TryStreamExt as _};
use hookline_platform::contract::{
    HEADER_DLQ_GROUP, HEADER_DLQ_STREAM_SEQ, HEADER_EVENT, SUBJECT_PREFIX, WebhookKey,
    original_subject,
};
use hookline_processor::dead_letter::HEADER_REDRIVEN_FROM;
use hookline_processor::idempotency::Record;
use hookline_proto::{Envelope, Message as _};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::jetstream::{durable_consumers, filters, open_stream, subject_matches};
use crate::replay::HEADER_REPLAY_OF;
use crate::report::{RowState, SourceCounts, WebhookPage, WebhookRow};
use crate::settings::Settings;
use crate::when::{rfc3339, system_time};

/// At most this many stream messages are looked at for one page.
pub const SCAN_WINDOW: u64 = 5_000;
/// At most this many rows on one page.
pub const MAX_PAGE: usize = 200;
/// Dead letters looked at (newest first) to mark rows dead-lettered.
const RECENT_DEAD_LETTERS: u64 = 1_000;
/// Direct gets in flight at once.
const PARALLEL_GETS: usize = 32;

/// Which webhooks a page shows.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this source.
    pub source: Option<String>,
    /// Only this event (as the provider named it, or its subject token).
    pub event: Option<String>,
    /// Only ids containing this text.
    pub id_contains: Option<String>,
    /// Only stored at or after.
    pub since: Option<SystemTime>,
    /// Only stored at or before.
    pub until: Option<SystemTime>,
    /// Cursor: only sequences below this one (the previous page's `next`).
    pub before: Option<u64>,
    /// Rows wanted (at most [`MAX_PAGE`]).
    pub limit: usize,
}

/// One page of webhooks, newest first.
///
/// # Errors
/// The stream is missing (3) or NATS trouble (1).
pub async fn list(
    settings: &Settings,
    js: &jetstream::Context,
    query: &ListQuery,
) -> Result<WebhookPage> {
    let names = &settings.ingest.stream;
    let mut stream = open_stream(js, &names.name).await?;
    let state = stream
        .info()
        .await
        .map_err(|e| Error::caused("cannot read stream info", e))?
        .state
        .clone();
    let limit = query.limit.clamp(1, MAX_PAGE);
    let mut top = query
        .before
        .map_or(state.last_sequence, |b| b.saturating_sub(1))
        .min(state.last_sequence);
    if let Some(until) = query.until {
        top = top.min(last_sequence_at_or_before(&stream, until, state.last_sequence).await?);
    }
    let bottom = state
        .first_sequence
        .max(top.saturating_sub(SCAN_WINDOW - 1))
        .max(1);
    let mut rows = Vec::new();
    let mut next = top;
    let mut reached_since = false;
    'scan: while next >= bottom && rows.len() < limit && top > 0 {
        let batch_low = next.saturating_sub(PARALLEL_GETS as u64 - 1).max(bottom);
        let messages: Vec<Option<StreamMessage>> =
            futures::stream::iter((batch_low..=next).rev().map(|seq| direct_get(&stream, seq)))
                .buffered(PARALLEL_GETS)
                .try_collect()
                .await?;
        for message in messages {
            next -= 1;
            let Some(message) = message else { continue };
            let stored = system_time(message.time);
            if query.since.is_some_and(|since| stored < since) {
                reached_since = true;
                break 'scan;
            }
            if let Some(row) = row(&message, query) {
                rows.push(row);
                if rows.len() == limit {
                    break 'scan;
                }
            }
        }
        if next == 0 {
            break;
        }
    }
    let more = !reached_since && next >= state.first_sequence && next > 0;
    fill_states(settings, js, &stream, &mut rows).await?;
    Ok(WebhookPage {
        rows,
        scanned_from: next + 1,
        scanned_to: top,
        next: more.then_some(next + 1),
    })
}

async fn direct_get(stream: &Stream, seq: u64) -> Result<Option<StreamMessage>> {
    match stream.direct_get(seq).await {
        Ok(message) => Ok(Some(message)),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::caused(format!("cannot read message {seq}"), e)),
    }
}

fn row(message: &StreamMessage, query: &ListQuery) -> Option<WebhookRow> {
    let subject = message.subject.as_str();
    let webhook_subject = original_subject(subject);
    let mut tokens = webhook_subject.splitn(3, '.');
    if tokens.next() != Some(SUBJECT_PREFIX) {
        return None;
    }
    let source = tokens.next().unwrap_or_default().to_owned();
    let event_token = tokens.next().unwrap_or_default();
    let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
    let event = header(HEADER_EVENT).unwrap_or_else(|| event_token.to_owned());
    if query.source.as_ref().is_some_and(|s| s != &source) {
        return None;
    }
    if query
        .event
        .as_ref()
        .is_some_and(|e| e != &event && e != event_token)
    {
        return None;
    }
    let envelope = Envelope::decode(message.payload.clone()).ok();
    let msg_id = header(NATS_MESSAGE_ID.as_ref()).unwrap_or_default();
    let webhook_id = envelope.as_ref().map(|e| e.id.clone());
    if let Some(text) = &query.id_contains
        && !webhook_id
            .as_deref()
            .unwrap_or(&msg_id)
            .contains(text.as_str())
    {
        return None;
    }
    let kind = if let Some(from) = header(HEADER_REDRIVEN_FROM) {
        format!("re-driven from {from}")
    } else if header(HEADER_REPLAY_OF).is_some() {
        format!(
            "replayed to {}",
            subject.split('.').nth(1).unwrap_or_default()
        )
    } else {
        "received".to_owned()
    };
    Some(WebhookRow {
        seq: message.sequence,
        stored_at: rfc3339(system_time(message.time)),
        subject: subject.to_owned(),
        source,
        event,
        webhook_id,
        msg_id,
        kind,
        states: Vec::new(),
    })
}

/// The last sequence stored at or before `at` (0 when none).
async fn last_sequence_at_or_before(stream: &Stream, at: SystemTime, last: u64) -> Result<u64> {
    let after = pending_since(stream, None, at + Duration::from_millis(1)).await?;
    Ok(last.saturating_sub(after))
}

/// How many messages on `filter` (all when `None`) were stored at or after
/// `since`: the pending count of a throw-away consumer, no message read.
async fn pending_since(stream: &Stream, filter: Option<String>, since: SystemTime) -> Result<u64> {
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: DeliverPolicy::ByStartTime {
                start_time: OffsetDateTime::from(since),
            },
            filter_subject: filter.unwrap_or_default(),
            inactive_threshold: Duration::from_secs(5),
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::caused("cannot count the stream's messages", e))?;
    let info = consumer.cached_info();
    let pending = info.num_pending;
    let _ = stream.delete_consumer(&info.name).await; // it lapses anyway
    Ok(pending)
}

/// Each row's state in every group: its idempotency record, else a recent
/// dead letter, else where the group's consumer stands.
async fn fill_states(
    settings: &Settings,
    js: &jetstream::Context,
    stream: &Stream,
    rows: &mut [WebhookRow],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let groups = durable_consumers(stream).await?;
    let store = js.get_key_value(settings.idempotency_bucket()).await.ok();
    let dead = recent_dead_letters(settings, js).await?;
    let mut lookups = Vec::with_capacity(rows.len() * groups.len());
    for row in rows.iter() {
        for group in &groups {
            lookups.push(row_state(row, group, store.as_ref(), &dead));
        }
    }
    let states: Vec<RowState> = futures::stream::iter(lookups)
        .buffered(PARALLEL_GETS)
        .try_collect()
        .await?;
    let mut states = states.into_iter();
    for row in rows.iter_mut() {
        row.states = states.by_ref().take(groups.len()).collect();
    }
    Ok(())
}

async fn row_state(
    row: &WebhookRow,
    group: &consumer::Info,
    store: Option<&kv::Store>,
    dead: &HashMap<(String, u64), u64>,
) -> Result<RowState> {
    let state = |state: &'static str, detail: String| RowState {
        group: group.name.clone(),
        state,
        detail,
    };
    if !filters(group)
        .iter()
        .any(|f| subject_matches(f, &row.subject))
    {
        return Ok(state("not subscribed", String::new()));
    }
    if let (Some(store), Some(id)) = (store, &row.webhook_id) {
        let Ok(webhook) = WebhookKey::new(&row.source, id) else {
            return Ok(state("acknowledged", String::new()));
        };
        let key = webhook.record_key(&group.name);
        let entry = store
            .entry(&key)
            .await
            .map_err(|e| Error::caused("cannot read the idempotency bucket", e))?;
        if let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) {
            match serde_json::from_slice::<Record>(&entry.value) {
                Ok(Record::Done { attempt, .. }) => {
                    return Ok(state("handled", format!("attempt {attempt}")));
                }
                Ok(Record::Retrying {
                    attempt, delay_ms, ..
                }) => {
                    let age = SystemTime::now()
                        .duration_since(system_time(entry.created))
                        .unwrap_or_default();
                    let next = Duration::from_millis(delay_ms).saturating_sub(age);
                    return Ok(state(
                        "retrying",
                        format!(
                            "attempt {attempt} failed; next in {}",
                            crate::when::short_duration(next)
                        ),
                    ));
                }
                Ok(Record::Claimed { attempt, .. }) => {
                    return Ok(state("running", format!("attempt {attempt}")));
                }
                Err(_) => {}
            }
        }
    }
    if let Some(letter) = dead.get(&(group.name.clone(), row.seq)) {
        return Ok(state("dead-lettered", format!("dead letter {letter}")));
    }
    if row.seq > group.delivered.stream_sequence {
        return Ok(state("pending", String::new()));
    }
    if row.seq > group.ack_floor.stream_sequence {
        return Ok(state("in flight", String::new()));
    }
    Ok(state("acknowledged", String::new()))
}

/// `(group, original WEBHOOKS seq) → dead letter seq` of the newest dead letters.
async fn recent_dead_letters(
    settings: &Settings,
    js: &jetstream::Context,
) -> Result<HashMap<(String, u64), u64>> {
    let mut map = HashMap::new();
    let Ok(mut dlq) = open_stream(js, &settings.ingest.stream.dlq_name).await else {
        return Ok(map);
    };
    let state = dlq
        .info()
        .await
        .map_err(|e| Error::caused("cannot read the dead-letter stream", e))?
        .state
        .clone();
    if state.messages == 0 {
        return Ok(map);
    }
    let low = state
        .first_sequence
        .max(state.last_sequence.saturating_sub(RECENT_DEAD_LETTERS - 1));
    let letters: Vec<Option<StreamMessage>> =
        futures::stream::iter((low..=state.last_sequence).map(|seq| direct_get(&dlq, seq)))
            .buffered(PARALLEL_GETS)
            .try_collect()
            .await?;
    for letter in letters.into_iter().flatten() {
        let header = |name: &str| letter.headers.get(name).map(|v| v.as_str().to_owned());
        if let (Some(group), Some(original)) = (
            header(HEADER_DLQ_GROUP),
            header(HEADER_DLQ_STREAM_SEQ).and_then(|s| s.parse().ok()),
        ) {
            map.insert((group, original), letter.sequence);
        }
    }
    Ok(map)
}

/// Every configured source, then every other source the stream holds
/// webhooks of (a source removed from the config keeps its history).
///
/// # Errors
/// The stream's subjects cannot be read (1).
pub async fn known_sources(
    settings: &Settings,
    stream: &jetstream::stream::Stream,
) -> Result<Vec<String>> {
    let mut sources: Vec<String> = settings
        .ingest
        .sources
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(format!("{SUBJECT_PREFIX}.>"))
        .await
        .map_err(|e| Error::caused("cannot read the stream's subjects", e))?
        .try_collect()
        .await
        .map_err(|e| Error::caused("cannot read the stream's subjects", e))?;
    for (subject, _) in subjects {
        if let Some(source) = subject.split('.').nth(1)
            && !sources.iter().any(|s| s == source)
        {
            sources.push(source.to_owned());
        }
    }
    Ok(sources)
}

/// Webhooks received per source in the last 5 minutes, hour and day.
///
/// # Errors
/// NATS trouble (1).
pub async fn counts_per_source(
    settings: &Settings,
    js: &jetstream::Context,
) -> Result<Vec<SourceCounts>> {
    let stream = open_stream(js, &settings.ingest.stream.name).await?;
    let mut sources = known_sources(settings, &stream).await?;
    sources.sort();
    let now = SystemTime::now();
    let mut out = Vec::new();
    for source in sources {
        let filter = format!("{SUBJECT_PREFIX}.{source}.>");
        let count = |age: u64| {
            pending_since(
                &stream,
                Some(filter.clone()),
                now - Duration::from_secs(age),
            )
        };
        let (five_minutes, hour, day) = tokio::try_join!(count(300), count(3600), count(86_400))?;
        out.push(SourceCounts {
            source,
            last_5m: five_minutes,
            last_1h: hour,
            last_24h: day,
        });
    }
    Ok(out)
}
