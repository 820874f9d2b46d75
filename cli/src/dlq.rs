//! `hookline dlq list|show|replay|purge`: dead letters in `WEBHOOKS_DLQ`,
//! chosen by sequence and filters (group, source, event, time).

use std::time::SystemTime;

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use base64::Engine as _;
use hookline_platform::contract::{
    DLQ_SUBJECT_PREFIX, HEADER_DLQ_ATTEMPTS, HEADER_DLQ_GROUP, HEADER_DLQ_REASON,
    HEADER_DLQ_STREAM_SEQ, HEADER_EVENT, HEADER_SOURCE, subject_token,
};
use hookline_processor::dead_letter::redrive;
use hookline_proto::{Envelope, Message as _};
use serde_json::{Value, json};

use crate::args::{DlqCommand, Selection};
use crate::confirm::confirm;
use crate::error::{Error, Result};
use crate::jetstream::open_stream;
use crate::settings::Settings;
use crate::table::{Table, cut};
use crate::when::{Range, rfc3339, system_time};

/// Runs a `dlq` subcommand.
///
/// # Errors
/// Bad selection (2), a named sequence missing (3), NATS trouble (1).
pub async fn run(settings: &Settings, command: &DlqCommand) -> Result<()> {
    match command {
        DlqCommand::List {
            selection,
            limit,
            json,
        } => {
            let filter = Filter::parse(selection, false)?;
            let js = settings.connect().await?;
            let dlq = open_stream(&js, &settings.ingest.stream.dlq_name).await?;
            let letters = select(&dlq, &filter, *limit).await?;
            print_list(&letters, *json);
            Ok(())
        }
        DlqCommand::Show { selection, json } => {
            let filter = Filter::parse(selection, false)?;
            if filter.is_everything() {
                return Err(Error::Usage(
                    "dlq show needs a sequence or a filter (see `hookline dlq list`)".to_owned(),
                ));
            }
            let js = settings.connect().await?;
            let dlq = open_stream(&js, &settings.ingest.stream.dlq_name).await?;
            let letters = select(&dlq, &filter, None).await?;
            print_show(&letters, *json);
            Ok(())
        }
        DlqCommand::Replay {
            selection,
            all,
            keep,
            dry_run,
            json,
        } => {
            let filter = Filter::parse(selection, *all)?;
            filter.require_choice()?;
            let js = settings.connect().await?;
            let dlq_name = &settings.ingest.stream.dlq_name;
            let dlq = open_stream(&js, dlq_name).await?;
            let letters = select(&dlq, &filter, None).await?;
            if *dry_run {
                print_list(&letters, *json);
                return Ok(());
            }
            replay(&js, &dlq, dlq_name, &letters, *keep, *json).await
        }
        DlqCommand::Purge {
            selection,
            all,
            yes,
        } => {
            let filter = Filter::parse(selection, *all)?;
            filter.require_choice()?;
            let js = settings.connect().await?;
            let dlq = open_stream(&js, &settings.ingest.stream.dlq_name).await?;
            let letters = select(&dlq, &filter, None).await?;
            purge(&dlq, &letters, *yes).await
        }
    }
}

/// One dead letter, as read from the stream.
#[derive(Debug, Clone)]
pub struct Letter {
    /// Its sequence in the dead-letter stream.
    pub seq: u64,
    /// When it was dead-lettered.
    pub time: SystemTime,
    /// `dlq.<group>.<source>.<event>`.
    pub subject: String,
    /// The group that gave up.
    pub group: String,
    /// The source.
    pub source: String,
    /// The event as the provider named it.
    pub event: String,
    /// The webhook id (from the Envelope).
    pub webhook_id: Option<String>,
    /// The dead letter's `Nats-Msg-Id`.
    pub msg_id: String,
    /// Deliveries attempted.
    pub attempts: String,
    /// Why.
    pub reason: String,
    /// The original message's sequence in `WEBHOOKS`.
    pub original_seq: String,
    /// The Envelope, when the payload decodes.
    pub envelope: Option<Envelope>,
}

