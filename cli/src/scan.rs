//! Reading a stream's history in order: an ordered (ephemeral, flow
//! controlled) consumer from a start time over some subjects, stopping when
//! it has caught up with what was there when it started.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt as _;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Longest wait for the next message before giving up (the server lost us).
const IDLE: Duration = Duration::from_secs(15);

/// History being read; [`History::next`] yields messages until caught up.
pub struct History {
    messages: Option<Ordered>,
}

impl History {
    /// Starts reading the messages on `subjects` stored at or after `since`
    /// (all when `None`), oldest first. `headers_only` leaves payloads on
    /// the server.
    ///
    /// # Errors
    /// The ordered consumer cannot be created.
    pub async fn open(
        stream: &Stream,
        subjects: Vec<String>,
        since: Option<SystemTime>,
        headers_only: bool,
    ) -> Result<Self> {
        let start = since.map_or(Start::All, Start::Time);
        Self::open_at(stream, subjects, start, headers_only).await
    }

    /// Like [`History::open`], from `start`.
    ///
    /// # Errors
    /// The ordered consumer cannot be created.
    pub async fn open_at(
        stream: &Stream,
        subjects: Vec<String>,
        start: Start,
        headers_only: bool,
    ) -> Result<Self> {
        let deliver_policy = match start {
            Start::Time(at) => DeliverPolicy::ByStartTime {
                start_time: OffsetDateTime::from(at),
            },
            Start::Sequence(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            Start::All => DeliverPolicy::All,
        };
        let mut consumer = stream
            .create_consumer(OrderedConfig {
                filter_subjects: subjects,
                deliver_policy,
                headers_only,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::caused("cannot read the stream's history", e))?;
        let pending = consumer
            .info()
            .await
            .map_err(|e| Error::caused("cannot read the stream's history", e))?
            .num_pending;
        if pending == 0 {
            return Ok(Self { messages: None });
        }
        let messages = consumer
            .messages()
            .await
            .map_err(|e| Error::caused("cannot read the stream's history", e))?;
        Ok(Self {
            messages: Some(messages),
        })
    }

    /// The next message, or `None` once every message that was pending
    /// when reading started (and any stored since) has been read.
    ///
    /// # Errors
    /// The server stops answering.
    pub async fn next(&mut self) -> Result<Option<Item>> {
        let Some(messages) = self.messages.as_mut() else {
            return Ok(None);
        };
        let next = tokio::time::timeout(IDLE, messages.next())
            .await
            .map_err(|_| Error::Failed("the server stopped sending history".to_owned()))?;
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(Error::caused("cannot read the stream's history", e)),
            None => {
                self.messages = None;
                return Ok(None);
            }
        };
        let info = message
            .info()
            .map_err(|e| Error::Failed(format!("a message without metadata: {e}")))?;
        let item = Item {
            stream_sequence: info.stream_sequence,
            published: SystemTime::from(info.published),
            message: message.message.clone(),
        };
        if info.pending == 0 {
            self.messages = None;
        }
        Ok(Some(item))
    }
}

/// Where reading history starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// The first message stored.
    All,
    /// The first message stored at or after this time.
    Time(SystemTime),
    /// This sequence.
    Sequence(u64),
}

/// One message of the history.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    /// When it was stored.
    pub published: SystemTime,
    /// Subject, headers, payload (empty when headers only).
    pub message: async_nats::Message,
}

/// The value of header `name` of a message.
pub fn header(message: &async_nats::Message, name: &str) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}
