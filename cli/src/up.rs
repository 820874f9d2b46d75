//! `hookline up`: the local pipeline in one command.
//!
//! 1. NATS: when a server answers at `nats.url`, it is used as it is.
//!    Otherwise a JetStream `nats-server` is started on that address, which
//!    must then be one loopback address, storing in `--data`.
//! 2. `hookline-ingest` and `hookline-processor` (the binaries next to this
//!    one) start with the same config file, pointed at that server.
//! 3. Their output is forwarded line by line, prefixed with their name.
//! 4. SIGINT/SIGTERM (or any of them exiting) stops everything: ingest and
//!    the processor get SIGTERM and drain, then nats-server gets SIGTERM.
//!
//! Children run in their own process group, so a terminal's Ctrl-C reaches
//! only `hookline`, which stops them in order (NATS last, so that the
//! processor can still settle its messages while it drains).

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use hookline_platform::config::parse_duration;
use hookline_platform::shutdown;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::args::UpArgs;
use crate::console;
use crate::error::{Error, Result};
use crate::settings::{Settings, reachable};

/// How long ingest and the processor may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a local nats-server may take to accept clients.
const NATS_READY_WITHIN: Duration = Duration::from_secs(15);
/// How long a child may drain after SIGTERM before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(40);
/// How long `up` waits for an answer from an existing server at `nats.url`.
const PROBE_WITHIN: Duration = Duration::from_secs(2);

/// The variable naming the nats-server binary (not a `HOOKLINE_*` name:
/// those are configuration overrides).
pub const NATS_SERVER_ENV: &str = "NATS_SERVER_BIN";

/// Runs `hookline up` until a signal or a child's exit.
///
/// # Errors
/// No config, missing secrets or binaries (2); a process that cannot start
/// or that exits on its own (1).
pub async fn run(settings: &Settings, args: &UpArgs) -> Result<()> {
    let config = settings.path.clone().ok_or_else(|| {
        Error::Usage(
            "hookline up needs a config file: --config FILE or HOOKLINE_CONFIG (try hookline.example.toml)"
                .to_owned(),
        )
    })?;
    let sync_line = match args.nats_sync.as_deref() {
        None => None,
        Some("always") => Some("sync_interval: always".to_owned()),
        Some(text) => {
            parse_duration(text).map_err(|e| Error::Usage(format!("--nats-sync: {e}")))?;
            Some(format!("sync_interval: \"{text}\""))
        }
    };
    check_sources(settings)?;
    let with_processor = !args.no_processor && settings.processor.is_some();
    if with_processor
        && settings
            .processor
            .as_ref()
            .is_some_and(|p| p.handler.is_none())
    {
        return Err(Error::Usage(
            "[processor] has no handler: add handler = { file = { path = \"events.jsonl\" } } \
             (or pass --no-processor)"
                .to_owned(),
        ));
    }
    let ingest_bin = sibling("hookline-ingest")?;
    let processor_bin = sibling("hookline-processor")?;

    let shutdown = shutdown::on_signal();
    let mut children = Children::default();
    let url = settings.ingest.nats.redacted_url();
    let nats_url = if settings.nats_url_explicit && server_answers(settings).await {
        say(&format!("using the NATS server at {url}"));
        None
    } else {
        let local = LocalNats::plan(settings)?;
        let binary = nats_server_binary()?;
        let url = local
            .start(&binary, &args.data, sync_line.as_deref(), &mut children)
            .await?;
        Some(url)
    };
    let result = async {
        let mut env = Vec::new();
        if !std::io::stdout().is_terminal() {
            env.push(("NO_COLOR".to_owned(), "1".to_owned())); // plain forwarded logs
        }
        if let Some(url) = &nats_url {
            env.push(("HOOKLINE_NATS_URL".to_owned(), url.clone()));
        }
        children.spawn("ingest", &ingest_bin, &config, &env)?;
        if with_processor {
            children.spawn("processor", &processor_bin, &config, &env)?;
        }
        let ingest_url = format!("http://{}", settings.ingest_addr());
        let admin_url = settings.ingest.ingest.metrics_listen.map_or_else(
            || ingest_url.clone(),
            |a| format!("http://{}", reachable(a)),
        );
        children
            .wait_ready("ingest", &format!("{admin_url}/readyz"), &shutdown)
            .await?;
        let processor_url = settings
            .processor
            .as_ref()
            .map(|p| format!("http://{}", reachable(p.metrics_listen)));
        if with_processor && let Some(processor_url) = &processor_url {
            children
                .wait_ready("processor", &format!("{processor_url}/readyz"), &shutdown)
                .await?;
        }
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let console_url = start_console(settings, nats_url.as_deref(), &shutdown).await;
        print_ready(
            settings,
            &cli_command(settings, args),
            nats_url.as_deref(),
            &args.data,
            &Urls {
                ingest: &ingest_url,
                admin: &admin_url,
                console: console_url.as_deref(),
            },
            with_processor,
        );
        tokio::select! {
            () = shutdown.cancelled() => Ok(()),
            (name, status) = children.first_exit() => Err(Error::Failed(format!(
                "{name} exited ({status}); stopping everything"
            ))),
        }
    }
    .await;
    say("stopping");
    let stopped = children.stop_all().await;
    match (result, stopped) {
        (Err(error), _) => Err(error),
        (Ok(()), Err(error)) => Err(error),
        (Ok(()), Ok(())) => {
            say("stopped");
            Ok(())
        }
    }
}

