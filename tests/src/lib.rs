//! Test harness for Hookline's end-to-end tests.
//!
//! [`NatsServer::start`] runs a real, throw-away JetStream `nats-server` on a
//! free loopback port with its own store directory, and kills it on drop.
//! The binary is found through `NATS_SERVER_BIN` (not a `HOOKLINE_*` name:
//! those are config overrides for the binaries the tests spawn), then the project's
//! `.tools/` install (made by `scripts/install-nats-server`), then `PATH`;
//! a missing binary fails the test with an install hint, never a skip.

//!
//! Modules: [`ingest`] (an in-process ingest and signed requests),
//! [`processor`] (processor instances, a scripted handler, an HTTP sink),
//! [`cli`] (a whole pipeline of binaries and the `hookline` CLI),
//! [`chaos`] (load, faults and the auditor of the chaos suite),
//! [`process`] (binaries as child processes), [`publish`] (webhooks
//! published straight to the stream), [`raw_http`] (byte-level HTTP),
//! [`topology`] (docker-compose.yml's topology as local processes).
//! The tests themselves are one binary, `tests/it/main.rs`.

pub mod browser;
pub mod chaos;
pub mod cli;
pub mod ingest;
pub mod process;
pub mod processor;
pub mod publish;
pub mod raw_http;
pub mod topology;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// The nats-server version the project pins (see `scripts/install-nats-server`).
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// Locates the `nats-server` binary.
///
/// # Errors
/// No binary anywhere, with the command that installs one.
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let local = workspace_root().join(".tools/nats-server/bin/nats-server");
    if local.is_file() {
        return Ok(local);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "nats-server not found: run `scripts/install-nats-server` (installs {NATS_SERVER_VERSION} into .tools/) \
         or set NATS_SERVER_BIN"
    )
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A running JetStream `nats-server` owned by one test.
pub struct NatsServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    jetstream: String,
    extra_config: String,
}

/// The `jetstream { … }` limits of [`NatsServer::start`] (after the store).
const TEST_JETSTREAM: &str = "max_memory_store: 64MB, max_file_store: 4GB";

impl NatsServer {
    /// Starts a server on a free port and waits until it accepts clients.
    ///
    /// # Errors
    /// No binary, or the server did not come up within 10 s.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_config("").await
    }

    /// Like [`start`](Self::start), with extra lines for the server's config
    /// file (e.g. an `authorization { … }` block).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with_config(extra_config: &str) -> anyhow::Result<Self> {
        Self::start_with(TEST_JETSTREAM, extra_config).await
    }

    /// Like [`start_with_config`](Self::start_with_config), with the
    /// settings of the `jetstream { store_dir: …, <jetstream> }` block given
    /// too (e.g. larger limits, `sync_interval: always`).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with(jetstream: &str, extra_config: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hookline-nats-")
            .tempdir()?;
        let mut server = Self {
            child: None,
            dir,
            port: 0,
            jetstream: jetstream.to_owned(),
            extra_config: extra_config.to_owned(),
        };
        server.spawn().await?;
        Ok(server)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills the server (SIGKILL) and waits for it to exit; the store stays.
    ///
    /// # Errors
    /// The process could not be killed.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.context("killing nats-server")?;
        }
        Ok(())
    }

    /// Starts the server again on the same port with the same store.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.spawn().await
    }

    /// A client connected to this server.
    ///
    /// # Errors
    /// The server does not accept the connection.
    pub async fn client(&self) -> anyhow::Result<async_nats::Client> {
        Ok(async_nats::connect(self.url()).await?)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let binary = nats_server_binary()?;
        let store = self.dir.path().join("store");
        let ports_dir = self.dir.path().join("ports");
        std::fs::create_dir_all(&ports_dir)?;
        for entry in std::fs::read_dir(&ports_dir)? {
            std::fs::remove_file(entry?.path())?;
        }
        let config_path = self.dir.path().join("server.conf");
        std::fs::write(
            &config_path,
            format!(
                "jetstream {{ store_dir: {store:?}, {} }}\n{}\n",
                self.jetstream, self.extra_config
            ),
        )?;
        let port = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        let log = std::fs::File::create(self.dir.path().join("server.log"))?;
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &port, "-c"])
            .arg(&config_path)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        self.child = Some(child);
        self.port = read_port(&ports_dir).await.with_context(|| {
            format!(
                "nats-server did not report its port; log: {}",
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
            )
        })?;
        wait_until_connectable(&self.url()).await
    }
}

async fn read_port(ports_dir: &Path) -> anyhow::Result<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(entry) = std::fs::read_dir(ports_dir)?.next() {
            let text = std::fs::read_to_string(entry?.path())?;
            // {"nats":["nats://127.0.0.1:PORT"], ...}
            if let Some(port) = text
                .split("nats://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|p| p.parse().ok())
            {
                return Ok(port);
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no ports file within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until_connectable(url: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match async_nats::connect(url).await {
            Ok(client) => {
                let js = async_nats::jetstream::new(client);
                if js.query_account().await.is_ok() {
                    return Ok(());
                }
            }
            // A server that requires credentials refuses us: it is up
            // (tests that configure auth connect with their own options).
            Err(error) if error.kind() == async_nats::ConnectErrorKind::AuthorizationViolation => {
                return Ok(());
            }
            Err(_) if tokio::time::Instant::now() < deadline => {}
            Err(error) => return Err(error).context("nats-server not connectable within 10 s"),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("JetStream not ready within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Polls `check` every 50 ms until it returns `Ok(true)` or `within` has
/// passed; an `Err` counts as "not yet" (a server still starting) and is
/// shown if time runs out. Replaces hand-written deadline loops.
///
/// # Errors
/// `what` did not happen within `within`, with the last error, if any.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    eventually_some(within, what, || {
        let attempt = check();
        async move { Ok(attempt.await?.then_some(())) }
    })
    .await
}

/// Like [`eventually`], for a check that yields a value once it holds.
///
/// # Errors
/// `what` did not happen within `within`, with the last error, if any.
pub async fn eventually_some<T, F, Fut>(
    within: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(match last_error {
                Some(error) => {
                    error.context(format!("timed out after {within:?} waiting for {what}"))
                }
                None => anyhow::anyhow!("timed out after {within:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The path of one of the workspace's binaries (`hookline-ingest`,
/// `hookline-processor`, …) in the same target directory as the running
/// test. The README's test command builds them before testing.
///
/// # Errors
/// The binary has not been built.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("unexpected test binary location")?;
    let path = profile_dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is not built: run `cargo build --workspace --bins` first (scripts/test does)",
            path.display()
        );
    }
    Ok(path)
}
