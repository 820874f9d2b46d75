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

use crate::args::{DlqCommand, Selection};
use crate::confirm::confirm;
use crate::error::{Error, Result};
use crate::jetstream::open_stream;
use crate::report::{EnvelopeReport, LetterDetail, LetterSummary, Redriven};
use crate::settings::Settings;
use crate::status::json_line;
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

    /// The letter as reported (list rows, `--json`, the console).
    pub fn summary(&self) -> LetterSummary {
        LetterSummary {
            seq: self.seq,
            dead_lettered_at: rfc3339(self.time),
            group: self.group.clone(),
            source: self.source.clone(),
            event: self.event.clone(),
            webhook_id: self.webhook_id.clone(),
            msg_id: self.msg_id.clone(),
            attempts: self.attempts.parse::<u64>().ok(),
            reason: self.reason.clone(),
            original_seq: self.original_seq.parse::<u64>().ok(),
            subject: self.subject.clone(),
        }
    }

    /// The letter in full, with the webhook it holds.
    pub fn detail(&self) -> LetterDetail {
        LetterDetail {
            summary: self.summary(),
            envelope: self.envelope.as_ref().map(envelope_report),
        }
    }
}

/// Whether a header could carry a signature or credential. Ingest does not
/// store those; reports drop them again in case an older ingest did.
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "signature",
        "authorization",
        "cookie",
        "secret",
        "token",
        "api-key",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// An Envelope as reported: the body as text, or base64 when not UTF-8.
pub fn envelope_report(envelope: &Envelope) -> EnvelopeReport {
    let (body, body_base64) = match std::str::from_utf8(&envelope.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&envelope.body),
            true,
        ),
    };
    EnvelopeReport {
        id: envelope.id.clone(),
        source: envelope.source.clone(),
        event: envelope.event.clone(),
        received_at: envelope.received_at.as_ref().map(crate::trace::timestamp),
        content_type: envelope.content_type.clone(),
        scheme: envelope.scheme.clone(),
        headers: envelope
            .headers
            .iter()
            .filter(|h| !is_credential_header(&h.name))
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        body,
        body_base64,
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
        let list: Vec<LetterSummary> = letters.iter().map(Letter::summary).collect();
        println!("{}", json_line(&list));
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
    let details: Vec<LetterDetail> = letters.iter().map(Letter::detail).collect();
    if as_json {
        println!("{}", json_line(&details));
        return;
    }
    for detail in &details {
        let letter = &detail.summary;
        println!("dead letter {} ({})", letter.seq, letter.subject);
        println!("  dead-lettered  {}", letter.dead_lettered_at);
        println!("  group          {}", letter.group);
        println!("  source/event   {} / {}", letter.source, letter.event);
        println!("  Nats-Msg-Id    {}", letter.msg_id);
        println!("  attempts       {}", text(letter.attempts));
        println!("  original       WEBHOOKS #{}", text(letter.original_seq));
        println!("  reason         {}", letter.reason);
        match &detail.envelope {
            Some(envelope) => {
                println!("  webhook id     {}", envelope.id);
                println!(
                    "  received at    {}",
                    envelope.received_at.as_deref().unwrap_or("-")
                );
                println!("  content type   {}", envelope.content_type);
                for (name, value) in &envelope.headers {
                    println!("  header         {name}: {value}");
                }
                println!(
                    "  body{}\n{}",
                    if envelope.body_base64 {
                        " (base64)"
                    } else {
                        ""
                    },
                    envelope.body
                );
            }
            None => println!("  payload        not an Envelope"),
        }
        println!();
    }
}

fn text(value: Option<u64>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

/// Re-drives `letters` into the main flow, oldest first, each deleted from
/// the DLQ once its copy is stored (unless `keep`). Returns what was done;
/// on an error, what was done before it comes with the error.
///
/// # Errors
/// A publish without PubAck or a failed delete, after `done` re-drives.
pub async fn redrive_letters(
    js: &async_nats::jetstream::Context,
    dlq: &Stream,
    dlq_name: &str,
    letters: &[Letter],
    keep: bool,
) -> (Vec<Redriven>, Result<()>) {
    let mut done = Vec::new();
    for letter in letters {
        let ack = match redrive(js, dlq_name, letter.seq).await {
            Ok(ack) => ack,
            Err(e) => {
                let error = Error::caused(
                    format!(
                        "dead letter {} was not re-driven ({} re-driven before it); it stays in {dlq_name}",
                        letter.seq,
                        done.len()
                    ),
                    e,
                );
                return (done, Err(error));
            }
        };
        // The copy is stored (PubAck): only now may the dead letter go.
        let removed = if keep {
            false
        } else {
            match dlq.delete_message(letter.seq).await {
                Ok(removed) => removed,
                Err(e) => {
                    let error = Error::caused(
                        format!(
                            "dead letter {} was re-driven (WEBHOOKS #{}) but could not be removed",
                            letter.seq, ack.sequence
                        ),
                        e,
                    );
                    return (done, Err(error));
                }
            }
        };
        done.push(Redriven {
            seq: letter.seq,
            group: letter.group.clone(),
            source: letter.source.clone(),
            webhook_id: letter.webhook_id.clone(),
            stream: ack.stream.clone(),
            stream_seq: ack.sequence,
            duplicate: ack.duplicate,
            removed,
        });
    }
    (done, Ok(()))
}

async fn replay(
    js: &async_nats::jetstream::Context,
    dlq: &Stream,
    dlq_name: &str,
    letters: &[Letter],
    keep: bool,
    as_json: bool,
) -> Result<()> {
    let (done, result) = redrive_letters(js, dlq, dlq_name, letters, keep).await;
    report_replayed(&done, as_json);
    result
}

fn report_replayed(done: &[Redriven], as_json: bool) {
    if as_json {
        println!("{}", json_line(&done));
        return;
    }
    if done.is_empty() {
        println!("no dead letters to re-drive");
    }
    for item in done {
        println!(
            "re-drove dead letter {} (group {}, {} {}) as {} #{}{}{}",
            item.seq,
            item.group,
            item.source,
            item.webhook_id.as_deref().unwrap_or("<undecodable>"),
            item.stream,
            item.stream_seq,
            if item.duplicate {
                " (already there: duplicate)"
            } else {
                ""
            },
            if item.removed {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_never_reach_a_report() {
        for name in [
            "X-Hub-Signature-256",
            "Stripe-Signature",
            "webhook-signature",
            "Authorization",
            "X-Gitlab-Token",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in ["x-github-event", "content-type", "webhook-id"] {
            assert!(!is_credential_header(name), "{name}");
        }
    }
}
