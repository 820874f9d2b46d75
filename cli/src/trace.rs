//! `hookline trace`: where is this webhook? Found without scanning the
//! stream (idempotency records and dead letters name its sequence; see
//! [`find`]). Its messages in `WEBHOOKS`
//! (the original, re-drives, replays) and, per processor group, its state
//! from the idempotency record, the consumer's position and the DLQ.

use std::time::{Duration, SystemTime};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::stream::DirectGetErrorKind;
use async_nats::jetstream::{self, consumer, kv};
use hookline_platform::contract::{
    DLQ_SUBJECT_PREFIX, HEADER_DLQ_ATTEMPTS, HEADER_DLQ_GROUP, HEADER_DLQ_REASON,
    HEADER_DLQ_STREAM_SEQ, REPLAY_SUBJECT_PREFIX, SUBJECT_PREFIX, WebhookKey,
    dead_letter_message_id, original_of_dead_letter, original_subject,
};
use hookline_processor::dead_letter::HEADER_REDRIVEN_FROM;
use hookline_processor::idempotency::Record;
use hookline_proto::{Envelope, Message as _, Timestamp};

use crate::args::TraceArgs;
use crate::error::{Error, Result};
use crate::jetstream::{durable_consumers, filters, open_stream, subject_matches};
use crate::replay::HEADER_REPLAY_OF;
use crate::report::{GroupState, TraceMessage, TraceReport};
use crate::scan::{History, Start};
use crate::settings::Settings;
use crate::table::{Table, cut};
use crate::when::{parse_time, rfc3339, short_duration, system_time};

/// One message of the webhook in `WEBHOOKS`.
#[derive(Debug, Clone)]
struct Copy {
    seq: u64,
    subject: String,
    msg_id: String,
    stored: SystemTime,
    kind: String,
}

