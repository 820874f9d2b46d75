//! The replay guard (`replay_guard = "24h"` on a source): for schemes that
//! sign no timestamp (GitHub, Shopify, `hmac` without `{ts}` or `{id}`), a
//! captured delivery verifies forever, and its unsigned id and event
//! headers can be rewritten, so a replay would be stored as a new webhook.
//! The guard remembers, for its window, the SHA-256 of every accepted body
//! with the id and event it came with, in a JetStream KV bucket whose
//! `max_age` is the window (`HOOKLINE_REPLAY_<source>`). The same body with
//! the same id and event is the provider retrying (published as usual: the
//! stream's duplicate window and the processors' idempotency take care of
//! it); with another id or event it is a replay, answered 200
//! `"duplicate": true` with the first delivery's id, and stored nowhere.
//!
//! The claim is an atomic `create`, made before the publish, so two copies
//! arriving at once cannot both be stored; a claim whose publish then fails
//! stays, which is right: the provider's retry carries the same id.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// What the guard makes of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen within the window (now claimed), or seen with this same
    /// id and event (the provider retrying): publish it.
    Publish,
    /// Seen with another id or event: a replay of the delivery `first_id`.
    Replay {
        /// The id the body was first accepted with.
        first_id: String,
    },
}

/// Why the guard could not answer (the request gets 503: the provider retries).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The bucket could not be declared at start-up.
    #[error("cannot declare the replay guard's bucket {bucket}")]
    Declare {
        /// The bucket.
        bucket: String,
        /// Why.
        #[source]
        source: jetstream::context::CreateKeyValueError,
    },
    /// The claim could not be written.
    #[error("replay guard unavailable")]
    Claim(#[source] kv::CreateError),
    /// An existing claim could not be read.
    #[error("replay guard unavailable")]
    Read(#[source] kv::EntryError),
}

/// One source's guard.
#[derive(Debug, Clone)]
pub(crate) struct ReplayGuard {
    store: kv::Store,
    window: Duration,
}

impl ReplayGuard {
    /// The bucket of `source`'s guard.
    pub(crate) fn bucket(source: &str) -> String {
        format!("HOOKLINE_REPLAY_{source}")
    }

    /// Creates the bucket, or updates it to `window` and `replicas`.
    pub(crate) async fn declare(
        js: &jetstream::Context,
        source: &str,
        window: Duration,
        replicas: usize,
    ) -> Result<Self, ReplayError> {
        let bucket = Self::bucket(source);
        let store = js
            .create_or_update_key_value(kv::Config {
                bucket: bucket.clone(),
                description: format!("Hookline replay guard of source {source}: body hashes"),
                history: 1,
                max_age: window,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|source| ReplayError::Declare { bucket, source })?;
        Ok(Self { store, window })
    }

    /// The window, for logs.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Claims `body` for this delivery, or finds it claimed.
    pub(crate) async fn check(
        &self,
        body: &[u8],
        id: &str,
        event: &str,
    ) -> Result<Seen, ReplayError> {
        let key = hex::encode(Sha256::digest(body));
        let claim = format!("{id}\n{event}");
        match self.store.create(&key, Bytes::from(claim.clone())).await {
            Ok(_revision) => return Ok(Seen::Publish),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(error) => return Err(ReplayError::Claim(error)),
        }
        let Some(entry) = self.store.entry(&key).await.map_err(ReplayError::Read)? else {
            // Expired between the two calls: as good as unseen.
            return Ok(Seen::Publish);
        };
        if entry.value.as_ref() == claim.as_bytes()
            || matches!(
                entry.operation,
                kv::Operation::Delete | kv::Operation::Purge
            )
        {
            return Ok(Seen::Publish);
        }
        let first_id = String::from_utf8_lossy(&entry.value)
            .split('\n')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Seen::Replay { first_id })
    }
}
