//! `hookline replay`: re-deliver a source's history to one processor group.
//!
//! Copies go to `replay.<group>.<source>.<event>` in the `WEBHOOKS` stream.
//! Every processor group's consumer also filters its own `replay.<group>.>`
//! (see `hookline_processor::consumer_config`), so only the named group
//! receives them; other groups and downstream consumers of `webhooks.>`
//! never do. The processor handles a copy as the webhook it copies (same
//! Envelope, same idempotency key). Webhooks the group already handled are
//! skipped unless `--bypass-idempotency` removes their `done` records first.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::kv;
use async_nats::jetstream::message::PublishMessage;
use hookline_platform::contract::{
    HEADER_EVENT, HEADER_SOURCE, SUBJECT_PREFIX, WebhookKey, is_valid_name, replay_message_id,
    replay_subject, subject_token,
};
use hookline_processor::idempotency::Record;
use hookline_proto::{Envelope, Message as _};

use crate::args::ReplayArgs;
use crate::error::{Error, Result};
use crate::jetstream::{durable_consumers, filters, open_stream, subject_matches};
use crate::report::ReplayReport;
use crate::scan::{History, header};
use crate::settings::Settings;
use crate::when::{Range, rfc3339};

/// Header on a replayed copy naming the message it copies (`<stream>:<seq>`).
pub const HEADER_REPLAY_OF: &str = "Hookline-Replay-Of";

/// Counts of what a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Messages of the source in the time range.
    pub matched: u64,
    /// Copies published (or, in a dry run, that would be).
    pub published: u64,
    /// Skipped: the group had handled them (no `--bypass-idempotency`).
    pub already_handled: u64,
    /// Skipped: a delivery of the webhook is running or waiting for a retry.
    pub in_progress: u64,
    /// Skipped: the group's filters do not take this event.
    pub not_for_group: u64,
    /// Skipped: another copy of the same webhook was already replayed in this run.
    pub repeated: u64,
    /// `done` records removed (`--bypass-idempotency`).
    pub bypassed: u64,
}