/// Runs `hookline trace`.
///
/// # Errors
/// Bad arguments (2), the webhook not in the stream (3), NATS trouble (1).
pub async fn run(settings: &Settings, args: &TraceArgs) -> Result<()> {
    let js = settings.connect().await?;
    let report = find(settings, &js, args).await?;
    if args.json {
        println!("{}", crate::status::json_line(&report));
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// Finds webhook `args.id` and its state in every group.
///
/// # Errors
/// As [`run`].
pub async fn find(
    settings: &Settings,
    js: &jetstream::Context,
    args: &TraceArgs,
) -> Result<TraceReport> {
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time("--since", t, SystemTime::now()))
        .transpose()?;
    if let Some(source) = &args.source
        && !settings.ingest.sources.is_empty()
    {
        settings.source(source)?;
    }
    let names = &settings.ingest.stream;
    let stream = open_stream(js, &names.name).await?;
    let store = js.get_key_value(settings.idempotency_bucket()).await.ok();
    let dlq = open_stream(js, &names.dlq_name).await.ok();
    let groups = durable_consumers(&stream).await?;
    // Where to start reading: a sequence of the webhook from the groups'
    // idempotency records or its dead letters (direct reads, no scan), then
    // only its own subject from when it was received.
    let known = match since {
        Some(_) => None,
        None => {
            let sources = candidate_sources(settings, &stream, args).await?;
            locate(
                &stream,
                &groups,
                store.as_ref(),
                dlq.as_ref(),
                &sources,
                &args.id,
            )
            .await?
        }
    };
    // (subjects, start, most messages read)
    let scans = match &known {
        Some(found) => {
            let start = Start::Time(
                found
                    .received
                    .checked_sub(CLOCK_SLACK)
                    .unwrap_or(found.received),
            );
            let rest = found
                .subject
                .strip_prefix(SUBJECT_PREFIX)
                .unwrap_or_default()
                .trim_start_matches('.');
            vec![
                // Re-drives go to the webhook's own subject: look just after it.
                (vec![found.subject.clone()], start, COPY_WINDOW),
                // Replays have their own (quiet) subjects.
                (
                    vec![format!("{REPLAY_SUBJECT_PREFIX}.*.{rest}")],
                    start,
                    MAX_READ,
                ),
            ]
        }
        None => {
            let source_token = args.source.as_deref().unwrap_or("*");
            let subjects = vec![
                format!("{SUBJECT_PREFIX}.{source_token}.>"),
                format!("{REPLAY_SUBJECT_PREFIX}.*.{source_token}.>"),
            ];
            let start = match since {
                Some(at) => Start::Time(at),
                None => {
                    let last = stream
                        .get_info()
                        .await
                        .map_err(|e| Error::caused("cannot read stream info", e))?
                        .state
                        .last_sequence;
                    Start::Sequence(last.saturating_sub(RECENT_WINDOW - 1).max(1))
                }
            };
            vec![(subjects, start, MAX_READ)]
        }
    };
    let mut copies: Vec<Copy> = Vec::new();
    for (subjects, start, cap) in scans {
        let mut history = History::open_at(&stream, subjects, start, true).await?;
        let mut read = 0u64;
        while let Some(item) = history.next().await? {
            read += 1;
            if read > cap {
                break;
            }
            let message = &item.message;
            if let Some(copy) = copy_of(
                &message.subject,
                message.headers.as_ref(),
                item.stream_sequence,
                item.published,
                &args.id,
            ) {
                copies.push(copy);
            }
        }
    }
    // Copies the groups handled (their records name them) that the scans
    // did not reach.
    for &seq in known.iter().flat_map(|f| &f.sequences) {
        if copies.iter().any(|c| c.seq == seq) {
            continue;
        }
        if let Ok(message) = stream.direct_get(seq).await
            && let Some(copy) = copy_of(
                &message.subject,
                Some(&message.headers),
                seq,
                crate::when::system_time(message.time),
                &args.id,
            )
        {
            copies.push(copy);
        }
    }
    copies.sort_by_key(|c| c.seq);
    copies.dedup_by_key(|c| c.seq);
    let Some(first) = copies.first().cloned() else {
        return Err(Error::NotFound(format!(
            "webhook {:?} is not in stream {}{} (messages are kept for {}; check the id and --source)",
            args.id,
            names.name,
            args.source
                .as_deref()
                .map(|s| format!(" for source {s}"))
                .unwrap_or_default(),
            humantime::format_duration(names.max_age)
        )));
    };
    let original = stream
        .direct_get(first.seq)
        .await
        .map_err(|e| Error::caused(format!("cannot read WEBHOOKS #{}", first.seq), e))?;
    let envelope = Envelope::decode(original.payload.clone()).ok();
    let webhook_subject = original_subject(&first.subject).into_owned();
    let dedup = envelope
        .as_ref()
        .and_then(|envelope| WebhookKey::new(&envelope.source, &envelope.id).ok())
        .or_else(|| WebhookKey::parse(&first.msg_id));
    let mut states = Vec::new();
    for group in &groups {
        let state = group_state(
            group,
            &webhook_subject,
            &copies,
            dedup.as_ref(),
            store.as_ref(),
            dlq.as_ref(),
        )
        .await?;
        states.push(GroupState {
            group: group.name.clone(),
            state: state.0,
            detail: state.1,
        });
    }
    Ok(TraceReport {
        webhook_id: envelope.as_ref().map(|e| e.id.clone()),
        msg_id: first.msg_id.clone(),
        source: envelope.as_ref().map(|e| e.source.clone()),
        event: envelope.as_ref().map(|e| e.event.clone()),
        received_at: envelope
            .as_ref()
            .and_then(|e| e.received_at.as_ref())
            .map(timestamp),
        messages: copies
            .iter()
            .map(|c| TraceMessage {
                stream_seq: c.seq,
                subject: c.subject.clone(),
                msg_id: c.msg_id.clone(),
                stored_at: rfc3339(c.stored),
                kind: c.kind.clone(),
            })
            .collect(),
        groups: states,
    })
}

/// Without a record or dead letter to start from, only the newest this many
/// messages are read (`--since` reads from a time instead).
pub const RECENT_WINDOW: u64 = 100_000;
/// At most this many messages are read for one trace.
pub const MAX_READ: u64 = 200_000;
/// Messages of the webhook's own subject read from when it was received,
/// looking for its re-drives (re-drives handled by a group are found from
/// its record whenever they came).
pub const COPY_WINDOW: u64 = 5_000;
/// Read from this long before the webhook's `received_at` (ingest's clock
/// against the server's).
const CLOCK_SLACK: Duration = Duration::from_secs(5);

/// A message of the webhook found without scanning.
struct Found {
    /// Its `webhooks.…` subject.
    subject: String,
    /// When ingest received it.
    received: SystemTime,
    /// Every sequence the records and dead letters named.
    sequences: Vec<u64>,
}

/// The message as a [`Copy`] of webhook `id`, when its `Nats-Msg-Id` is one.
fn copy_of(
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    seq: u64,
    stored: SystemTime,
    id: &str,
) -> Option<Copy> {
    let header = |name: &str| headers?.get(name).map(|v| v.as_str().to_owned());
    let msg_id = header(NATS_MESSAGE_ID.as_ref())?;
    let webhook_subject = original_subject(subject);
    let source = webhook_subject.split('.').nth(1).unwrap_or_default();
    let base = msg_id.split(":redrive:").next().unwrap_or_default();
    let base = base.split(":replay:").next().unwrap_or_default();
    // The argument may be the whole Nats-Msg-Id `<source>:<id>`.
    let is_it = |key: Option<WebhookKey>| key.is_some_and(|k| k.message_id() == base);
    if !is_it(WebhookKey::new(source, id).ok()) && !is_it(WebhookKey::parse(id)) {
        return None;
    }
    let kind = if let Some(from) = header(HEADER_REDRIVEN_FROM) {
        format!("re-driven from {from}")
    } else if let Some(of) = header(HEADER_REPLAY_OF) {
        format!(
            "replayed to {} (copy of {of})",
            subject.split('.').nth(1).unwrap_or_default()
        )
    } else {
        "received".to_owned()
    };
    Some(Copy {
        seq,
        subject: subject.to_owned(),
        msg_id,
        stored,
        kind,
    })
}

/// The sources the id may belong to: `--source`, else every configured
/// source and every source in the stream's subjects.
async fn candidate_sources(
    settings: &Settings,
    stream: &jetstream::stream::Stream,
    args: &TraceArgs,
) -> Result<Vec<String>> {
    if let Some(source) = &args.source {
        return Ok(vec![source.clone()]);
    }
    crate::webhooks::known_sources(settings, stream).await
}

/// A stored message of webhook `id` (or Nats-Msg-Id `<source>:<id>`):
/// from any group's idempotency record (which holds its sequence), else
/// from a dead letter of it (which names the original's sequence).
async fn locate(
    stream: &jetstream::stream::Stream,
    groups: &[consumer::Info],
    store: Option<&kv::Store>,
    dlq: Option<&jetstream::stream::Stream>,
    sources: &[String],
    id: &str,
) -> Result<Option<Found>> {
    let mut keys: Vec<(String, WebhookKey)> = sources
        .iter()
        .filter_map(|source| Some((source.clone(), WebhookKey::new(source, id).ok()?)))
        .collect();
    if let Some(whole) = WebhookKey::parse(id)
        && sources.iter().any(|s| s == whole.source())
    {
        keys.push((whole.source().to_owned(), whole));
    }
    let mut sequences = Vec::new();
    if let Some(store) = store {
        for (_, key) in &keys {
            for group in groups {
                let entry = store
                    .entry(key.record_key(&group.name))
                    .await
                    .map_err(|e| Error::caused("cannot read the idempotency bucket", e))?;
                if let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put)
                    && let Ok(record) = serde_json::from_slice::<Record>(&entry.value)
                {
                    sequences.push(match record {
                        Record::Done { seq, .. }
                        | Record::Retrying { seq, .. }
                        | Record::Claimed { seq, .. } => seq,
                    });
                }
            }
        }
    }
    if sequences.is_empty()
        && let Some(dlq) = dlq
    {
        for (source, key) in &keys {
            sequences.extend(dead_letter_origins(dlq, source, key.message_id()).await?);
        }
    }
    for &seq in &sequences {
        let Ok(message) = stream.direct_get(seq).await else {
            continue; // removed by retention: try another
        };
        let received = Envelope::decode(message.payload.clone())
            .ok()
            .and_then(|e| e.received_at)
            .map(|t| system_time_of(&t))
            .unwrap_or_else(|| crate::when::system_time(message.time));
        return Ok(Some(Found {
            subject: original_subject(&message.subject).into_owned(),
            received,
            sequences: sequences.clone(),
        }));
    }
    Ok(None)
}