impl Letter {
    /// Reads a dead letter from its stored message.
    pub fn from_message(message: &StreamMessage) -> Self {
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        let tokens: Vec<&str> = message.subject.splitn(4, '.').collect();
        let envelope = Envelope::decode(message.payload.clone()).ok();
        let event = match header(HEADER_EVENT) {
            e if e.is_empty() => tokens.get(3).copied().unwrap_or_default().to_owned(),
            e => e,
        };
        Self {
            seq: message.sequence,
            time: system_time(message.time),
            subject: message.subject.to_string(),
            group: match header(HEADER_DLQ_GROUP) {
                g if g.is_empty() => tokens.get(1).copied().unwrap_or_default().to_owned(),
                g => g,
            },
            source: match header(HEADER_SOURCE) {
                s if s.is_empty() => tokens.get(2).copied().unwrap_or_default().to_owned(),
                s => s,
            },
            event,
            webhook_id: envelope.as_ref().map(|e| e.id.clone()),
            msg_id: header(NATS_MESSAGE_ID.as_ref()),
            attempts: header(HEADER_DLQ_ATTEMPTS),
            reason: header(HEADER_DLQ_REASON),
            original_seq: header(HEADER_DLQ_STREAM_SEQ),
            envelope,
        }
    }

    fn summary_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "dead_lettered_at": rfc3339(self.time),
            "group": self.group,
            "source": self.source,
            "event": self.event,
            "webhook_id": self.webhook_id,
            "msg_id": self.msg_id,
            "attempts": self.attempts.parse::<u64>().ok(),
            "reason": self.reason,
            "original_seq": self.original_seq.parse::<u64>().ok(),
            "subject": self.subject,
        })
    }
}

/// Which dead letters: sequences and filters.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    sequences: Vec<u64>,
    group: Option<String>,
    source: Option<String>,
    event: Option<String>,
    range: Range,
    all: bool,
}

