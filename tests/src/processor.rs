//! The processor tests' harness: a NATS server with the streams declared,
//! processor instances run in-process or as the binary, a scripted handler
//! that records its calls, and a real HTTP sink.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::NatsServer;
use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer;
use async_nats::jetstream::{self, message::StreamMessage};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hookline_platform::streams::StreamConfig;
use hookline_processor::{Config, Handler, Outcome, ProcessorConfig, Webhook};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A nats-server with both streams declared, and a JetStream context on it.
pub struct Env {
    /// The NATS server.
    pub server: NatsServer,
    /// A JetStream context on it.
    pub js: jetstream::Context,
    /// The streams' config.
    pub stream: StreamConfig,
}

/// Small limits: tests must not reserve 1 GiB streams each.
pub fn stream_config() -> StreamConfig {
    StreamConfig {
        max_bytes: hookline_platform::config::ByteSize(64 << 20),
        dlq_max_bytes: hookline_platform::config::ByteSize(16 << 20),
        ..StreamConfig::default()
    }
}

impl Env {
    /// A server with the test stream config declared.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(stream_config()).await
    }

    /// A server with `stream` declared.
    pub async fn start_with(stream: StreamConfig) -> anyhow::Result<Self> {
        let server = NatsServer::start().await?;
        let js = jetstream::new(server.client().await?);
        stream.declare(&js).await?;
        Ok(Self { server, js, stream })
    }

    /// A full config for `processor`, pointing at this server.
    pub fn config(&self, processor: ProcessorConfig) -> Config {
        let mut config = Config::new(processor);
        config.nats.url = self.server.url();
        config.stream = self.stream.clone();
        config
    }

    /// A JetStream context on a connection of its own (one per instance).
    pub async fn connect(&self) -> anyhow::Result<jetstream::Context> {
        Ok(jetstream::new(self.server.client().await?))
    }

    /// The durable consumer of `group`.
    pub async fn consumer_info(&self, group: &str) -> anyhow::Result<consumer::Info> {
        Ok(self
            .js
            .get_stream(&self.stream.name)
            .await?
            .consumer_info(group)
            .await?)
    }

    /// Waits until the group has nothing pending and nothing unacked.
    pub async fn wait_settled(&self, group: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            // The consumer may not exist yet while an instance starts.
            let info = self.consumer_info(group).await;
            if let Ok(info) = &info
                && info.num_pending == 0
                && info.num_ack_pending == 0
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let info = info?;
                bail!(
                    "group {group} not settled within {within:?}: pending {}, ack pending {}",
                    info.num_pending,
                    info.num_ack_pending
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the group's consumer has at least `n` pull requests
    /// waiting: every instance is up and idle.
    pub async fn wait_pulling(
        &self,
        group: &str,
        n: usize,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(info) = self.consumer_info(group).await
                && info.num_waiting >= n
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("fewer than {n} instances of {group} pulling after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for at least `n` dead letters and returns them in order.
    pub async fn dead_letters(
        &self,
        n: u64,
        within: Duration,
    ) -> anyhow::Result<Vec<StreamMessage>> {
        let deadline = Instant::now() + within;
        let mut dlq = self.js.get_stream(&self.stream.dlq_name).await?;
        loop {
            let state = dlq.info().await?.state.clone();
            if state.messages >= n {
                let mut letters = Vec::new();
                for seq in state.first_sequence..=state.last_sequence {
                    letters.push(dlq.get_raw_message(seq).await?);
                }
                return Ok(letters);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} dead letters after {within:?}, expected {n}",
                    state.messages
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The message at `seq` in `WEBHOOKS`, as stored.
    pub async fn original(&self, seq: u64) -> anyhow::Result<StreamMessage> {
        Ok(self
            .js
            .get_stream(&self.stream.name)
            .await?
            .get_raw_message(seq)
            .await?)
    }
}

/// A processor config tuned for tests: small and fast, no handler, and
/// `start = "all"`: tests publish their webhooks before the group exists.
pub fn processor(group: &str) -> ProcessorConfig {
    let mut config = ProcessorConfig::new(group);
    config.start = Some(hookline_processor::Start::All);
    config.concurrency = 8;
    config.ack_wait = Duration::from_secs(2);
    config.max_deliver = 5;
    config.backoff.initial = Duration::from_millis(100);
    config.backoff.max = Duration::from_secs(1);
    config.handler_timeout = Duration::from_secs(30);
    config.drain_timeout = Duration::from_secs(5);
    config.max_ack_pending = 1_000;
    config
}

/// An in-process processor instance.
pub struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), hookline_processor::Error>>,
}

/// Starts `run` on its own connection.
pub async fn spawn<H: Handler>(
    env: &Env,
    config: Config,
    handler: Arc<H>,
) -> anyhow::Result<Running> {
    let js = env.connect().await?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(hookline_processor::run(
        js,
        config,
        handler,
        shutdown.clone(),
    ));
    Ok(Running { shutdown, task })
}

impl Running {
    /// Cancels and waits for `run` to return (it must return `Ok`).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("run did not return within 30 s of shutdown")??
            .context("run failed")
    }

    /// Whether the instance's `run` has returned.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// What a scripted handler call does.
pub enum Action {
    /// Return this outcome at once.
    Return(Outcome),
    /// Sleep, then return the outcome.
    Sleep(Duration, Outcome),
    /// Never return.
    Hang,
    /// Panic with this message.
    Panic(&'static str),
}

/// One recorded handler call.
#[derive(Debug, Clone)]
pub struct Call {
    /// When the handler was called.
    pub at: Instant,
    /// The webhook id.
    pub id: String,
    /// The delivery attempt.
    pub attempt: u32,
    /// The stream sequence.
    pub seq: u64,
    /// The idempotency key.
    pub key: String,
}

type Script = dyn Fn(&Webhook) -> Action + Send + Sync;

/// A handler that records each call and then does what the script says.
pub struct Scripted {
    calls: Mutex<Vec<Call>>,
    count: watch::Sender<usize>,
    script: Box<Script>,
}

impl Scripted {
    /// A handler that answers each webhook with `script`.
    pub fn new(script: impl Fn(&Webhook) -> Action + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            script: Box::new(script),
        })
    }

    /// A handler that always succeeds.
    pub fn succeeding() -> Arc<Self> {
        Self::new(|_| Action::Return(Outcome::Success))
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The calls for webhook `id`.
    pub fn calls_for(&self, id: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.id == id).collect()
    }

    /// Waits until at least `n` calls were made.
    pub async fn wait_calls(&self, n: usize, within: Duration) -> anyhow::Result<Vec<Call>> {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(within, rx.wait_for(|count| *count >= n))
            .await
            .with_context(|| {
                format!(
                    "{} handler calls after {within:?}, expected {n}",
                    self.calls().len()
                )
            })??;
        Ok(self.calls())
    }
}

impl Handler for Scripted {
    async fn handle(&self, webhook: &Webhook) -> Outcome {
        let call = Call {
            at: Instant::now(),
            id: webhook.id().to_owned(),
            attempt: webhook.delivery.attempt,
            seq: webhook.delivery.stream_sequence,
            key: webhook.idempotency_key().to_owned(),
        };
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
        self.count.send_modify(|count| *count += 1);
        match (self.script)(webhook) {
            Action::Return(outcome) => outcome,
            Action::Sleep(pause, outcome) => {
                tokio::time::sleep(pause).await;
                outcome
            }
            Action::Hang => std::future::pending().await,
            Action::Panic(message) => panic!("{message}"),
        }
    }
}

/// Gaps between consecutive call times.
pub fn gaps(calls: &[Call]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

/// Asserts `gap` ≈ `expected` (jitter ±10 %, plus `slack` of scheduling).
pub fn assert_gap(gap: Duration, expected: Duration, slack: Duration, what: &str) {
    let low = expected
        .mul_f64(0.9)
        .saturating_sub(Duration::from_millis(20));
    let high = expected.mul_f64(1.1) + slack;
    assert!(
        gap >= low && gap <= high,
        "{what}: gap {gap:?} outside {low:?}..={high:?} (expected ≈ {expected:?})"
    );
}

// ---------------------------------------------------------------- HTTP sink

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct SinkRequest {
    /// When it arrived.
    pub at: Instant,
    /// Lower-case names; the last value of each.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Bytes,
}

impl SinkRequest {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// How the sink answers.
pub enum Reply {
    /// Answer this status.
    Status(u16),
    /// Answer this status with these headers.
    StatusWith(u16, Vec<(&'static str, String)>),
    /// Wait, then answer this status.
    After(Duration, u16),
    /// Never answer.
    Hang,
}

type Responder = dyn Fn(&SinkRequest, usize) -> Reply + Send + Sync;

struct SinkState {
    requests: Mutex<Vec<SinkRequest>>,
    count: watch::Sender<usize>,
    respond: Box<Responder>,
}

/// A real HTTP server (axum on a port-0 listener) that records requests.
pub struct Sink {
    /// The URL to post to.
    pub url: String,
    state: Arc<SinkState>,
    task: JoinHandle<()>,
}

impl Sink {
    /// `respond(request, n)` gets the request and how many requests with the
    /// same `Idempotency-Key` came before it.
    pub async fn start(
        respond: impl Fn(&SinkRequest, usize) -> Reply + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let state = Arc::new(SinkState {
            requests: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            respond: Box::new(respond),
        });
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}/hooks"),
            state,
            task,
        })
    }

    /// A sink that answers 200 to everything.
    pub async fn ok() -> anyhow::Result<Self> {
        Self::start(|_, _| Reply::Status(200)).await
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<SinkRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits for at least `n` requests.
    pub async fn wait_requests(
        &self,
        n: usize,
        within: Duration,
    ) -> anyhow::Result<Vec<SinkRequest>> {
        let mut rx = self.state.count.subscribe();
        tokio::time::timeout(within, rx.wait_for(|count| *count >= n))
            .await
            .with_context(|| {
                format!(
                    "{} sink requests after {within:?}, expected {n}",
                    self.requests().len()
                )
            })??;
        Ok(self.requests())
    }

    /// Requests per `Idempotency-Key`.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for request in self.requests() {
            *counts
                .entry(
                    request
                        .header("idempotency-key")
                        .unwrap_or_default()
                        .to_owned(),
                )
                .or_default() += 1;
        }
        counts
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<SinkState>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let request = SinkRequest {
        at: Instant::now(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let key = request
        .header("idempotency-key")
        .unwrap_or_default()
        .to_owned();
    let reply = {
        let mut requests = state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let earlier = requests
            .iter()
            .filter(|r| r.header("idempotency-key") == Some(key.as_str()))
            .count();
        let reply = (state.respond)(&request, earlier);
        requests.push(request);
        reply
    };
    state.count.send_modify(|count| *count += 1);
    let status =
        |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply {
        Reply::Status(code) => status(code).into_response(),
        Reply::StatusWith(code, headers) => {
            let mut response = status(code).into_response();
            for (name, value) in headers {
                if let Ok(value) = value.parse() {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Reply::After(pause, code) => {
            tokio::time::sleep(pause).await;
            status(code).into_response()
        }
        Reply::Hang => std::future::pending().await,
    }
}

// ------------------------------------------------------------ the binary

/// A spawned `hookline-processor`.
pub struct Instance {
    child: tokio::process::Child,
    /// The instance's working directory (config, output).
    pub dir: tempfile::TempDir,
}

/// The TOML of a whole Hookline config file: `[nats]` and `[stream]` for
/// `env`, an `[ingest]` section (which the processor must ignore), and
/// `processor` as the body of `[processor]`.
pub fn config_file(env: &Env, processor: &str) -> String {
    format!(
        "[nats]\nurl = {url:?}\n\n[stream]\nmax_bytes = \"64MiB\"\ndlq_max_bytes = \"16MiB\"\n\n\
         [ingest]\nlisten = \"127.0.0.1:0\"\n\n[processor]\nmetrics_listen = \"127.0.0.1:0\"\n{processor}\n",
        url = env.server.url()
    )
}

impl Instance {
    /// Spawns the binary with `toml` as its config file.
    pub async fn spawn(toml: &str) -> anyhow::Result<Self> {
        Self::spawn_with(toml, &[]).await
    }

    /// Starts the binary with `toml` and extra environment.
    pub async fn spawn_with(toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hookline-processor-")
            .tempdir()?;
        let config = dir.path().join("hookline.toml");
        std::fs::write(&config, toml)?;
        let binary = crate::workspace_binary("hookline-processor")?;
        let child = tokio::process::Command::new(binary)
            .arg("--config")
            .arg(&config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log"))?)
            .stderr(std::fs::File::create(dir.path().join("stderr.log"))?)
            .kill_on_drop(true)
            .spawn()
            .context("spawning hookline-processor")?;
        Ok(Self { child, dir })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// A path inside the working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What the binary wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default()
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .args([name, &self.pid().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {name} failed");
        Ok(())
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) -> anyhow::Result<()> {
        self.signal("-TERM")
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn sigkill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self, within: Duration) -> anyhow::Result<std::process::ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .with_context(|| {
                format!(
                    "hookline-processor still running after {within:?}; stderr:\n{}",
                    self.stderr()
                )
            })?
            .context("waiting for hookline-processor")
    }
}

// ------------------------------------------------------------ a fleet

/// The `[processor]` body of a fleet instance posting to `sink`.
pub fn fleet_config(env: &Env, sink: &Sink, concurrency: usize) -> String {
    config_file(
        env,
        &format!(
            "group = \"fleet\"\nstart = \"all\"\nconcurrency = {concurrency}\nack_wait = \"2s\"\nmax_deliver = 10\n\
             backoff = {{ initial = \"200ms\", max = \"2s\" }}\ndrain_timeout = \"10s\"\n\
             handler = {{ http = {{ url = \"{}\", timeout = \"5s\" }} }}\n",
            sink.url
        ),
    )
}

/// Waits until the sink has seen every key `<prefix>-0..n` (as
/// `<source>:<prefix>-i`) and the group has settled; returns the counts.
pub async fn wait_all_handled(
    env: &Env,
    sink: &Sink,
    group: &str,
    source: &str,
    prefix: &str,
    n: usize,
    within: Duration,
) -> anyhow::Result<HashMap<String, usize>> {
    let deadline = Instant::now() + within;
    loop {
        let counts = sink.counts();
        let seen = (0..n)
            .filter(|i| counts.contains_key(&format!("{source}:{prefix}-{i}")))
            .count();
        if seen == n {
            env.wait_settled(group, deadline.saturating_duration_since(Instant::now()))
                .await?;
            return Ok(sink.counts());
        }
        if Instant::now() > deadline {
            bail!("{seen} of {n} webhooks handled after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keys handled more than once, and how many extra runs in total.
pub fn duplicates(counts: &HashMap<String, usize>) -> (Vec<String>, usize) {
    let mut keys: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    let extra = counts.values().map(|n| n.saturating_sub(1)).sum();
    (keys, extra)
}
