//! The CLI tests' harness: a real pipeline (a nats-server from the harness,
//! the `hookline-ingest` and `hookline-processor` binaries) and the
//! `hookline` binary run as an operator runs it, with its exit code, stdout
//! and stderr.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::NatsServer;
use crate::process::{Process, free_port, wait_ready};
use anyhow::{Context as _, bail};
use async_nats::jetstream;
use tokio::io::AsyncWriteExt as _;

/// The secrets the test configs use (inline values: tests only).
pub const GITHUB_SECRET: &str = "cli-test-github-secret";
/// The Stripe secret of the test config.
pub const STRIPE_SECRET: &str = "whsec_cli_test_stripe";
/// The Standard Webhooks secret of the test config.
pub const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The Shopify secret of the test config.
pub const SHOPIFY_SECRET: &str = "cli-test-shopify-secret";
/// The Slack secret of the test config.
pub const SLACK_SECRET: &str = "cli-test-slack-secret";

/// `[[sources]]` for every provider.
pub fn sources() -> String {
    format!(
        r#"
[[sources]]
name = "github"
provider = "github"
secrets = [{{ value = "{GITHUB_SECRET}" }}]

[[sources]]
name = "stripe"
provider = "stripe"
secrets = [{{ value = "{STRIPE_SECRET}" }}]

[[sources]]
name = "svix"
provider = "standard-webhooks"
secrets = [{{ value = "{SVIX_SECRET}" }}]

[[sources]]
name = "shopify"
provider = "shopify"
secrets = [{{ value = "{SHOPIFY_SECRET}" }}]

[[sources]]
name = "slack"
provider = "slack"
secrets = [{{ value = "{SLACK_SECRET}" }}]
"#
    )
}

/// A processor group's section (`group`, its subjects and handler, TOML)
/// and the free port its metrics listen on.
pub fn processor_section(
    group: &str,
    subjects: &str,
    handler: &str,
) -> anyhow::Result<(String, u16)> {
    let port = free_port()?;
    let section = format!(
        r#"
[processor]
group = "{group}"
subjects = {subjects}
concurrency = 4
ack_wait = "2s"
max_deliver = 2
backoff = {{ initial = "100ms", max = "500ms" }}
metrics_listen = "127.0.0.1:{port}"
handler = {handler}
"#
    );
    Ok((section, port))
}

/// A real pipeline: nats-server, ingest, and processor groups.
pub struct Pipeline {
    /// The NATS server.
    pub server: NatsServer,
    /// The pipeline's files (config, handler output).
    pub dir: tempfile::TempDir,
    /// The shared part of the config (nats, stream, ingest, sources).
    pub base: String,
    /// The config file the CLI reads (base + the first group's section).
    pub config: PathBuf,
    /// Ingest's base URL.
    pub ingest_url: String,
    /// The ingest binary.
    pub ingest: Process,
    /// Processor binaries by group.
    pub processors: Vec<(String, Process)>,
}

impl Pipeline {
    /// Starts nats-server and ingest, and no processor yet.
    pub async fn start() -> anyhow::Result<Self> {
        let server = NatsServer::start().await?;
        let dir = tempfile::tempdir()?;
        let ingest_port = free_port()?;
        let base = format!(
            r#"
[nats]
url = "{url}"
connect_timeout = "5s"

[stream]
max_bytes = "64MiB"
dlq_max_bytes = "16MiB"

[ingest]
listen = "127.0.0.1:{ingest_port}"
{sources}
"#,
            url = server.url(),
            sources = sources()
        );
        let config = dir.path().join("hookline.toml");
        std::fs::write(&config, &base)?;
        let mut ingest = Process::spawn("hookline-ingest", &base, &[])?;
        let ingest_url = format!("http://127.0.0.1:{ingest_port}");
        wait_ready(
            &mut ingest,
            &format!("{ingest_url}/readyz"),
            Duration::from_secs(20),
        )
        .await?;
        Ok(Self {
            server,
            dir,
            base,
            config,
            ingest_url,
            ingest,
            processors: Vec::new(),
        })
    }

    /// Starts a processor group (the binary) and waits until it pulls;
    /// the first group's section also goes into the CLI's config file.
    pub async fn add_group(
        &mut self,
        group: &str,
        subjects: &str,
        handler: &str,
    ) -> anyhow::Result<()> {
        let (section, port) = processor_section(group, subjects, handler)?;
        let text = format!("{}{section}", self.base);
        if self.processors.is_empty() {
            std::fs::write(&self.config, &text)?;
        }
        let mut process = Process::spawn("hookline-processor", &text, &[])?;
        wait_ready(
            &mut process,
            &format!("http://127.0.0.1:{port}/readyz"),
            Duration::from_secs(20),
        )
        .await?;
        self.processors.push((group.to_owned(), process));
        Ok(())
    }

