//! The `file` handler: one JSON line per webhook, for debugging and audits.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::json;

use crate::Error;
use crate::handler::{Handler, Outcome, Webhook};

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
/// true`) when it is not valid UTF-8. Each line is written with one
/// `write(2)` on a file opened for appending, under a lock, so lines never
/// interleave, and reaches the OS before the webhook counts as handled (no
/// fsync: this is a debugging and audit aid, not a durable store).
#[derive(Debug, Clone)]
pub struct FileHandler {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl FileHandler {
    /// Opens `path` for appending (creating it).
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
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The JSON line (with its newline) written for `webhook`.
    pub fn line(webhook: &Webhook) -> String {
        let envelope = &webhook.envelope;
        let (body, body_base64) = match std::str::from_utf8(&envelope.body) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(&envelope.body),
                true,
            ),
        };
        let received_at = envelope.received_at.as_ref().and_then(|t| {
            let seconds = u64::try_from(t.seconds).ok()?;
            let nanos = u32::try_from(t.nanos).ok()?;
            let at = SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos);
            Some(humantime::format_rfc3339_millis(at).to_string())
        });
        let headers: Vec<_> = envelope
            .headers
            .iter()
            .map(|h| json!({ "name": h.name, "value": h.value }))
            .collect();
        let line = json!({
            "id": envelope.id,
            "source": envelope.source,
            "event": envelope.event,
            "received_at": received_at,
            "group": webhook.delivery.group,
            "subject": webhook.delivery.subject,
            "stream_seq": webhook.delivery.stream_sequence,
            "attempt": webhook.delivery.attempt,
            "content_type": envelope.content_type,
            "headers": headers,
            "body": body,
            "body_base64": body_base64,
        });
        format!("{line}\n")
    }
}

impl Handler for FileHandler {
    async fn handle(&self, webhook: &Webhook) -> Outcome {
        let line = Self::line(webhook);
        let file = Arc::clone(&self.file);
        let written = tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            file.write_all(line.as_bytes())
        })
        .await;
        match written {
            Ok(Ok(())) => Outcome::Success,
            Ok(Err(error)) => {
                Outcome::retry(format!("cannot append to {}: {error}", self.path.display()))
            }
            Err(error) => Outcome::retry(format!("file writer task failed: {error}")),
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
}
