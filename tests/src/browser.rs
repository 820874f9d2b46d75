//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`; `scripts/install-chromium` installs them): one
//! `chromedriver` per test on a free port, one fresh profile, no network
//! beyond what the page asks for.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::process::free_port;

/// A browser session; the driver (and its Chromium) die with it.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    ///
    /// # Errors
    /// chromedriver or chromium is missing (with the install hint), or does not start.
    pub async fn start() -> anyhow::Result<Self> {
        let driver_binary = which("chromedriver")?;
        which("chromium")?;
        let port = free_port()?;
        let mut driver = tokio::process::Command::new(driver_binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start chromedriver")?;
        let status_url = format!("http://127.0.0.1:{port}/status");
        let http = reqwest::Client::new();
        crate::eventually(Duration::from_secs(20), "chromedriver to answer", || {
            let probe = http.get(&status_url).send();
            let exited = driver.try_wait().ok().flatten();
            async move {
                if let Some(status) = exited {
                    bail!("chromedriver exited: {status}");
                }
                Ok(probe.await.is_ok())
            }
        })
        .await?;
        let profile = tempfile::tempdir()?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": which("chromium")?,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1360,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("cannot start a Chromium session")?;
        Ok(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Ends the session (closing Chromium).
    ///
    /// # Errors
    /// The driver does not answer.
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        Ok(())
    }
}

fn which(name: &str) -> anyhow::Result<std::path::PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "{name} is not installed: run scripts/install-chromium \
                 (Debian: apt-get install -y chromium chromium-driver)"
            )
        })
}
