//! An in-process ingest for tests: the same `AppState::connect` and
//! `serve` the binary uses, on a port-0 listener, against the test's own
//! nats-server.

use std::net::SocketAddr;

use anyhow::Context;
use hookline_ingest::config::IngestSettings;
use hookline_ingest::{AppState, serve};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running ingest; stops when dropped.
pub struct TestIngest {
    /// The listening address.
    pub addr: SocketAddr,
    /// The settings it runs with.
    pub settings: IngestSettings,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), hookline_ingest::Error>>>,
}

/// Parses a Hookline config (TOML) and points it at `nats_url`.
///
/// # Errors
/// The TOML does not parse into settings.
pub fn settings(nats_url: &str, toml_text: &str) -> anyhow::Result<IngestSettings> {
    let text = format!("[nats]\nurl = {nats_url:?}\n{toml_text}");
    toml::from_str(&text).context("test settings")
}

impl TestIngest {
    /// Connects, declares streams and serves on 127.0.0.1:0.
    ///
    /// # Errors
    /// Anything `AppState::connect` refuses.
    pub async fn start(settings: IngestSettings) -> anyhow::Result<Self> {
        Self::start_with_clock(settings, None).await
    }

    /// As [`TestIngest::start`], verifying at the instant `clock` gives (the
    /// providers' vectors are signed at a recorded `now`); `None` is the
    /// system clock.
    ///
    /// # Errors
    /// Anything `AppState::connect` refuses.
    pub async fn start_with_clock(
        settings: IngestSettings,
        clock: Option<hookline_ingest::sources::Clock>,
    ) -> anyhow::Result<Self> {
        let mut state = AppState::connect(&settings, None).await?;
        if let Some(clock) = clock {
            state = state.with_clock(clock);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, None, state, shutdown.clone()));
        Ok(Self {
            addr,
            settings,
            shutdown,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>/webhooks/<source>`.
    pub fn webhook_url(&self, source: &str) -> String {
        format!("http://{}/webhooks/{source}", self.addr)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Cancels and waits for the drain.
    ///
    /// # Errors
    /// The server failed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for TestIngest {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Signs `body` as `spec`'s provider would with `secret`, for now.
///
/// # Errors
/// The secret does not suit the provider.
pub fn signed_headers(
    spec: &hookline_signature::ProviderSpec,
    secret: &str,
    body: &[u8],
    id: &str,
    event: &str,
) -> anyhow::Result<reqwest::header::HeaderMap> {
    let signer = hookline_signature::Signer::new(spec, secret.as_bytes())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in signer.sign(body, id, event, now) {
        headers.append(name, value.parse()?);
    }
    Ok(headers)
}
