//! What the console's buttons and POST API calls do: re-drive and purge
//! dead letters (the CLI's selection and re-drive code), replay one webhook
//! to one group (the CLI's replay copy). Reads and writes as the CLI does.

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::header::NATS_MESSAGE_ID;
use hookline_platform::contract::{HEADER_EVENT, HEADER_SOURCE};
use hookline_proto::{Envelope, Message as _};
use serde::{Deserialize, Serialize};

use super::Console;
use crate::args::{Selection, TraceArgs};
use crate::dlq::{self, Filter, Letter};
use crate::error::{Error, Result};
use crate::jetstream::{durable_consumers, filters, open_stream};
use crate::replay::{Copy, publish_copy};
use crate::report::{EnvelopeReport, Redriven, WebhookReport};

/// Which dead letters (query string, form or JSON body).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeadLetterQuery {
    /// Sequences (`42`, `40-45`), comma separated.
    #[serde(default)]
    pub seq: Option<String>,
    /// Group.
    #[serde(default)]
    pub group: Option<String>,
    /// Source.
    #[serde(default)]
    pub source: Option<String>,
    /// Event.
    #[serde(default)]
    pub event: Option<String>,
    /// RFC 3339 or an age (`2h`).
    #[serde(default)]
    pub since: Option<String>,
    /// RFC 3339 or an age.
    #[serde(default)]
    pub until: Option<String>,
    /// Every dead letter (for actions with no other choice).
    #[serde(default)]
    pub all: Option<String>,
    /// At most this many (lists).
    #[serde(default)]
    pub limit: Option<usize>,
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl DeadLetterQuery {
    /// The CLI's filter for it.
    ///
    /// # Errors
    /// Bad sequences or times (2).
    pub fn filter(&self) -> Result<Filter> {
        let selection = Selection {
            sequences: self
                .seq
                .as_deref()
                .unwrap_or_default()
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            group: non_empty(self.group.as_ref()),
            source: non_empty(self.source.as_ref()),
            event: non_empty(self.event.as_ref()),
            since: non_empty(self.since.as_ref()),
            until: non_empty(self.until.as_ref()),
        };
        Filter::parse(&selection, self.all.is_some())
    }
}

/// The dead letters a query selects, oldest first (at most `limit`, 500 by default).
///
/// # Errors
/// As [`dlq::select`].
pub async fn dead_letters(console: &Console, query: &DeadLetterQuery) -> Result<Vec<Letter>> {
    let filter = query.filter()?;
    let dlq = open_stream(&console.js, &console.settings.ingest.stream.dlq_name).await?;
    dlq::select(&dlq, &filter, Some(query.limit.unwrap_or(500).min(5_000))).await
}

