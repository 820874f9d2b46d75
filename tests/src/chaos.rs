//! The chaos suite's machinery (its scenarios are `tests/it/chaos.rs`): a recording HTTP
//! sink for the processor's `http` handler, a load generator that records
//! every answer ingest gave, a three-node JetStream cluster on loopback,
//! the config both binaries share, and the auditor.
//!
//! # What the auditor checks
//! Ids are envelope ids (`1:<delivery>`); the stream's `Nats-Msg-Id` is
//! `github:<id>`, a dead letter's `chaos:github:<id>`.
//! - **lost**: an id answered 2xx at least once that is not in `WEBHOOKS`,
//!   or that never got a 2xx from the sink (handled) and is not in the DLQ.
//! - **half-way**: an id in `WEBHOOKS` (whatever ingest answered, even a
//!   503 or a dropped connection whose PubAck had already arrived) that is
//!   neither handled nor dead-lettered once the pipeline has drained; or an
//!   id handled or dead-lettered that is not in the stream.
//! - **duplicates**: sink 2xx answers beyond the first per id: handlers that
//!   ran twice to completion. Zero is required unless a scenario hard-kills
//!   processors; then at most kills × concurrency (the documented bound: a
//!   killed instance's in-flight handlers may have finished their side
//!   effect without recording it).
//! - **dlq**: the dead-lettered ids must be exactly the expected set.
//!
//! Summary fields: `sent` requests, `2xx` requests answered 2xx,
//! `acked_ids` distinct ids answered 2xx at least once, `non_2xx` requests
//! answered otherwise or not at all, `in_stream` distinct ids stored,
//! `stream_messages` messages stored (more than ids when a repeat came
//! after the duplicate window), `handled` ids the sink answered 2xx,
//! `duplicates`, `dead_lettered`, `persisted_without_2xx` (stored although
//! the client saw no 2xx: a kill between PubAck and answer, or a PubAck
//! after the publish timeout; the provider's retry is then a duplicate),
//! `half_way`, `lost`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ingest::signed_headers;
use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, consumer};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use hookline_platform::contract::WebhookKey;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The GitHub secret of the chaos pipeline's source.
pub const GH_SECRET: &str = "chaos-github-secret-9f3e";
/// The processor group the chaos scenarios run.
pub const GROUP: &str = "chaos";

// ---------------------------------------------------------------- sink

/// One call the sink received.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// When the sink received it.
    pub at: Instant,
    /// The status the sink answered.
    pub status: u16,
    /// The `Hookline-Attempt` header.
    pub attempt: u32,
}

#[derive(Default)]
struct SinkState {
    calls: Mutex<HashMap<String, Vec<Call>>>,
    failing: AtomicBool,
}

/// The processor's downstream: records every call by `Hookline-Id`; ids
/// starting with `poison-` always get 500 (retryable), `perm-` 422
/// (permanent); while `failing`, every call gets 503.
#[derive(Clone)]
pub struct Sink {
    state: Arc<SinkState>,
    /// The URL the processor's `http` handler posts to.
    pub url: String,
}

