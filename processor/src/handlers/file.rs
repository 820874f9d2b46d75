//! The `file` handler: one JSON line per webhook, for debugging and audits.

use std::borrow::Cow;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::handler::{Handler, Outcome, Webhook};

/// Most lines one `write(2)` carries.
const MAX_BATCH: usize = 256;

/// Appends one JSON object per webhook to a file:
///
/// ```json
/// {"id":"evt_1","source":"stripe","event":"invoice.paid","received_at":"2026-01-02T03:04:05.678Z",
///  "group":"billing","subject":"webhooks.stripe.invoice_paid","stream_seq":42,"attempt":1,
///  "content_type":"application/json","headers":[{"name":"user-agent","value":"Stripe/1.0"}],
///  "body":"{\"id\":\"evt_1\"}","body_base64":false}
/// ```
///
/// `body` is the raw body as a UTF-8 string, or base64 (with `body_base64:
/// true`) when it is not valid UTF-8. One writer task owns the file (opened
/// for appending): it takes every line waiting, writes them whole with one
/// `write(2)` on tokio's blocking pool (a slow disk never stalls the
/// runtime), and only then answers their handlers, so lines never
/// interleave and each reaches the OS before its webhook counts as handled
/// (no fsync: this is a debugging and audit aid, not a durable store).
/// On the binary's one-thread runtime, handlers hand their lines to the
/// task without crossing threads; only a whole batch does, so a burst of
/// webhooks costs one thread hand-off and one system call per batch rather
/// than per webhook.
#[derive(Debug, Clone)]
pub struct FileHandler {
    path: PathBuf,
    lines: mpsc::UnboundedSender<Pending>,
}

/// A line waiting for the writer, and who to tell when it is written.
type Pending = (String, oneshot::Sender<std::io::Result<()>>);

/// One line of the file (field order as documented above).
#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    source: &'a str,
    event: &'a str,
    received_at: Option<String>,
    group: &'a str,
    subject: &'a str,
    stream_seq: u64,
    attempt: u32,
    content_type: &'a str,
    headers: Vec<LineHeader<'a>>,
    body: Cow<'a, str>,
    body_base64: bool,
}

#[derive(Serialize)]
struct LineHeader<'a> {
    name: &'a str,
    value: &'a str,
}

impl FileHandler {
    /// Opens `path` for appending (creating it) and spawns its writer task
    /// on the current runtime (it ends when the last clone of the handler is
    /// dropped, or with the runtime; handlers then answer "retry").
    ///
    /// # Errors
    /// The file cannot be opened (missing directory, permissions).
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let path = path.to_owned();
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|result| result)
        };
        let file = opened.map_err(|source| Error::HandlerFile {
            path: path.clone(),
            source,
        })?;
        let (lines, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_lines(file, queue));
        Ok(Self { path, lines })
    }

    /// The JSON line (with its newline) written for `webhook`.
    pub fn line(webhook: &Webhook) -> String {
        let envelope = &webhook.envelope;
        let (body, body_base64) = match std::str::from_utf8(&envelope.body) {
            Ok(text) => (Cow::Borrowed(text), false),
            Err(_) => (
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(&envelope.body)),
                true,
            ),
        };
        let received_at = envelope.received_at.as_ref().and_then(|t| {
            let seconds = u64::try_from(t.seconds).ok()?;
            let nanos = u32::try_from(t.nanos).ok()?;
            let at = SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos);
            Some(humantime::format_rfc3339_millis(at).to_string())
        });
        let line = Line {
            id: &envelope.id,
            source: &envelope.source,
            event: &envelope.event,
            received_at,
            group: &webhook.delivery.group,
            subject: &webhook.delivery.subject,
            stream_seq: webhook.delivery.stream_sequence,
            attempt: webhook.delivery.attempt,
            content_type: &envelope.content_type,
            headers: envelope
                .headers
                .iter()
                .map(|h| LineHeader {
                    name: &h.name,
                    value: &h.value,
                })
                .collect(),
            body,
            body_base64,
        };
        let mut out = Vec::with_capacity(envelope.body.len() + 512);
        // Serializing plain strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &line);
        out.push(b'\n');
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The writer task: every line waiting, written whole with one `write(2)`.
async fn write_lines(file: std::fs::File, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let file = Arc::new(file);
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut buffer = Vec::new();
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        buffer.clear();
        for (line, _) in &batch {
            buffer.extend_from_slice(line.as_bytes());
        }
        let file = Arc::clone(&file);
        let write = move || {
            let written = (&*file).write_all(&buffer);
            (written, buffer)
        };
        let written = match tokio::task::spawn_blocking(write).await {
            Ok((written, returned)) => {
                buffer = returned;
                written
            }
            Err(error) => {
                buffer = Vec::new();
                Err(std::io::Error::other(error))
            }
        };
        for (_, done) in batch.drain(..) {
            let result = match &written {
                Ok(()) => Ok(()),
                Err(error) => Err(std::io::Error::new(error.kind(), error.to_string())),
            };
            let _ = done.send(result);
        }
    }
}