    /// A file handler writing to `<dir>/<name>.jsonl`, and that path.
    pub fn file_handler(&self, name: &str) -> (String, PathBuf) {
        let path = self.dir.path().join(format!("{name}.jsonl"));
        (format!("{{ file = {{ path = {path:?} }} }}"), path)
    }

    /// A JetStream context on the pipeline's server.
    pub async fn js(&self) -> anyhow::Result<jetstream::Context> {
        Ok(jetstream::new(self.server.client().await?))
    }

    /// Runs `hookline --config <config> args…`.
    pub async fn hookline(&self, args: &[&str]) -> anyhow::Result<Run> {
        hookline(&self.config, args, &[], None).await
    }

    /// Waits until `group` has nothing pending or unacked.
    pub async fn wait_settled(&self, group: &str) -> anyhow::Result<()> {
        let js = self.js().await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = js.get_stream("WEBHOOKS").await?.consumer_info(group).await;
            if let Ok(info) = &info
                && info.num_pending == 0
                && info.num_ack_pending == 0
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("group {group} not settled: {info:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Messages in a stream.
    pub async fn count(&self, stream: &str) -> anyhow::Result<u64> {
        Ok(self
            .js()
            .await?
            .get_stream(stream)
            .await?
            .info()
            .await?
            .state
            .messages)
    }

    /// Waits until `stream` holds `n` messages.
    pub async fn wait_count(&self, stream: &str, n: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let count = self.count(stream).await?;
            if count == n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{stream} holds {count} messages, expected {n}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What a `hookline` run did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as one JSON document.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(self.stdout.trim())
            .with_context(|| format!("stdout is not JSON: {self:?}"))
    }

    #[track_caller]
    /// Fails the test, showing both outputs, unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }
}

/// Runs the `hookline` binary with `--config config`, no inherited
/// `HOOKLINE_*` variables, `env` added, and `stdin` written to it.
pub async fn hookline(
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> anyhow::Result<Run> {
    let binary = crate::workspace_binary("hookline")?;
    let mut command = tokio::process::Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKLINE_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut input = child.stdin.take().context("stdin")?;
    if let Some(bytes) = stdin {
        input.write_all(bytes).await?;
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("hookline did not finish within 60 s")??;
    Ok(Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// An HTTP sink for the `http` handler: answers `status` (changeable) and counts.
pub struct Sink {
    /// The URL the `http` handler posts to.
    pub url: String,
    /// The status every request gets.
    pub status: Arc<AtomicU16>,
    /// Requests received so far.
    pub requests: Arc<AtomicUsize>,
}

impl Sink {
    /// Starts a sink answering `status` on a free port.
    pub async fn start(status: u16) -> anyhow::Result<Self> {
        let status = Arc::new(AtomicU16::new(status));
        let requests = Arc::new(AtomicUsize::new(0));
        let (s, r) = (Arc::clone(&status), Arc::clone(&requests));
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move || {
                let (s, r) = (Arc::clone(&s), Arc::clone(&r));
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::from_u16(s.load(Ordering::SeqCst))
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            status,
            requests,
        })
    }

    /// `{ http = { url = … } }`.
    pub fn handler(&self) -> String {
        format!("{{ http = {{ url = {:?}, timeout = \"2s\" }} }}", self.url)
    }

    /// Changes the status every request gets.
    pub fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

/// Lines of a JSON-lines file (none when it does not exist yet).
pub fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until the file has `n` lines.
pub async fn wait_lines(path: &Path, n: usize) -> anyhow::Result<Vec<serde_json::Value>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = lines(path);
        if lines.len() >= n {
            return Ok(lines);
        }
        if Instant::now() > deadline {
            bail!("{} has {} lines, expected {n}", path.display(), lines.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `hookline console`, killed when dropped.
pub struct Console {
    /// The `hookline console` process.
    pub child: tokio::process::Child,
    /// Its base URL (`http://127.0.0.1:<port>`).
    pub url: String,
}

impl Console {
    /// Starts `hookline --config config console --listen listen` with `env`
    /// and waits until `probe_host:port` answers HTTP.
    ///
    /// # Errors
    /// It exits or does not answer within 20 s.
    pub async fn start(config: &Path, listen: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let binary = crate::workspace_binary("hookline")?;
        let mut command = tokio::process::Command::new(binary);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HOOKLINE_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .arg("--config")
            .arg(config)
            .args(["console", "--listen", listen])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let port = listen.rsplit(':').next().unwrap_or_default();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let probe = format!("{url}/assets/console.css");
        crate::eventually(Duration::from_secs(20), "the console to answer", || {
            let request = http.get(&probe).send();
            let exited = child.try_wait().ok().flatten();
            async move {
                if let Some(status) = exited {
                    bail!("hookline console exited: {status}");
                }
                Ok(request.await.is_ok())
            }
        })
        .await?;
        Ok(Self { child, url })
    }
}