/// Serves the console in this process until `shutdown`; its URL, or `None`
/// (with the reason said) when it cannot start: the pipeline runs anyway.
async fn start_console(
    settings: &Settings,
    nats_url: Option<&str>,
    shutdown: &CancellationToken,
) -> Option<String> {
    let mut settings = settings.clone();
    if let Some(url) = nats_url {
        settings.ingest.nats.url = url.to_owned();
    }
    let listen = settings
        .console
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], console::DEFAULT_PORT)));
    let started = async {
        let listener = console::bind(listen).await?;
        let js = settings.connect().await?;
        let address = listener.local_addr().unwrap_or(listen);
        let state = console::prepare(settings.clone(), js, address)?;
        Ok::<_, Error>((listener, state))
    };
    match started.await {
        Ok((listener, state)) => {
            let url = console::url(state.listen);
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let _ =
                    console::serve(listener, state, async move { stop.cancelled().await }).await;
            });
            Some(url)
        }
        Err(e) => {
            say(&format!("console not started: {}", e.one_line()));
            None
        }
    }
}

/// Every source's secrets must be readable before anything starts.
fn check_sources(settings: &Settings) -> Result<()> {
    settings
        .ingest
        .validate()
        .map_err(|e| Error::Usage(e.to_string()))?;
    for source in &settings.ingest.sources {
        for secret in &source.secrets {
            secret.resolve().map_err(|e| {
                Error::Usage(format!(
                    "source {:?}: {e} (export it, or use {{ file = \"…\" }}; secrets never go on the command line)",
                    source.name
                ))
            })?;
        }
    }
    Ok(())
}

/// How the hints call the CLI: `--cli-command`, else this program with the
/// config file it was given.
fn cli_command(settings: &Settings, args: &UpArgs) -> String {
    if let Some(command) = &args.cli_command {
        return command.clone();
    }
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "hookline".to_owned());
    match settings.path.as_deref() {
        Some(path) => format!("{program} --config {}", path.display()),
        None => program,
    }
}

/// Where the pieces `up` started answer.
struct Urls<'a> {
    ingest: &'a str,
    admin: &'a str,
    console: Option<&'a str>,
}

fn print_ready(
    settings: &Settings,
    cli: &str,
    nats_url: Option<&str>,
    data: &Path,
    urls: &Urls<'_>,
    with_processor: bool,
) {
    let (ingest_url, admin_url, console_url) = (urls.ingest, urls.admin, urls.console);
    let names: Vec<&str> = settings
        .ingest
        .sources
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    say("ready");
    say(&format!(
        "  webhooks   {ingest_url}/webhooks/{{{}}}",
        names.join(",")
    ));
    say(&format!(
        "  ingest     {admin_url}/metrics  {admin_url}/readyz"
    ));
    if with_processor && let Some(processor) = &settings.processor {
        let handler = match &processor.handler {
            Some(hookline_processor::HandlerConfig::File(file)) => {
                format!("file {}", file.path.display())
            }
            Some(hookline_processor::HandlerConfig::Http(http)) => format!("http {}", http.url),
            None => "-".to_owned(),
        };
        say(&format!(
            "  processor  group {} → {handler}; http://{}/metrics",
            processor.group,
            reachable(processor.metrics_listen)
        ));
    }
    match nats_url {
        Some(url) => say(&format!(
            "  nats       {url} (local, JetStream store {})",
            data.display()
        )),
        None => say(&format!(
            "  nats       {} (existing server)",
            settings.ingest.nats.redacted_url()
        )),
    }
    if let Some(url) = console_url {
        say(&format!(
            "  console    {url}  (webhooks, dead letters, re-drive)"
        ));
    }
    say(&format!(
        "try: {cli} send {}   (Ctrl-C stops everything)",
        names.first().copied().unwrap_or("<source>"),
    ));
}