async fn sink_call(
    State(state): State<Arc<SinkState>>,
    headers: HeaderMap,
    _body: Bytes,
) -> StatusCode {
    let id = headers
        .get("hookline-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let attempt = headers
        .get("hookline-attempt")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let delivery = id.split_once(':').map_or(id.as_str(), |(_, d)| d);
    let status = if state.failing.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if delivery.starts_with("poison-") {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if delivery.starts_with("perm-") {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    if let Ok(mut calls) = state.calls.lock() {
        calls.entry(id).or_default().push(Call {
            at: Instant::now(),
            status: status.as_u16(),
            attempt,
        });
    }
    status
}

impl Sink {
    /// Starts the sink on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let state = Arc::new(SinkState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(sink_call))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { state, url })
    }

    /// Makes every answer a 503 (`true`) or a 200 (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Every call so far, by `Hookline-Id`.
    pub fn calls(&self) -> HashMap<String, Vec<Call>> {
        self.state
            .calls
            .lock()
            .map(|calls| calls.clone())
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------- load

/// What ingest answered to one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx.
    Ok,
    /// Another status (or 0: no answer).
    Status(u16),
    /// No answer: connection refused or dropped, or a client timeout.
    Unanswered,
}

/// Every answer per envelope id (`1:<delivery>`).
#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<HashMap<String, Vec<Answer>>>>);

impl Ledger {
    /// Records one answer for `id`.
    pub fn record(&self, id: &str, answer: Answer) {
        if let Ok(mut map) = self.0.lock() {
            map.entry(id.to_owned()).or_default().push(answer);
        }
    }

    /// Every answer so far, by webhook id.
    pub fn snapshot(&self) -> HashMap<String, Vec<Answer>> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// How many answers match `wanted`.
    pub fn count(&self, wanted: impl Fn(&Answer) -> bool) -> usize {
        self.snapshot()
            .values()
            .flatten()
            .filter(|a| wanted(a))
            .count()
    }
}

/// Sends signed GitHub deliveries.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    spec: hookline_signature::ProviderSpec,
    /// Every answer ingest gave.
    pub ledger: Ledger,
}

impl Sender {
    /// A load generator with an empty ledger.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(4)
                .build()?,
            spec: "github".parse()?,
            ledger: Ledger::default(),
        })
    }

    /// Sends delivery `delivery` (id `1:<delivery>`) to `base` and records the answer.
    pub async fn send(&self, base: &str, delivery: &str) -> Answer {
        let id = format!("1:{delivery}");
        let body =
            format!(r#"{{"delivery":"{delivery}","pad":"{}"}}"#, "x".repeat(256)).into_bytes();
        let answer = match signed_headers(&self.spec, GH_SECRET, &body, &id, "push") {
            Err(_) => Answer::Unanswered,
            Ok(headers) => match self
                .client
                .post(format!("{base}/webhooks/github"))
                .headers(headers)
                .body(body)
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => Answer::Ok,
                Ok(response) => Answer::Status(response.status().as_u16()),
                Err(_) => Answer::Unanswered,
            },
        };
        self.ledger.record(&id, answer);
        answer
    }

    /// `workers` loops sending fresh deliveries `<prefix>-<worker>-<n>` to
    /// the bases (round robin) every `pause`, until `stop`.
    pub fn run(
        &self,
        bases: Vec<String>,
        prefix: &str,
        workers: usize,
        pause: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let sender = self.clone();
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for worker in 0..workers {
                let (sender, bases, prefix, stop) =
                    (sender.clone(), bases.clone(), prefix.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut n = 0usize;
                    while !stop.is_cancelled() {
                        let base = &bases[(worker + n) % bases.len()];
                        let answer = sender.send(base, &format!("{prefix}-{worker}-{n}")).await;
                        n += 1;
                        let wait = if answer == Answer::Ok {
                            pause
                        } else {
                            pause * 4
                        };
                        tokio::select! {
                            () = stop.cancelled() => {}
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        })
    }
}

// ---------------------------------------------------------------- config

/// The one Hookline config file both binaries read in a scenario.
pub struct Settings {
    /// Client URL(s) of the NATS server or cluster.
    pub nats_url: String,
    /// Stream replicas.
    pub replicas: usize,
    /// The stream's duplicate window.
    pub duplicate_window: &'static str,
    /// The sink's URL.
    pub sink: String,
    /// Processor concurrency.
    pub concurrency: usize,
    /// Processor `max_deliver`.
    pub max_deliver: u32,
    /// Processor `backoff.initial`.
    pub backoff_initial: &'static str,
    /// Processor `backoff.max`.
    pub backoff_max: &'static str,
    /// Processor `ack_wait`.
    pub ack_wait: &'static str,
}

impl Settings {
    /// The scenarios' defaults for a server and a sink.
    pub fn new(nats_url: String, sink: &Sink) -> Self {
        Self {
            nats_url,
            replicas: 1,
            duplicate_window: "2m",
            sink: sink.url.clone(),
            concurrency: 16,
            max_deliver: 8,
            backoff_initial: "250ms",
            backoff_max: "2s",
            ack_wait: "3s",
        }
    }

    /// The config file both binaries read.
    pub fn toml(&self) -> String {
        format!(
            r#"[nats]
url = "{nats}"
connect_timeout = "20s"
request_timeout = "3s"
ping_interval = "2s"
[stream]
replicas = {replicas}
duplicate_window = "{window}"
max_bytes = "512MiB"
dlq_max_bytes = "64MiB"
[ingest]
publish_timeout = "4s"
retry_after = "1s"
[[sources]]
name = "github"
provider = "github"
secrets = [{{ env = "CHAOS_GH_SECRET" }}]
[processor]
group = "{GROUP}"
# The pipeline's own group: ingest may store webhooks before its first
# instance has created it (the processors wait for ingest's stream).
start = "all"
subjects = ["webhooks.github.>"]
concurrency = {concurrency}
ack_wait = "{ack_wait}"
max_deliver = {max_deliver}
backoff = {{ initial = "{initial}", max = "{max}" }}
handler_timeout = "5s"
drain_timeout = "2s"
handler = {{ http = {{ url = "{sink}", timeout = "2s" }} }}
"#,
            nats = self.nats_url,
            replicas = self.replicas,
            window = self.duplicate_window,
            concurrency = self.concurrency,
            ack_wait = self.ack_wait,
            max_deliver = self.max_deliver,
            initial = self.backoff_initial,
            max = self.backoff_max,
            sink = self.sink,
        )
    }
}

/// An ingest binary on a fixed port (so a restart keeps its address).
pub struct Ingest {
    /// The running binary.
    pub process: crate::process::Process,
    /// Its base URL (`http://127.0.0.1:<port>`).
    pub base: String,
}

impl Ingest {
    /// Starts `hookline-ingest` and waits until it is ready.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let port = crate::process::free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut process = crate::process::Process::spawn(
            "hookline-ingest",
            &settings.toml(),
            &[
                ("CHAOS_GH_SECRET", GH_SECRET),
                ("HOOKLINE_INGEST_LISTEN", listen.as_str()),
                ("RUST_LOG", "warn"),
            ],
        )?;
        let base = format!("http://{listen}");
        crate::process::wait_ready(
            &mut process,
            &format!("{base}/readyz"),
            Duration::from_secs(30),
        )
        .await?;
        Ok(Self { process, base })
    }

    /// Starts it again (after a kill) and waits until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.start()?;
        crate::process::wait_ready(
            &mut self.process,
            &format!("{}/readyz", self.base),
            Duration::from_secs(30),
        )
        .await
    }
}