/// The original sequences named by the dead letters of webhook `key` of `source`.
async fn dead_letter_origins(
    dlq: &jetstream::stream::Stream,
    source: &str,
    key: &str,
) -> Result<Vec<u64>> {
    let filter = format!("{DLQ_SUBJECT_PREFIX}.*.{source}.>");
    let mut next = 1;
    let mut found = Vec::new();
    for _ in 0..MAX_DEAD_LETTERS_READ {
        let letter = match dlq.direct_get_next_for_subject(&filter, Some(next)).await {
            Ok(letter) => letter,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(Error::caused("cannot read the dead letters", e)),
        };
        next = letter.sequence + 1;
        let header = |name: &str| letter.headers.get(name).map(|v| v.as_str().to_owned());
        let group = header(HEADER_DLQ_GROUP).unwrap_or_default();
        let id = header(NATS_MESSAGE_ID.as_ref()).unwrap_or_default();
        let original = original_of_dead_letter(&group, &id);
        let base = original
            .split(":redrive:")
            .next()
            .and_then(|rest| rest.split(":replay:").next());
        if base == Some(key)
            && let Some(seq) = header(HEADER_DLQ_STREAM_SEQ).and_then(|s| s.parse().ok())
        {
            found.push(seq);
        }
    }
    Ok(found)
}