/// Re-drives the selected dead letters (as `hookline dlq replay`).
///
/// # Errors
/// Nothing chosen (2); a failure, after what was re-driven before it.
pub async fn redrive(console: &Console, query: &DeadLetterQuery) -> (Vec<Redriven>, Result<()>) {
    let letters = match selected(console, query).await {
        Ok(letters) => letters,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let dlq_name = &console.settings.ingest.stream.dlq_name;
    let dlq = match open_stream(&console.js, dlq_name).await {
        Ok(dlq) => dlq,
        Err(e) => return (Vec::new(), Err(e)),
    };
    dlq::redrive_letters(&console.js, &dlq, dlq_name, &letters, false).await
}

/// Deletes the selected dead letters for good; returns how many.
///
/// # Errors
/// Nothing chosen (2), NATS trouble (1).
pub async fn purge(console: &Console, query: &DeadLetterQuery) -> Result<usize> {
    let letters = selected(console, query).await?;
    let dlq = open_stream(&console.js, &console.settings.ingest.stream.dlq_name).await?;
    let mut deleted = 0;
    for letter in &letters {
        dlq.delete_message(letter.seq).await.map_err(|e| {
            Error::caused(
                format!(
                    "cannot delete dead letter {} ({deleted} deleted before it)",
                    letter.seq
                ),
                e,
            )
        })?;
        deleted += 1;
    }
    Ok(deleted)
}

async fn selected(console: &Console, query: &DeadLetterQuery) -> Result<Vec<Letter>> {
    let filter = query.filter()?;
    if filter.is_everything() && query.all.is_none() {
        return Err(Error::Usage(
            "choose dead letters: tick some, filter them, or choose all".to_owned(),
        ));
    }
    let dlq = open_stream(&console.js, &console.settings.ingest.stream.dlq_name).await?;
    dlq::select(&dlq, &filter, None).await
}

/// One webhook: where it is in every group, and what it holds.
///
/// # Errors
/// Not found (3), NATS trouble (1).
pub async fn webhook(console: &Console, source: &str, id: &str) -> Result<WebhookReport> {
    let args = TraceArgs {
        id: id.to_owned(),
        source: Some(source.to_owned()),
        since: None,
        json: false,
    };
    let trace = crate::trace::find(&console.settings, &console.js, &args).await?;
    let stream = open_stream(&console.js, &console.settings.ingest.stream.name).await?;
    let envelope = match trace.messages.first() {
        Some(first) => stream
            .direct_get(first.stream_seq)
            .await
            .ok()
            .and_then(|m| Envelope::decode(m.payload).ok())
            .map(|e| dlq::envelope_report(&e)),
        None => None,
    };
    Ok(WebhookReport { trace, envelope })
}

/// What replaying one webhook to a group did.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    /// The group.
    pub group: String,
    /// The original's sequence.
    pub original_seq: u64,
    /// The copy's sequence.
    pub stream_seq: u64,
}

/// Replays one webhook (its first stored message) to `group`, as `hookline replay` would.
///
/// # Errors
/// Unknown webhook or group (3), a group that takes no replays (1).
pub async fn replay_webhook(
    console: &Console,
    source: &str,
    id: &str,
    group: &str,
) -> Result<Replayed> {
    let report = webhook(console, source, id).await?;
    let first = report
        .trace
        .messages
        .first()
        .ok_or_else(|| Error::NotFound(format!("webhook {id:?} is not in the stream")))?;
    let stream = open_stream(&console.js, &console.settings.ingest.stream.name).await?;
    let consumers = durable_consumers(&stream).await?;
    let consumer = consumers
        .iter()
        .find(|c| c.name == group)
        .ok_or_else(|| Error::NotFound(format!("no processor group {group:?}")))?;
    if !filters(consumer).contains(&format!("replay.{group}.>")) {
        return Err(Error::Failed(format!(
            "group {group} does not take replays"
        )));
    }
    let message = stream
        .direct_get(first.stream_seq)
        .await
        .map_err(|e| Error::caused(format!("cannot read message {}", first.stream_seq), e))?;
    let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
    let copy = Copy {
        group,
        stream: &console.settings.ingest.stream.name,
        run_id: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
        stream_seq: first.stream_seq,
        subject: &first.subject,
        msg_id: header(NATS_MESSAGE_ID.as_ref()).unwrap_or_else(|| first.msg_id.clone()),
        source: header(HEADER_SOURCE),
        event: header(HEADER_EVENT),
    };
    let ack = publish_copy(&console.js, copy, message.payload.clone())
        .await
        .map_err(|e| Error::Failed(format!("the copy was not stored: {e}")))?
        .ok_or_else(|| Error::Failed("not a webhook's message".to_owned()))?;
    Ok(Replayed {
        group: group.to_owned(),
        original_seq: first.stream_seq,
        stream_seq: ack.sequence,
    })
}

/// `hookline send`'s command line that re-signs and sends this body again.
pub fn curl_hint(source: &str, envelope: &EnvelopeReport) -> String {
    format!(
        "hookline send {source} --event {} --id {} --body body.json   # body.json: the body below; hookline signs it",
        shell_quote(&envelope.event),
        shell_quote(&envelope.id)
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}