/// Runs `hookline replay`.
///
/// # Errors
/// Bad arguments (2), an unknown group or source (3), NATS trouble (1).
pub async fn run(settings: &Settings, args: &ReplayArgs) -> Result<()> {
    let now = SystemTime::now();
    let range = Range::parse(Some(&args.since), args.until.as_deref(), now)?;
    let since = range.since.unwrap_or(UNIX_EPOCH);
    let until = range.until.unwrap_or(now);
    let rate = parse_rate(&args.rate)?;
    if !is_valid_name(&args.group) {
        return Err(Error::Usage(format!(
            "--group {:?} is not a group name (1-64 of a-z 0-9 - _)",
            args.group
        )));
    }
    if !is_valid_name(&args.source) {
        return Err(Error::Usage(format!(
            "--source {:?} is not a source name (1-64 of a-z 0-9 - _)",
            args.source
        )));
    }
    if !settings.ingest.sources.is_empty() {
        settings.source(&args.source)?;
    }
    let js = settings.connect().await?;
    let stream = open_stream(&js, &settings.ingest.stream.name).await?;
    let consumers = durable_consumers(&stream).await?;
    let Some(group) = consumers.iter().find(|c| c.name == args.group) else {
        let names: Vec<&str> = consumers.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::NotFound(format!(
            "no processor group {:?} on stream {} (groups: {})",
            args.group,
            settings.ingest.stream.name,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    let group_filters = filters(group);
    let own_replays = format!("replay.{}.>", args.group);
    if !group_filters.contains(&own_replays) {
        return Err(Error::Failed(format!(
            "group {} does not take replays (its consumer does not filter {own_replays}); \
             restart its processors with this Hookline version first",
            args.group
        )));
    }
    let store = js.get_key_value(settings.idempotency_bucket()).await.ok();
    let run_id = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut history = History::open(
        &stream,
        vec![format!("{SUBJECT_PREFIX}.{}.>", args.source)],
        Some(since),
        false,
    )
    .await?;
    let mut summary = Summary::default();
    let mut seen = HashSet::new();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while let Some(item) = history.next().await? {
        if item.published > until {
            break;
        }
        let message = &item.message;
        if let Some(event) = &args.event {
            let stored = header(message, HEADER_EVENT).unwrap_or_default();
            let token = message.subject.rsplit('.').next().unwrap_or_default();
            if &stored != event && token != subject_token(event) {
                continue;
            }
        }
        summary.matched += 1;
        if !group_filters
            .iter()
            .any(|f| subject_matches(f, &message.subject))
        {
            summary.not_for_group += 1;
            continue;
        }
        let Ok(envelope) = Envelope::decode(message.payload.clone()) else {
            summary.not_for_group += 1; // undecodable: the group dead-letters those
            continue;
        };
        let Ok(dedup) = WebhookKey::new(&envelope.source, &envelope.id) else {
            summary.not_for_group += 1; // an invalid source: the group dead-letters those
            continue;
        };
        if !seen.insert(dedup.clone()) {
            summary.repeated += 1;
            continue;
        }
        let key = dedup.record_key(&args.group);
        match record(store.as_ref(), &key).await? {
            Some((Record::Done { .. }, revision)) if args.bypass_idempotency => {
                if !args.dry_run
                    && let Some(store) = &store
                {
                    store
                        .delete_expect_revision(&key, Some(revision))
                        .await
                        .map_err(|e| {
                            Error::caused(
                                format!("cannot remove the idempotency record of {dedup}"),
                                e,
                            )
                        })?;
                }
                summary.bypassed += 1;
            }
            Some((Record::Done { .. }, _)) => {
                summary.already_handled += 1;
                continue;
            }
            Some(_) => {
                summary.in_progress += 1;
                continue;
            }
            None => {}
        }
        if !args.dry_run {
            pace.tick().await;
            let copy = Copy {
                group: &args.group,
                stream: &settings.ingest.stream.name,
                run_id,
                stream_seq: item.stream_sequence,
                subject: &message.subject,
                msg_id: header(message, NATS_MESSAGE_ID.as_ref())
                    .unwrap_or_else(|| dedup.message_id().to_owned()),
                source: header(message, HEADER_SOURCE),
                event: header(message, HEADER_EVENT),
            };
            publish_copy(&js, copy, message.payload.clone())
                .await
                .map_err(|e| {
                    Error::caused(
                        format!(
                            "replay stopped at WEBHOOKS #{} ({} published before it)",
                            item.stream_sequence, summary.published
                        ),
                        e,
                    )
                })?;
        }
        summary.published += 1;
    }
    report(args, &summary, since, until);
    Ok(())
}

/// A replayed copy of one stored message, for one group.
#[derive(Debug, Clone)]
pub struct Copy<'a> {
    /// The group that receives it.
    pub group: &'a str,
    /// The stream the original is in.
    pub stream: &'a str,
    /// Makes the copy's `Nats-Msg-Id` unique per replay run.
    pub run_id: u128,
    /// The original's sequence.
    pub stream_seq: u64,
    /// The original's subject.
    pub subject: &'a str,
    /// The original's `Nats-Msg-Id`.
    pub msg_id: String,
    /// Its `Hookline-Source`.
    pub source: Option<String>,
    /// Its `Hookline-Event`.
    pub event: Option<String>,
}

/// Publishes `copy` on `replay.<group>.…` and waits for its PubAck; `None`
/// when the subject is not a webhook's.
///
/// # Errors
/// No PubAck.
pub async fn publish_copy(
    js: &async_nats::jetstream::Context,
    copy: Copy<'_>,
    payload: bytes::Bytes,
) -> Result<
    Option<async_nats::jetstream::publish::PublishAck>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    let Some(subject) = replay_subject(copy.group, copy.subject) else {
        return Ok(None);
    };
    let mut message = PublishMessage::build()
        .message_id(replay_message_id(
            &copy.msg_id,
            copy.group,
            &copy.run_id.to_string(),
        ))
        .header(
            HEADER_REPLAY_OF,
            format!("{}:{}", copy.stream, copy.stream_seq),
        );
    if let Some(source) = copy.source {
        message = message.header(HEADER_SOURCE, source);
    }
    if let Some(event) = copy.event {
        message = message.header(HEADER_EVENT, event);
    }
    let ack = js
        .send_publish(subject, message.payload(payload))
        .await?
        .await?;
    Ok(Some(ack))
}

async fn record(store: Option<&kv::Store>, key: &str) -> Result<Option<(Record, u64)>> {
    let Some(store) = store else {
        return Ok(None);
    };
    let entry = store
        .entry(key)
        .await
        .map_err(|e| Error::caused("cannot read the idempotency bucket", e))?;
    Ok(entry.and_then(|entry| {
        if matches!(
            entry.operation,
            kv::Operation::Delete | kv::Operation::Purge
        ) {
            return None;
        }
        let record = serde_json::from_slice(&entry.value).ok()?;
        Some((record, entry.revision))
    }))
}

/// `50` or `50/s`: copies per second, 0.1 to 10000.
///
/// # Errors
/// Anything else (2).
pub fn parse_rate(text: &str) -> Result<f64> {
    let number = text.trim().trim_end_matches("/s");
    match number.parse::<f64>() {
        Ok(rate) if (0.1..=10_000.0).contains(&rate) => Ok(rate),
        _ => Err(Error::Usage(format!(
            "--rate {text:?} must be copies per second between 0.1 and 10000, e.g. 50 or 50/s"
        ))),
    }
}

fn report(args: &ReplayArgs, summary: &Summary, since: SystemTime, until: SystemTime) {
    if args.json {
        let out = ReplayReport {
            group: args.group.clone(),
            source: args.source.clone(),
            since: rfc3339(since),
            until: rfc3339(until),
            dry_run: args.dry_run,
            summary: summary.clone(),
        };
        println!("{}", crate::status::json_line(&out));
        return;
    }
    let verb = if args.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    println!(
        "{verb} {} of {} {} webhooks stored {} .. {} to group {}",
        summary.published,
        summary.matched,
        args.source,
        rfc3339(since),
        rfc3339(until),
        args.group
    );
    if summary.bypassed > 0 {
        println!(
            "  {} had been handled; their idempotency records were removed (--bypass-idempotency)",
            summary.bypassed
        );
    }
    if summary.already_handled > 0 {
        println!(
            "  {} skipped: already handled by {} (pass --bypass-idempotency to run them again)",
            summary.already_handled, args.group
        );
    }
    if summary.in_progress > 0 {
        println!(
            "  {} skipped: a delivery is running or waiting for a retry",
            summary.in_progress
        );
    }
    if summary.not_for_group > 0 {
        println!(
            "  {} skipped: not taken by {}'s filters",
            summary.not_for_group, args.group
        );
    }
    if summary.repeated > 0 {
        println!(
            "  {} skipped: further copies of webhooks already replayed",
            summary.repeated
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second() {
        assert!((parse_rate("50").unwrap() - 50.0).abs() < f64::EPSILON);
        assert!((parse_rate("2.5/s").unwrap() - 2.5).abs() < f64::EPSILON);
        for bad in ["0", "-1", "fast", "1e9"] {
            assert_eq!(parse_rate(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