/// Dead letters read, at most, to find one webhook's.
const MAX_DEAD_LETTERS_READ: usize = 100_000;

fn system_time_of(t: &Timestamp) -> SystemTime {
    u64::try_from(t.seconds)
        .ok()
        .map(|s| {
            SystemTime::UNIX_EPOCH + Duration::new(s, u32::try_from(t.nanos).unwrap_or_default())
        })
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `(state, detail)` of the webhook in one group.
async fn group_state(
    group: &consumer::Info,
    subject: &str,
    copies: &[Copy],
    dedup: Option<&WebhookKey>,
    store: Option<&kv::Store>,
    dlq: Option<&jetstream::stream::Stream>,
) -> Result<(&'static str, String)> {
    let group_filters = filters(group);
    let mine: Vec<&Copy> = copies
        .iter()
        .filter(|c| group_filters.iter().any(|f| subject_matches(f, &c.subject)))
        .collect();
    if mine.is_empty() {
        return Ok((
            "not subscribed",
            format!("filters {} do not take {subject}", group_filters.join(" ")),
        ));
    }
    if let (Some(store), Some(dedup)) = (store, dedup) {
        let key = dedup.record_key(&group.name);
        let entry = store
            .entry(&key)
            .await
            .map_err(|e| Error::caused("cannot read the idempotency bucket", e))?;
        if let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) {
            let written = system_time(entry.created);
            let age = SystemTime::now()
                .duration_since(written)
                .unwrap_or_default();
            match serde_json::from_slice::<Record>(&entry.value) {
                Ok(Record::Done { seq, attempt }) => {
                    return Ok((
                        "handled",
                        format!(
                            "by attempt {attempt} of WEBHOOKS #{seq}, {} ago",
                            short_duration(age)
                        ),
                    ));
                }
                Ok(Record::Retrying {
                    seq,
                    attempt,
                    delay_ms,
                    ..
                }) => {
                    let next = Duration::from_millis(delay_ms).saturating_sub(age);
                    return Ok((
                        "retrying",
                        format!(
                            "attempt {attempt} of WEBHOOKS #{seq} failed; attempt {} in about {}",
                            attempt + 1,
                            short_duration(next)
                        ),
                    ));
                }
                Ok(Record::Claimed {
                    seq,
                    attempt,
                    owner,
                    ..
                }) => {
                    return Ok((
                        "running",
                        format!(
                            "attempt {attempt} of WEBHOOKS #{seq} on instance {owner} (last heard {} ago)",
                            short_duration(age)
                        ),
                    ));
                }
                Err(_) => {}
            }
        }
    }
    if let Some(dlq) = dlq
        && let Some((seq, attempts, reason)) =
            dead_letter(dlq, &group.name, subject, copies).await?
    {
        return Ok((
            "dead-lettered",
            format!("WEBHOOKS_DLQ #{seq} after {attempts} attempts: {reason}"),
        ));
    }
    let latest = mine.iter().map(|c| c.seq).max().unwrap_or(0);
    if latest > group.delivered.stream_sequence {
        return Ok((
            "pending",
            format!(
                "not delivered yet ({} messages waiting for this group)",
                group.num_pending
            ),
        ));
    }
    if latest > group.ack_floor.stream_sequence {
        return Ok(("in flight", "delivered, not yet acknowledged".to_owned()));
    }
    Ok((
        "acknowledged",
        "no idempotency record: handled longer ago than idempotency_ttl, or acked as a duplicate"
            .to_owned(),
    ))
}