impl Handler for FileHandler {
    async fn handle(&self, webhook: &Webhook) -> Outcome {
        let (done, written) = oneshot::channel();
        if self.lines.send((Self::line(webhook), done)).is_err() {
            return Outcome::retry("file writer stopped");
        }
        match written.await {
            Ok(Ok(())) => Outcome::Success,
            Ok(Err(error)) => {
                Outcome::retry(format!("cannot append to {}: {error}", self.path.display()))
            }
            Err(_) => Outcome::retry("file writer stopped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Delivery;
    use hookline_proto::{Envelope, Header, Timestamp};

    fn webhook(body: &[u8]) -> Webhook {
        Webhook {
            envelope: Envelope {
                id: "evt_1".into(),
                source: "stripe".into(),
                event: "invoice.paid".into(),
                received_at: Some(Timestamp {
                    seconds: 1_767_323_045,
                    nanos: 678_000_000,
                }),
                body: body.to_vec().into(),
                headers: vec![Header {
                    name: "user-agent".into(),
                    value: "Stripe/1.0".into(),
                }],
                content_type: "application/json".into(),
                scheme: "stripe".into(),
            },
            delivery: Delivery {
                group: "billing".into(),
                subject: "webhooks.stripe.invoice_paid".into(),
                stream_sequence: 42,
                attempt: 1,
                max_attempts: 8,
                idempotency_key: "stripe:evt_1".into(),
            },
        }
    }

    #[test]
    fn lines_are_json_with_text_or_base64_bodies() {
        let line = FileHandler::line(&webhook(br#"{"id":"evt_1"}"#));
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["body"], r#"{"id":"evt_1"}"#);
        assert_eq!(value["body_base64"], false);
        assert_eq!(value["received_at"], "2026-01-02T03:04:05.678Z");
        assert_eq!(value["stream_seq"], 42);
        assert_eq!(value["headers"][0]["value"], "Stripe/1.0");

        let value: serde_json::Value =
            serde_json::from_str(&FileHandler::line(&webhook(&[0xff, 0x00]))).unwrap();
        assert_eq!(value["body"], "/wA=");
        assert_eq!(value["body_base64"], true);
    }

    #[tokio::test]
    async fn appends_one_line_per_webhook() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let handler = FileHandler::open(&path).await.unwrap();
        let webhook = webhook(b"x");
        let calls = (0..50).map(|_| handler.handle(&webhook));
        for outcome in futures::future::join_all(calls).await {
            assert_eq!(outcome, Outcome::Success);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 50);
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
        assert!(
            FileHandler::open(&dir.path().join("missing/x.jsonl"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_failed_write_retries_every_webhook_of_its_batch() {
        // Writing to /dev/full fails with ENOSPC, like a full disk.
        let handler = FileHandler::open(Path::new("/dev/full")).await.unwrap();
        let webhook = webhook(b"x");
        let calls = (0..20).map(|_| handler.handle(&webhook));
        for outcome in futures::future::join_all(calls).await {
            let Outcome::Retry { reason, after } = outcome else {
                panic!("expected a retry, got {outcome:?}");
            };
            assert!(reason.starts_with("cannot append to /dev/full"), "{reason}");
            assert_eq!(after, None);
        }
    }

    #[test]
    fn handlers_retry_once_the_writers_runtime_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let opener = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handler = opener.block_on(FileHandler::open(&path)).unwrap();
        drop(opener);
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let outcome = other.block_on(handler.handle(&webhook(b"x")));
        assert_eq!(outcome, Outcome::retry("file writer stopped"));
    }
}
