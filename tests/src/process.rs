//! The workspace's binaries run as real processes, as an operator runs
//! them: a config file, environment overrides, stdout and stderr captured
//! to files (a pipe nobody reads would stall a process logging at trace),
//! readiness polled over HTTP, SIGTERM or SIGKILL on request, and the
//! resident memory read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::workspace_binary;

/// A free loopback port (bound, then released for the process to take).
///
/// # Errors
/// No port could be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running binary with its config and captured output; killed on drop.
pub struct Process {
    name: String,
    binary: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    runs: u32,
}

impl Process {
    /// Writes `config` to a file and starts `binary --config FILE` with
    /// `env` (and `RUST_LOG`, when given there) added to this environment.
    ///
    /// # Errors
    /// The binary is not built or cannot be spawned.
    pub fn spawn(binary: &str, config: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{binary}-"))
            .tempdir()?;
        let config_path = dir.path().join("hookline.toml");
        std::fs::write(&config_path, config)?;
        let mut process = Self {
            name: binary.to_owned(),
            binary: workspace_binary(binary)?,
            config: config_path,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            dir,
            child: None,
            runs: 0,
        };
        process.start()?;
        Ok(process)
    }

    /// Starts the process again (after [`kill`](Self::kill) or an exit),
    /// with the same config; its output goes to new log files.
    ///
    /// # Errors
    /// It cannot be spawned.
    pub fn start(&mut self) -> anyhow::Result<()> {
        self.runs += 1;
        let stdout = std::fs::File::create(self.log_path("stdout"))?;
        let stderr = std::fs::File::create(self.log_path("stderr"))?;
        let mut command = Command::new(&self.binary);
        // Only this process's config and `env` count, never an override
        // that happens to be set where the tests run.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HOOKLINE_") {
                command.env_remove(name);
            }
        }
        let child = command
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    fn log_path(&self, stream: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.{}.{stream}.log", self.name, self.runs))
    }

    /// The directory holding the config and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Everything every run wrote to stdout and stderr so far.
    ///
    /// # Errors
    /// A log file cannot be read.
    pub fn output(&self) -> anyhow::Result<String> {
        let mut text = String::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(self.dir.path())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        entries.sort();
        for path in entries {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path)?));
        }
        Ok(text)
    }

    /// What the latest run wrote to stderr (where binaries put their
    /// one-line start-up failure; logs go to stdout).
    ///
    /// # Errors
    /// The log file cannot be read.
    pub fn stderr(&self) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&std::fs::read(self.log_path("stderr"))?).into_owned())
    }

    /// The resident set size in KiB (`VmRSS` in `/proc/<pid>/status`).
    ///
    /// # Errors
    /// Not running, or `/proc` unreadable.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.pid().context("process not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")
    }

    /// SIGKILL, and wait for the exit.
    ///
    /// # Errors
    /// The kill failed.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.context("killing")?;
        }
        Ok(())
    }

    /// SIGTERM, then wait up to `within` for the exit; returns the exit code.
    ///
    /// # Errors
    /// Not running, the signal failed, or it did not exit in time.
    pub async fn terminate(&mut self, within: Duration) -> anyhow::Result<Option<i32>> {
        let mut child = self.child.take().context("process not running")?;
        let pid = child.id().context("process already exited")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        let exit = tokio::time::timeout(within, child.wait())
            .await
            .with_context(|| {
                format!("{} did not exit within {within:?} of SIGTERM", self.name)
            })??;
        Ok(exit.code())
    }

    /// Waits up to `within` for the process to exit by itself; returns its code.
    ///
    /// # Errors
    /// Not running, or still running after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> anyhow::Result<Option<i32>> {
        let child = self.child.as_mut().context("process not running")?;
        let exit = tokio::time::timeout(within, child.wait())
            .await
            .with_context(|| format!("{} still running after {within:?}", self.name))??;
        self.child = None;
        Ok(exit.code())
    }
}

/// Polls `url` until it answers 200, the process exits, or `within` passes.
///
/// # Errors
/// Not ready in time, with the process's output.
pub async fn wait_ready(process: &mut Process, url: &str, within: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status() == 200
        {
            return Ok(());
        }
        if let Some(child) = process.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            bail!(
                "{} exited with {status} before it was ready:\n{}",
                process.name,
                process.output()?
            );
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{} not ready at {url} within {within:?}:\n{}",
                process.name,
                process.output()?
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