impl Filter {
    /// Parses a selection; `all` allows an empty one.
    ///
    /// # Errors
    /// A bad sequence or time (2).
    pub fn parse(selection: &Selection, all: bool) -> Result<Self> {
        let mut sequences = Vec::new();
        for text in &selection.sequences {
            let bad = || {
                Error::Usage(format!(
                    "bad dead-letter sequence {text:?}: use a number such as 42, or a range 40-45"
                ))
            };
            match text.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (u64, u64) = (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    );
                    if a > b || b - a > 100_000 {
                        return Err(bad());
                    }
                    sequences.extend(a..=b);
                }
                None => sequences.push(text.trim().parse().map_err(|_| bad())?),
            }
        }
        let range = Range::parse(
            selection.since.as_deref(),
            selection.until.as_deref(),
            SystemTime::now(),
        )?;
        let filter = Self {
            sequences,
            group: selection.group.clone(),
            source: selection.source.clone(),
            event: selection.event.clone(),
            range,
            all,
        };
        Ok(filter)
    }

    /// Whether nothing narrows the selection.
    pub fn is_everything(&self) -> bool {
        self.sequences.is_empty()
            && self.group.is_none()
            && self.source.is_none()
            && self.event.is_none()
            && self.range == Range::default()
    }

    /// The subject filter the scan uses.
    fn subject(&self) -> String {
        format!(
            "{DLQ_SUBJECT_PREFIX}.{}.{}.>",
            self.group.as_deref().unwrap_or("*"),
            self.source.as_deref().unwrap_or("*")
        )
    }

    fn matches(&self, letter: &Letter) -> bool {
        self.group.as_ref().is_none_or(|g| &letter.group == g)
            && self.source.as_ref().is_none_or(|s| &letter.source == s)
            && self.event.as_ref().is_none_or(|e| {
                &letter.event == e
                    || letter.subject.rsplit('.').next() == Some(subject_token(e).as_str())
            })
            && self.range.contains(letter.time)
    }

    fn require_choice(&self) -> Result<()> {
        if self.is_everything() && !self.all {
            return Err(Error::Usage(
                "choose dead letters: SEQ…, --group, --source, --event, --since/--until, or --all"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

/// The dead letters `filter` selects, oldest first (at most `limit`).
///
/// # Errors
/// A named sequence that is not a dead letter (3), or NATS trouble (1).
pub async fn select(dlq: &Stream, filter: &Filter, limit: Option<usize>) -> Result<Vec<Letter>> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut letters = Vec::new();
    if !filter.sequences.is_empty() {
        for &seq in &filter.sequences {
            // Sequence 0 would ask the server for "the last message on an
            // empty subject", answered "invalid subject".
            if seq == 0 {
                return Err(Error::NotFound(
                    "no dead letter 0 (sequences start at 1)".to_owned(),
                ));
            }
            let message = match dlq.direct_get(seq).await {
                Ok(message) => message,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => {
                    return Err(Error::NotFound(format!("no dead letter {seq}")));
                }
                Err(e) => return Err(Error::caused(format!("cannot read dead letter {seq}"), e)),
            };
            let letter = Letter::from_message(&message);
            if !filter.matches(&letter) {
                return Err(Error::NotFound(format!(
                    "dead letter {seq} ({}) does not match the filters",
                    letter.subject
                )));
            }
            letters.push(letter);
        }
        letters.truncate(limit);
        return Ok(letters);
    }
    let subject = filter.subject();
    let mut next = 1;
    while letters.len() < limit {
        let message = match dlq.direct_get_next_for_subject(&subject, Some(next)).await {
            Ok(message) => message,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(Error::caused("cannot read the dead letters", e)),
        };
        next = message.sequence + 1;
        let letter = Letter::from_message(&message);
        if let Some(until) = filter.range.until
            && letter.time > until
        {
            break; // stored in time order
        }
        if filter.matches(&letter) {
            letters.push(letter);
        }
    }
    Ok(letters)
}

fn print_list(letters: &[Letter], as_json: bool) {
    if as_json {
        let list: Vec<Value> = letters.iter().map(Letter::summary_json).collect();
        println!("{}", Value::Array(list));
        return;
    }
    if letters.is_empty() {
        println!("no dead letters");
        return;
    }
    let mut table = Table::new(&[
        "SEQ",
        "DEAD-LETTERED",
        "GROUP",
        "SOURCE",
        "EVENT",
        "WEBHOOK ID",
        "ATTEMPTS",
        "REASON",
    ]);
    for letter in letters {
        table.row(vec![
            letter.seq.to_string(),
            rfc3339(letter.time),
            letter.group.clone(),
            letter.source.clone(),
            cut(&letter.event, 32),
            cut(letter.webhook_id.as_deref().unwrap_or("<undecodable>"), 48),
            letter.attempts.clone(),
            cut(&letter.reason, 160),
        ]);
    }
    print!("{}", table.render());
}

fn print_show(letters: &[Letter], as_json: bool) {
    let details: Vec<Value> = letters
        .iter()
        .map(|letter| {
            let mut value = letter.summary_json();
            if let Some(envelope) = &letter.envelope {
                let (body, base64) = match std::str::from_utf8(&envelope.body) {
                    Ok(text) => (text.to_owned(), false),
                    Err(_) => (
                        base64::engine::general_purpose::STANDARD.encode(&envelope.body),
                        true,
                    ),
                };
                value["envelope"] = json!({
                    "id": envelope.id,
                    "source": envelope.source,
                    "event": envelope.event,
                    "received_at": envelope.received_at.as_ref().map(crate::trace::timestamp),
                    "content_type": envelope.content_type,
                    "scheme": envelope.scheme,
                    "headers": envelope.headers.iter().map(|h| json!([h.name, h.value])).collect::<Vec<_>>(),
                    "body": body,
                    "body_base64": base64,
                });
            }
            value
        })
        .collect();
    if as_json {
        println!("{}", Value::Array(details));
        return;
    }
    for (letter, detail) in letters.iter().zip(&details) {
        println!("dead letter {} ({})", letter.seq, letter.subject);
        println!("  dead-lettered  {}", rfc3339(letter.time));
        println!("  group          {}", letter.group);
        println!("  source/event   {} / {}", letter.source, letter.event);
        println!("  Nats-Msg-Id    {}", letter.msg_id);
        println!("  attempts       {}", letter.attempts);
        println!("  original       WEBHOOKS #{}", letter.original_seq);
        println!("  reason         {}", letter.reason);
        match detail.get("envelope") {
            Some(envelope) => {
                println!(
                    "  webhook id     {}",
                    envelope["id"].as_str().unwrap_or_default()
                );
                println!(
                    "  received at    {}",
                    envelope["received_at"].as_str().unwrap_or("-")
                );
                println!(
                    "  content type   {}",
                    envelope["content_type"].as_str().unwrap_or_default()
                );
                for header in envelope["headers"].as_array().into_iter().flatten() {
                    println!(
                        "  header         {}: {}",
                        header[0].as_str().unwrap_or_default(),
                        header[1].as_str().unwrap_or_default()
                    );
                }
                let body = envelope["body"].as_str().unwrap_or_default();
                println!(
                    "  body{}\n{body}",
                    if envelope["body_base64"] == true {
                        " (base64)"
                    } else {
                        ""
                    }
                );
            }
            None => println!("  payload        not an Envelope"),
        }
        println!();
    }
}

async fn replay(
    js: &async_nats::jetstream::Context,
    dlq: &Stream,
    dlq_name: &str,
    letters: &[Letter],
    keep: bool,
    as_json: bool,
) -> Result<()> {
    let mut done = Vec::new();
    for letter in letters {
        let ack = match redrive(js, dlq_name, letter.seq).await {
            Ok(ack) => ack,
            Err(e) => {
                report_replayed(&done, as_json);
                return Err(Error::caused(
                    format!(
                        "dead letter {} was not re-driven ({} re-driven before it); it stays in {dlq_name}",
                        letter.seq,
                        done.len()
                    ),
                    e,
                ));
            }
        };
        // The copy is stored (PubAck): only now may the dead letter go.
        let removed = if keep {
            false
        } else {
            dlq.delete_message(letter.seq).await.map_err(|e| {
                Error::caused(
                    format!(
                        "dead letter {} was re-driven (WEBHOOKS #{}) but could not be removed",
                        letter.seq, ack.sequence
                    ),
                    e,
                )
            })?
        };
        done.push(json!({
            "seq": letter.seq,
            "group": letter.group,
            "source": letter.source,
            "webhook_id": letter.webhook_id,
            "stream": ack.stream,
            "stream_seq": ack.sequence,
            "duplicate": ack.duplicate,
            "removed": removed,
        }));
    }
    report_replayed(&done, as_json);
    Ok(())
}

fn report_replayed(done: &[Value], as_json: bool) {
    if as_json {
        println!("{}", Value::Array(done.to_vec()));
        return;
    }
    if done.is_empty() {
        println!("no dead letters to re-drive");
    }
    for item in done {
        println!(
            "re-drove dead letter {} (group {}, {} {}) as {} #{}{}{}",
            item["seq"],
            item["group"].as_str().unwrap_or_default(),
            item["source"].as_str().unwrap_or_default(),
            item["webhook_id"].as_str().unwrap_or("<undecodable>"),
            item["stream"].as_str().unwrap_or_default(),
            item["stream_seq"],
            if item["duplicate"] == true {
                " (already there: duplicate)"
            } else {
                ""
            },
            if item["removed"] == true {
                "; removed from the DLQ"
            } else {
                "; kept in the DLQ"
            },
        );
    }
}

async fn purge(dlq: &Stream, letters: &[Letter], yes: bool) -> Result<()> {
    if letters.is_empty() {
        println!("no dead letters to purge");
        return Ok(());
    }
    if !yes
        && !confirm(
            &format!(
                "Delete {} dead letters for good? They cannot be re-driven afterwards. [y/N] ",
                letters.len()
            ),
            "pass --yes to purge without asking",
        )?
    {
        return Err(Error::Failed(
            "purge cancelled; nothing was deleted".to_owned(),
        ));
    }
    let mut deleted = 0usize;
    for letter in letters {
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
    println!("purged {deleted} dead letters");
    Ok(())
}