/// A processor binary instance of the `chaos` group.
pub struct Processor {
    /// The running binary.
    pub process: crate::process::Process,
    /// Its `/readyz` URL.
    pub ready_url: String,
}

impl Processor {
    /// Starts `hookline-processor` and waits until it is ready.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let listen = format!("127.0.0.1:{}", crate::process::free_port()?);
        let mut process = crate::process::Process::spawn(
            "hookline-processor",
            &settings.toml(),
            &[
                ("HOOKLINE_PROCESSOR_METRICS_LISTEN", listen.as_str()),
                ("RUST_LOG", "warn"),
            ],
        )?;
        let ready_url = format!("http://{listen}/readyz");
        crate::process::wait_ready(&mut process, &ready_url, Duration::from_secs(30)).await?;
        Ok(Self { process, ready_url })
    }

    /// Starts it again (after a kill) and waits until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.start()?;
        crate::process::wait_ready(&mut self.process, &self.ready_url, Duration::from_secs(30))
            .await
    }
}

// ---------------------------------------------------------------- cluster

/// A three-node JetStream cluster on loopback (NATS.md §7).
pub struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

struct Node {
    name: String,
    client_port: u16,
    config: PathBuf,
    child: Option<Child>,
    runs: u32,
}

impl Cluster {
    /// Starts a three-node cluster on free loopback ports.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hookline-cluster-")
            .tempdir()?;
        let client_ports: Vec<u16> = (0..3)
            .map(|_| crate::process::free_port())
            .collect::<Result<_, _>>()?;
        let cluster_ports: Vec<u16> = (0..3)
            .map(|_| crate::process::free_port())
            .collect::<Result<_, _>>()?;
        let routes: Vec<String> = cluster_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let name = format!("n{}", i + 1);
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                     jetstream {{ store_dir: {store:?}, max_file_store: 4GB, max_memory_store: 64MB }}\n\
                     cluster {{ name: chaos, listen: 127.0.0.1:{cluster}, routes: [{routes}] }}\n",
                    client = client_ports[i],
                    store = dir.path().join(&name).display().to_string(),
                    cluster = cluster_ports[i],
                    routes = routes.join(", "),
                ),
            )?;
            nodes.push(Node {
                name,
                client_port: client_ports[i],
                config,
                child: None,
                runs: 0,
            });
        }
        let mut cluster = Self { dir, nodes };
        for i in 0..3 {
            cluster.spawn(i)?;
        }
        cluster.wait_for_jetstream().await?;
        Ok(cluster)
    }

    /// The client URLs of every node, comma-separated.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let binary = crate::nats_server_binary()?;
        let node = &mut self.nodes[i];
        node.runs += 1;
        let log = std::fs::File::create(
            self.dir
                .path()
                .join(format!("{}.{}.log", node.name, node.runs)),
        )?;
        node.child = Some(
            Command::new(binary)
                .arg("-c")
                .arg(&node.config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()?,
        );
        Ok(())
    }

    /// SIGKILLs node `i` (0-based).
    pub async fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts node `i` again with its store.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.spawn(i)?;
        self.wait_for_jetstream().await
    }

    /// The index of the node named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// A client connected to every node.
    pub async fn client(&self) -> anyhow::Result<async_nats::Client> {
        connect(&self.url()).await
    }

    /// Until every running node answers JetStream account queries.
    async fn wait_for_jetstream(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let url = format!("nats://127.0.0.1:{}", node.client_port);
            loop {
                if let Ok(client) = async_nats::connect(&url).await
                    && jetstream::new(client).query_account().await.is_ok()
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("cluster node {} has no JetStream within 30 s", node.name);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }
}