fn say(line: &str) {
    print_line(&format!("{:>9} | {line}", "hookline"));
}

/// Writes one line to stdout, ignoring failures: `up` must go on (and stop
/// its children cleanly on SIGTERM) when whoever read its output has gone.
/// `println!` would panic on the closed pipe.
fn print_line(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// Whether a JetStream-enabled server answers at `nats.url`.
async fn server_answers(settings: &Settings) -> bool {
    let probe = async {
        let addrs = settings.ingest.nats.server_addrs().ok()?;
        let options = settings.ingest.nats.options("hookline-up").await.ok()?;
        let client = options
            .connection_timeout(PROBE_WITHIN)
            .retry_on_initial_connect()
            .max_reconnects(Some(1))
            .connect(addrs)
            .await
            .ok()?;
        let js = async_nats::jetstream::new(client);
        js.query_account().await.ok()
    };
    tokio::time::timeout(PROBE_WITHIN, probe)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// A local nats-server to start on the loopback address of `nats.url`.
struct LocalNats {
    host: String,
    port: u16,
}

impl LocalNats {
    fn plan(settings: &Settings) -> Result<Self> {
        let nats = &settings.ingest.nats;
        let addrs = nats
            .server_addrs()
            .map_err(|e| Error::Usage(e.to_string()))?;
        let [addr] = addrs.as_slice() else {
            return Err(Error::Failed(format!(
                "no NATS server answers at {} and hookline up starts a local one only for a single loopback address",
                nats.redacted_url()
            )));
        };
        let host = addr.host().trim_matches(['[', ']']).to_owned();
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback || nats.url_credentials().is_some() {
            return Err(Error::Failed(format!(
                "no NATS server answers at {}; hookline up starts a local one only on a loopback address without credentials",
                nats.redacted_url()
            )));
        }
        Ok(Self {
            host,
            port: addr.port(),
        })
    }

    /// Starts the server and waits until JetStream answers; returns its URL.
    async fn start(
        &self,
        binary: &Path,
        data: &Path,
        sync_line: Option<&str>,
        children: &mut Children,
    ) -> Result<String> {
        std::fs::create_dir_all(data).map_err(|e| {
            Error::caused(
                format!("cannot create the data folder {}", data.display()),
                e,
            )
        })?;
        let data = std::fs::canonicalize(data).map_err(|e| {
            Error::caused(format!("cannot use the data folder {}", data.display()), e)
        })?;
        let conf = data.join("nats-server.conf");
        let store = data.display().to_string();
        std::fs::write(
            &conf,
            format!(
                "# Written by `hookline up`.\nserver_name: hookline-local\nlisten: \"{}:{}\"\njetstream {{\n  store_dir: {store:?}\n  {}\n}}\n",
                self.host,
                self.port,
                sync_line.unwrap_or("# sync_interval: default (2m); `hookline up --nats-sync always` fsyncs before every ack")
            ),
        )
        .map_err(|e| Error::caused(format!("cannot write {}", conf.display()), e))?;
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let url = format!("nats://{host}:{}", self.port);
        say(&format!(
            "starting nats-server {} on {url} (store {store})",
            binary.display()
        ));
        let mut command = Command::new(binary);
        command.arg("-c").arg(&conf);
        children.spawn_command("nats", command)?;
        let deadline = tokio::time::Instant::now() + NATS_READY_WITHIN;
        loop {
            if let Ok(Ok(client)) =
                tokio::time::timeout(PROBE_WITHIN, async_nats::connect(url.as_str())).await
                && async_nats::jetstream::new(client)
                    .query_account()
                    .await
                    .is_ok()
            {
                return Ok(url);
            }
            if let Some((name, status)) = children.exited() {
                return Err(Error::Failed(format!(
                    "{name} exited ({status}) before accepting clients; is port {} in use?",
                    self.port
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Failed(format!(
                    "nats-server did not accept clients on {url} within {NATS_READY_WITHIN:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Finds nats-server: `NATS_SERVER_BIN`, `.tools/nats-server/bin/nats-server`
/// in the current folder or above this executable, then `PATH`.
///
/// # Errors
/// None found, with the install hint (exit 2).
pub fn nats_server_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::Usage(format!(
            "{NATS_SERVER_ENV}={} is not a file",
            path.display()
        )));
    }
    let tools = Path::new(".tools/nats-server/bin/nats-server");
    let mut candidates = vec![tools.to_path_buf()];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|dir| dir.join(tools)));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&paths).map(|dir| dir.join("nats-server")));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        Error::Usage(
            "nats-server not found: run scripts/install-nats-server (installs it into .tools/), \
             put nats-server on PATH, or set NATS_SERVER_BIN"
                .to_owned(),
        )
    })
}

/// A binary that ships next to `hookline`.
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::caused("cannot locate the hookline executable", e))?;
    let path = exe.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Usage(format!(
            "{} not found next to hookline (build the workspace: cargo build --release --bins)",
            path.display()
        )))
    }
}