/// The group's dead letter of this webhook: `(dlq seq, attempts, reason)`.
async fn dead_letter(
    dlq: &jetstream::stream::Stream,
    group: &str,
    subject: &str,
    copies: &[Copy],
) -> Result<Option<(u64, String, String)>> {
    let rest = subject
        .strip_prefix(SUBJECT_PREFIX)
        .unwrap_or_default()
        .trim_start_matches('.');
    let filter = format!("{DLQ_SUBJECT_PREFIX}.{group}.{rest}");
    let wanted: Vec<String> = copies
        .iter()
        .map(|c| dead_letter_message_id(group, Some(&c.msg_id), c.seq))
        .collect();
    let mut next = 1;
    let mut found = None;
    for _ in 0..100_000 {
        let letter = match dlq.direct_get_next_for_subject(&filter, Some(next)).await {
            Ok(letter) => letter,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(Error::caused("cannot read the dead letters", e)),
        };
        next = letter.sequence + 1;
        let id = letter
            .headers
            .get(NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        if wanted.contains(&id) {
            let h = |name: &str| {
                letter
                    .headers
                    .get(name)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            found = Some((
                letter.sequence,
                h(HEADER_DLQ_ATTEMPTS),
                h(HEADER_DLQ_REASON),
            ));
        }
    }
    Ok(found)
}

/// A protobuf timestamp as RFC 3339.
pub fn timestamp(t: &Timestamp) -> String {
    rfc3339(system_time_of(t))
}

fn render(report: &TraceReport) -> String {
    let text = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".to_owned());
    let mut out = format!(
        "webhook {} (source {}, event {}), received {}\n",
        report.msg_id,
        text(report.source.as_ref()),
        text(report.event.as_ref()),
        text(report.received_at.as_ref())
    );
    let mut messages = Table::new(&["WEBHOOKS SEQ", "SUBJECT", "STORED", "WHAT"]);
    for m in &report.messages {
        messages.row(vec![
            m.stream_seq.to_string(),
            m.subject.clone(),
            m.stored_at.clone(),
            m.kind.clone(),
        ]);
    }
    out.push_str(&messages.render());
    out.push('\n');
    let mut groups = Table::new(&["GROUP", "STATE", "DETAIL"]);
    for g in &report.groups {
        groups.row(vec![
            g.group.clone(),
            g.state.to_owned(),
            cut(&g.detail, 160),
        ]);
    }
    if groups.is_empty() {
        out.push_str("no processor groups\n");
    } else {
        out.push_str(&groups.render());
    }
    out
}