/// Connects to a comma-separated server list.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    let addrs: Vec<async_nats::ServerAddr> = url
        .split(',')
        .map(|u| u.parse())
        .collect::<Result<_, _>>()?;
    Ok(async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(addrs)
        .await?)
}

/// Declares the streams (as ingest and the processor would), retrying
/// while a fresh cluster elects its meta leader (NATS.md §6.8).
pub async fn declare_streams(
    js: &jetstream::Context,
    replicas: usize,
    window: Duration,
) -> anyhow::Result<()> {
    let config = hookline_platform::streams::StreamConfig {
        replicas,
        duplicate_window: window,
        max_bytes: hookline_platform::config::ByteSize(512 << 20),
        dlq_max_bytes: hookline_platform::config::ByteSize(64 << 20),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match config.declare(js).await {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() < deadline => {
                tracing_free_log(&format!("streams not declared yet: {error}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

fn tracing_free_log(line: &str) {
    eprintln!("chaos: {line}");
}

// ---------------------------------------------------------------- audit

/// Every `Nats-Msg-Id` in `stream`, with how often it occurs.
pub async fn stream_ids(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<HashMap<String, usize>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = loop {
        match js.get_stream(stream).await {
            Ok(stream) => break stream,
            Err(error) if Instant::now() < deadline => {
                tracing_free_log(&format!("stream {stream} not reachable yet: {error}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error.into()),
        }
    };
    let total = stream.info().await?.state.messages;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await?;
    let mut ids = HashMap::new();
    let mut seen = 0u64;
    while seen < total {
        if Instant::now() > deadline {
            bail!("read {seen} of {total} messages within 60 s");
        }
        let mut batch = consumer
            .batch()
            .max_messages(1000)
            .expires(Duration::from_secs(2))
            .messages()
            .await?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!(e))?;
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            *ids.entry(id).or_insert(0) += 1;
            seen += 1;
        }
    }
    Ok(ids)
}

/// One scenario's figures.
#[derive(Debug, Default)]
pub struct Audit {
    /// Deliveries the load generator sent.
    pub sent: usize,
    /// Ids that got a 2xx at least once.
    pub answered_2xx: usize,
    /// 2xx answers.
    pub ok: usize,
    /// Answers that were not 2xx (or no answer).
    pub non_2xx: usize,
    /// Ids found in `WEBHOOKS`.
    pub in_stream: usize,
    /// Messages in `WEBHOOKS`.
    pub stream_messages: usize,
    /// Ids the sink answered 2xx for.
    pub handled: usize,
    /// Extra 2xx'd handler runs beyond the first per id.
    pub duplicates: usize,
    /// Ids in the DLQ.
    pub dead_lettered: usize,
    /// Ids stored although no answer was a 2xx.
    pub persisted_without_2xx: usize,
    /// Ids acknowledged but neither stored nor handled or dead-lettered.
    pub lost: Vec<String>,
    /// Ids stored but neither handled nor dead-lettered.
    pub half_way: Vec<String>,
}

/// What a scenario expects of the auditor.
pub struct Expect {
    /// The most duplicate runs the scenario allows.
    pub duplicate_bound: usize,
    /// The ids expected in the DLQ (and no others).
    pub dead_letters: HashSet<String>,
    /// How long the pipeline may take to settle.
    pub drain_within: Duration,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            duplicate_bound: 0,
            dead_letters: HashSet::new(),
            drain_within: Duration::from_secs(90),
        }
    }
}

/// Waits for the pipeline to drain, then compares ledger, stream, sink
/// and DLQ; prints the summary line and fails on any loss.
pub async fn audit(
    scenario: u32,
    nats_url: &str,
    ledger: &Ledger,
    sink: &Sink,
    expect: Expect,
) -> anyhow::Result<Audit> {
    let js = jetstream::new(connect(nats_url).await?);
    let answers = ledger.snapshot();
    let ok: HashSet<&String> = answers
        .iter()
        .filter(|(_, a)| a.contains(&Answer::Ok))
        .map(|(id, _)| id)
        .collect();
    let stream = stream_ids(&js, "WEBHOOKS").await?;
    let in_stream: HashSet<String> = stream
        .keys()
        .filter_map(|k| WebhookKey::parse(k))
        .filter(|key| key.source() == "github")
        .map(|key| key.id().to_owned())
        .collect();

    // Drain: every id in the stream handled (sink 2xx) or dead-lettered.
    let deadline = Instant::now() + expect.drain_within;
    let (calls, dlq) = loop {
        let calls = sink.calls();
        let dlq: HashSet<String> = stream_ids(&js, "WEBHOOKS_DLQ")
            .await?
            .keys()
            .filter_map(|k| k.strip_prefix(&format!("{GROUP}:github:")))
            .map(str::to_owned)
            .collect();
        let settled = in_stream.iter().all(|id| {
            dlq.contains(id)
                || calls
                    .get(id)
                    .is_some_and(|c| c.iter().any(|c| (200..300).contains(&c.status)))
        });
        if settled || Instant::now() > deadline {
            break (calls, dlq);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let handled_count = |id: &str| {
        calls.get(id).map_or(0, |c| {
            c.iter().filter(|c| (200..300).contains(&c.status)).count()
        })
    };

    let mut audit = Audit {
        sent: answers.values().map(Vec::len).sum(),
        answered_2xx: answers
            .values()
            .flatten()
            .filter(|a| **a == Answer::Ok)
            .count(),
        ok: ok.len(),
        non_2xx: answers
            .values()
            .flatten()
            .filter(|a| **a != Answer::Ok)
            .count(),
        in_stream: in_stream.len(),
        stream_messages: stream.values().sum(),
        dead_lettered: dlq.len(),
        ..Audit::default()
    };
    for id in &ok {
        if !in_stream.contains(*id) || (handled_count(id) == 0 && !dlq.contains(*id)) {
            audit.lost.push((*id).clone());
        }
    }
    for id in &in_stream {
        let handled = handled_count(id);
        if handled > 0 {
            audit.handled += 1;
            audit.duplicates += handled - 1;
            if handled > 1 {
                let first = calls[id.as_str()][0].at;
                let runs: Vec<String> = calls[id.as_str()]
                    .iter()
                    .map(|c| {
                        format!(
                            "attempt {} → {} at +{:?}",
                            c.attempt,
                            c.status,
                            c.at - first
                        )
                    })
                    .collect();
                println!("scenario={scenario} handled twice: {id}: {runs:?}");
            }
        } else if !dlq.contains(id) {
            audit.half_way.push(id.clone());
        }
        if !ok.contains(id) {
            audit.persisted_without_2xx += 1;
        }
    }
    for id in calls.keys().chain(dlq.iter()) {
        if !in_stream.contains(id) {
            audit
                .half_way
                .push(format!("{id} (handled but not in the stream)"));
        }
    }
    println!(
        "scenario={scenario} sent={} 2xx={} acked_ids={} non_2xx={} in_stream={} stream_messages={} handled={} duplicates={} \
         dead_lettered={} persisted_without_2xx={} half_way={} lost={}",
        audit.sent,
        audit.answered_2xx,
        audit.ok,
        audit.non_2xx,
        audit.in_stream,
        audit.stream_messages,
        audit.handled,
        audit.duplicates,
        audit.dead_lettered,
        audit.persisted_without_2xx,
        audit.half_way.len(),
        audit.lost.len(),
    );
    let sample = |ids: &[String]| ids.iter().take(10).cloned().collect::<Vec<_>>();
    assert!(
        audit.lost.is_empty(),
        "scenario {scenario}: lost {:?}",
        sample(&audit.lost)
    );
    assert!(
        audit.half_way.is_empty(),
        "scenario {scenario}: kept half-way {:?}",
        sample(&audit.half_way)
    );
    assert!(
        audit.duplicates <= expect.duplicate_bound,
        "scenario {scenario}: {} handled twice (bound {})",
        audit.duplicates,
        expect.duplicate_bound
    );
    assert_eq!(
        dlq, expect.dead_letters,
        "scenario {scenario}: dead letters"
    );
    assert!(audit.ok > 0, "scenario {scenario}: nothing was accepted");
    Ok(audit)
}

/// The ids (`1:<delivery>`) that `ledger` recorded with `prefix`.
pub fn ids_with_prefix(ledger: &Ledger, prefix: &str) -> HashSet<String> {
    ledger
        .snapshot()
        .into_keys()
        .filter(|id| id.starts_with(&format!("1:{prefix}")))
        .collect()
}

/// Waits `within` for `condition` (polled every 100 ms).
pub async fn eventually(
    within: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !condition() {
        if Instant::now() > deadline {
            bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The address part of a base URL (`http://127.0.0.1:8080` → socket address).
pub fn socket_addr(base: &str) -> anyhow::Result<SocketAddr> {
    base.trim_start_matches("http://")
        .parse()
        .context("base URL")
}
