//! Secrets handed over in a handshake (Asana's `X-Hook-Secret`, Notion's
//! `verification_token`), kept in a JetStream KV bucket every ingest instance
//! reads. A handshake's secret is kept only while an operator has opened a
//! capture window (`hookline sources capture <source> [--for 10m]`); the window
//! closes once a secret is captured. Secrets are never logged.
//!
//! Keys: `window.<source>` = the window's end (unix seconds, text);
//! `secret.<source>` = the captured secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;

/// The KV bucket.
pub const BUCKET: &str = "HOOKLINE_CAPTURES";

/// The key holding `source`'s capture window.
pub fn window_key(source: &str) -> String {
    format!("window.{source}")
}

/// The key holding `source`'s captured secret.
pub fn secret_key(source: &str) -> String {
    format!("secret.{source}")
}

/// Creates (or opens) the bucket.
///
/// # Errors
/// JetStream refused or is unreachable.
pub async fn open(
    js: &jetstream::Context,
) -> Result<kv::Store, jetstream::context::CreateKeyValueError> {
    js.create_or_update_key_value(kv::Config {
        bucket: BUCKET.to_owned(),
        description: "Hookline: secrets captured from provider handshakes, and capture windows"
            .to_owned(),
        history: 1,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
}

/// Opens `source`'s capture window for `duration` from `now`; returns its end.
///
/// # Errors
/// The bucket could not be written.
pub async fn open_window(
    store: &kv::Store,
    source: &str,
    now: SystemTime,
    duration: Duration,
) -> Result<SystemTime, kv::PutError> {
    let until = now + duration;
    let seconds = until
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    store
        .put(window_key(source), Bytes::from(seconds.to_string()))
        .await?;
    Ok(until)
}

/// The captures of one ingest: the bucket, when a source uses it.
#[derive(Clone)]
pub struct Captures {
    store: kv::Store,
}

impl std::fmt::Debug for Captures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captures").finish_non_exhaustive()
    }
}

/// Why a capture was refused.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No window is open for the source (or it has ended).
    #[error("no capture window is open for this source (hookline sources capture <source>)")]
    NoWindow,
    /// The bucket could not be read or written.
    #[error("capture bucket unavailable: {0}")]
    Store(String),
}

impl Captures {
    /// Wraps an opened bucket.
    pub fn new(store: kv::Store) -> Self {
        Self { store }
    }

    /// Keeps `secret` for `source` if its window is open at `now`, then closes
    /// the window (one capture per window).
    ///
    /// # Errors
    /// [`CaptureError::NoWindow`] outside a window; [`CaptureError::Store`]
    /// when the bucket fails.
    pub async fn capture(
        &self,
        source: &str,
        secret: &str,
        now: SystemTime,
    ) -> Result<(), CaptureError> {
        let store_error = |e: &dyn std::fmt::Display| CaptureError::Store(e.to_string());
        let window = self
            .store
            .get(window_key(source))
            .await
            .map_err(|e| store_error(&e))?
            .ok_or(CaptureError::NoWindow)?;
        let until = std::str::from_utf8(&window)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or(CaptureError::NoWindow)?;
        let now_seconds = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if now_seconds > until {
            return Err(CaptureError::NoWindow);
        }
        self.store
            .put(secret_key(source), Bytes::from(secret.to_owned()))
            .await
            .map_err(|e| store_error(&e))?;
        self.store
            .delete(window_key(source))
            .await
            .map_err(|e| store_error(&e))?;
        Ok(())
    }

    /// The secret captured for `source`, if any.
    ///
    /// # Errors
    /// The bucket could not be read.
    pub async fn secret(&self, source: &str) -> Result<Option<Bytes>, CaptureError> {
        self.store
            .get(secret_key(source))
            .await
            .map_err(|e| CaptureError::Store(e.to_string()))
    }
}
