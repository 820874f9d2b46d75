//! A throw-away `nats-server` for one benchmark part: a free loopback port,
//! its own store directory, optionally `sync_interval: always`, killed and
//! removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// JetStream durability setting of the server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sync {
    /// nats-server's default: fsync every 2 min, ack before fsync.
    Default,
    /// `jetstream { sync_interval: always }`: fsync before every ack.
    Always,
}

impl Sync {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Always => "always",
        }
    }
}

/// The workspace root (for `.tools/` and `scripts/`).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Finds `nats-server`: `NATS_SERVER_BIN` (as for the tests; not a
/// `HOOKLINE_*` name, which the binaries would read as a config key), the
/// project's `.tools/` install, `PATH`; else installs the pinned one with
/// `scripts/install-nats-server`.
pub(crate) fn locate() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let root = workspace_root();
    let local = root.join(".tools/nats-server/bin/nats-server");
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
    let script = root.join("scripts/install-nats-server");
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed", script.display());
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    ))
}

/// A running server; killed (and its store removed) on drop.
pub(crate) struct NatsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a JetStream server and waits until it takes clients.
    pub(crate) async fn start(binary: &Path, sync: Sync) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hookline-bench-nats-")
            .tempdir()?;
        let store = dir.path().join("store");
        let ports = dir.path().join("ports");
        std::fs::create_dir_all(&ports)?;
        let sync_line = match sync {
            Sync::Default => "",
            Sync::Always => ", sync_interval: always",
        };
        let config = dir.path().join("server.conf");
        std::fs::write(
            &config,
            format!(
                "jetstream {{ store_dir: {store:?}, max_memory_store: 256MB, max_file_store: 32GB{sync_line} }}\n"
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
            .arg(&config)
            .arg("--ports_file_dir")
            .arg(&ports)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut server = Self {
            child,
            port: 0,
            _dir: dir,
        };
        server.port = read_port(&ports).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = async_nats::connect(server.url()).await {
                let js = async_nats::jetstream::new(client);
                if js.query_account().await.is_ok() {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                bail!("nats-server not ready within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn read_port(dir: &Path) -> anyhow::Result<u16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(entry) = std::fs::read_dir(dir)?.next() {
            let text = std::fs::read_to_string(entry?.path())?;
            if let Some(port) = text
                .split("nats://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|p| p.parse().ok())
            {
                return Ok(port);
            }
        }
        if Instant::now() > deadline {
            bail!("nats-server wrote no ports file within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