/// The processes `up` started, in start order.
#[derive(Default)]
struct Children {
    running: Vec<(String, Child)>,
    exited: Vec<(String, ExitStatus)>,
}

impl Children {
    fn spawn(
        &mut self,
        name: &str,
        binary: &Path,
        config: &Path,
        env: &[(String, String)],
    ) -> Result<()> {
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(config)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.spawn_command(name, command)
    }

    fn spawn_command(&mut self, name: &str, mut command: Command) -> Result<()> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| Error::caused(format!("cannot start {name}"), e))?;
        if let Some(stdout) = child.stdout.take() {
            forward(name, stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            forward(name, stderr);
        }
        say(&format!(
            "started {name} (pid {})",
            child.id().unwrap_or_default()
        ));
        self.running.push((name.to_owned(), child));
        Ok(())
    }

    /// A child that has exited, if any (it is moved to `exited`).
    fn exited(&mut self) -> Option<(String, ExitStatus)> {
        let index = self
            .running
            .iter_mut()
            .position(|(_, child)| matches!(child.try_wait(), Ok(Some(_))))?;
        let (name, mut child) = self.running.remove(index);
        let status = child.try_wait().ok().flatten()?;
        self.exited.push((name.clone(), status));
        Some((name, status))
    }

    /// Waits until one child exits.
    async fn first_exit(&mut self) -> (String, ExitStatus) {
        loop {
            if let Some(exit) = self.exited() {
                return exit;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_ready(
        &mut self,
        name: &str,
        url: &str,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::caused("cannot build the HTTP client", e))?;
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            if let Ok(response) = client.get(url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some((exited, status)) = self.exited() {
                return Err(Error::Failed(format!(
                    "{exited} exited ({status}) while starting; see its output above"
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Failed(format!(
                    "{name} not ready at {url} within {READY_WITHIN:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM to every child, newest first (ingest and the processor drain
    /// while NATS is still up), each waited for before the next.
    async fn stop_all(&mut self) -> Result<()> {
        let mut failures = Vec::new();
        for (name, status) in &self.exited {
            if !status.success() {
                failures.push(format!("{name} exited ({status})"));
            }
        }
        while let Some((name, mut child)) = self.running.pop() {
            if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let Ok(Ok(status)) = tokio::time::timeout(STOP_WITHIN, child.wait()).await else {
                let _ = child.kill().await;
                failures.push(format!(
                    "{name} did not stop within {STOP_WITHIN:?}; killed"
                ));
                continue;
            };
            // nats-server reports a signal-initiated stop with a non-zero code.
            if !status.success() && name != "nats" {
                failures.push(format!("{name} exited ({status})"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Failed(failures.join("; ")))
        }
    }
}

/// Copies a child's output to ours, one prefixed line at a time. The
/// child's pipe is drained to its end even when our own output has gone,
/// so a child never blocks on a full pipe while it drains.
fn forward(name: &str, pipe: impl AsyncRead + Unpin + Send + 'static) {
    let prefix = format!("{name:>9} | ");
    tokio::spawn(async move {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        // Bytes, not `lines()`: a line that is not UTF-8 must not end the drain.
        while let Ok(read) = reader.read_until(b'\n', &mut line).await
            && read > 0
        {
            let text = String::from_utf8_lossy(&line);
            print_line(&format!("{prefix}{}", text.trim_end_matches(['\n', '\r'])));
            line.clear();
        }
    });
}
