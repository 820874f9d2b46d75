//! The command line: `hookline [--config FILE] <command> …` (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Operate a Hookline webhook pipeline: run it locally, send signed test webhooks, \
inspect streams and consumers, browse and replay dead letters, re-deliver history, trace a webhook.";

const AFTER_HELP: &str = "\
Examples:
  hookline up --config hookline.example.toml      # nats-server + ingest + processor; Ctrl-C stops all
  hookline send github                            # a signed sample 'push', as GitHub would send it
  hookline send stripe --body event.json          # your payload, signed with the source's secret
  hookline status                                 # streams, groups, dead letters, cluster health
  hookline dlq list --group billing --since 1h    # dead letters of the last hour, with reasons
  hookline dlq replay 42 43                       # re-drive them; removed once the copy is stored
  hookline replay --group billing --source stripe --since 2h --rate 20
  hookline trace 'evt_1Nx…' --source stripe       # where is this webhook?
  hookline providers                              # the 54 provider presets and where their secrets are
  hookline streams apply --dry-run                # how the streams differ from [stream]

Configuration: --config FILE or HOOKLINE_CONFIG names the TOML file the other binaries read;
every key can be overridden with HOOKLINE_<SECTION>_<KEY> (e.g. HOOKLINE_NATS_URL). Secrets
come from the file's secret sources (environment variables or files), never the command line.

Exit codes:
  0  ok
  1  the operation failed (NATS unreachable, no PubAck, ingest refused a send, a process died)
  2  usage or configuration error: nothing was done
  3  not found: the named source, webhook id, dead letter or stream does not exist";

/// `hookline`: the operator's CLI.
#[derive(Debug, Parser)]
#[command(name = "hookline", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Hookline config file (TOML), shared with hookline-ingest and hookline-processor.
    #[arg(
        short,
        long,
        global = true,
        env = "HOOKLINE_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local pipeline: nats-server (unless one answers at nats.url), ingest and the processor.
    #[command(after_help = UP_HELP)]
    Up(UpArgs),
    /// Sign a sample (or your) payload as the source's provider would and POST it to ingest.
    #[command(after_help = SEND_HELP)]
    Send(SendArgs),
    /// Streams, consumer groups, dead letters, the idempotency bucket and cluster health.
    Status(StatusArgs),
    /// Dead letters: list, show, replay (re-drive) or purge them.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Re-deliver a source's history to one processor group (other groups never see the copies).
    #[command(after_help = REPLAY_HELP)]
    Replay(ReplayArgs),
    /// Where is this webhook? Its messages in the stream and its state in every group.
    #[command(after_help = TRACE_HELP)]
    Trace(TraceArgs),
    /// The provider catalogue: every `provider = "…"` preset, its scheme, replay window,
    /// handshake and where the provider's console shows the secret.
    Providers(ProvidersArgs),
    /// Sources: open a window to capture a secret handed over in a provider's handshake.
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// The streams: compare them with the config's stream section and apply the differences.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// The web console: overview, webhooks, one webhook, dead letters; a JSON API under /api/.
    #[command(after_help = CONSOLE_HELP)]
    Console(ConsoleArgs),
}

/// `hookline sources …`.
#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Accept the secret the next handshake hands over (Asana `X-Hook-Secret`, Notion
    /// `verification_token`) for a while; create the webhook at the provider meanwhile.
    Capture(CaptureArgs),
}

/// `hookline sources capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The source (an `asana` or `notion` source of the config).
    pub source: String,
    /// How long the window stays open (it closes at the first capture).
    #[arg(long = "for", value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hookline providers`.
#[derive(Debug, Args)]
pub struct ProvidersArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

const CONSOLE_HELP: &str = "\
Listens on 127.0.0.1:8899 unless --listen or [console] listen says otherwise. Any address
that is not loopback needs [console] token = { env = \"NAME\" } (or file = …): the browser
signs in with it once (an HttpOnly cookie), API clients send Authorization: Bearer <token>.

Examples:
  hookline console
  HOOKLINE_CONSOLE_TOKEN=… hookline console --listen 0.0.0.0:8899";

/// `hookline console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Address to listen on (default 127.0.0.1:8899, or `[console] listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

const UP_HELP: &str = "\
NATS: if a server answers at nats.url (from the file or HOOKLINE_NATS_URL), it is used as it is.
Otherwise `up` starts a JetStream nats-server on that address, which must then be a loopback
address (127.0.0.1, localhost, ::1; default nats://127.0.0.1:4222), storing in --data.
nats-server is found through NATS_SERVER_BIN, then .tools/nats-server/bin/nats-server (made by
scripts/install-nats-server), then PATH. hookline-ingest and hookline-processor are the binaries
next to this one. Their logs are forwarded, prefixed with their name. Ctrl-C or SIGTERM stops
ingest and the processor (they drain), then nats-server; the exit code is 0 when all stopped
cleanly.

Examples (from the repository root):
  scripts/run                                      # builds, sets development secrets, runs `up`
  . scripts/dev-secrets && target/release/hookline up --config hookline.example.toml
  GITHUB_WEBHOOK_SECRET=s3cret hookline up --config my.toml --cli-command 'hookline --config my.toml'";

const SEND_HELP: &str = "\
The source's first secret signs the request exactly as its provider does (headers, timestamp,
signed string). Without --body a realistic sample for the provider is sent: GitHub `push`,
Stripe `payment_intent.succeeded`, Standard Webhooks `invoice.paid`, Shopify `orders/create`,
Slack `app_mention`. --id and --event go where the provider puts them (for Stripe and Slack in
the sample body; with --body the body is sent unchanged). Without --url the request goes to
ingest.listen from the config. Exit 0 on a 2xx answer, 1 otherwise.

Examples:
  hookline send github
  hookline send stripe --event invoice.paid --id evt_test_1
  echo '{\"type\":\"ping\"}' | hookline send svix --body - --json";

const REPLAY_HELP: &str = "\
Copies of the source's webhooks stored between --since and --until are published to
replay.<group>.<source>.<event>: only that group's consumer filters those subjects (every
processor group does), so other groups and downstream consumers never see them. A copy keeps
the webhook's id, so the group acks webhooks it already handled as duplicates, unless
--bypass-idempotency removes its `done` records first. Publishing is rate-limited (--rate).

Example:
  hookline replay --group billing --source stripe --since 2026-11-28T09:00:00Z --until 2h --rate 20";

const TRACE_HELP: &str = "\
The id is the provider's webhook id as ingest answered it (e.g. `evt_1…`, GitHub
`<hook id>:<delivery>`), or the whole Nats-Msg-Id `<source>:<id>`. The stream is scanned
(headers only); --source and --since narrow the scan. For each processor group: handled,
pending, running / being retried (attempt n), dead-lettered, or not subscribed.

Example:
  hookline trace 1:72d3162e-cc78-11e3-81ab-4c9367dc0958 --source github";

/// `hookline up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where a local nats-server keeps its JetStream data.
    #[arg(long, value_name = "DIR", default_value = ".hookline/nats")]
    pub data: PathBuf,
    /// JetStream fsync for a local nats-server: `always` (fsync before every ack) or an interval
    /// such as `1s` (nats-server's default is 2m; docs/guarantees.md, "Durability").
    #[arg(long, value_name = "always|DURATION")]
    pub nats_sync: Option<String>,
    /// Do not start the processor, only nats-server and ingest.
    #[arg(long)]
    pub no_processor: bool,
    /// How the printed hints call the CLI, so that they run as written in a
    /// new terminal (default: this program with --config FILE; scripts/run
    /// passes `scripts/hookline`, which brings the development secrets).
    #[arg(long, value_name = "COMMAND")]
    pub cli_command: Option<String>,
}

/// `hookline send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The configured source (`[[sources]] name`).
    pub source: String,
    /// The payload to sign and send: a file, or `-` for standard input (default: a sample).
    #[arg(long, value_name = "FILE|-")]
    pub body: Option<PathBuf>,
    /// The event type (where the provider puts it).
    #[arg(long, value_name = "EVENT")]
    pub event: Option<String>,
    /// The webhook id (where the provider puts it; default: a new unique id, so every send is a
    /// new webhook; send the same --id twice to see a duplicate).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Ingest's URL for this source (default: http://<ingest.listen>/webhooks/<source>).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hookline status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Which dead letters a `dlq` command works on.
#[derive(Debug, Clone, Default, Args)]
pub struct Selection {
    /// Dead letters by sequence in the dead-letter stream (`42`, or a range `40-45`).
    #[arg(value_name = "SEQ")]
    pub sequences: Vec<String>,
    /// Only this processor group's dead letters.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Only this source's.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Only this event type (as the provider named it, or its subject token).
    #[arg(long, value_name = "EVENT")]
    pub event: Option<String>,
    /// Only dead-lettered at or after this time: RFC 3339 (`2026-11-29T10:00:00Z`) or an age (`2h`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only dead-lettered at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

/// `hookline dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters with their reasons (all, or those selected).
    List {
        /// Which dead letters.
        #[command(flatten)]
        selection: Selection,
        /// At most this many (the oldest first).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show dead letters in full: headers, envelope, body.
    Show {
        /// Which dead letters (at least one sequence or filter).
        #[command(flatten)]
        selection: Selection,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-drive dead letters into the main flow; each is removed once its copy is stored (PubAck).
    #[command(after_help = DLQ_REPLAY_HELP)]
    Replay {
        /// Which dead letters.
        #[command(flatten)]
        selection: Selection,
        /// Every dead letter (needed when no sequence or filter is given).
        #[arg(long)]
        all: bool,
        /// Keep the dead letters after re-driving them.
        #[arg(long)]
        keep: bool,
        /// Only print what would be re-driven.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete dead letters for good (asks for confirmation unless --yes).
    Purge {
        /// Which dead letters.
        #[command(flatten)]
        selection: Selection,
        /// Every dead letter (needed when no sequence or filter is given).
        #[arg(long)]
        all: bool,
        /// Do not ask.
        #[arg(long, short)]
        yes: bool,
    },
}

const DLQ_REPLAY_HELP: &str = "\
A dead letter is published back to webhooks.<source>.<event> with its original payload and a
Nats-Msg-Id of <source>:<id>:redrive:<seq>. The webhook id is unchanged, so idempotency holds:
the group that gave up runs it again (its record was removed when it dead-lettered), groups
that handled it ack the copy as a duplicate. The dead letter is deleted only after the copy's
PubAck (--keep keeps it).

Examples:
  hookline dlq replay 42
  hookline dlq replay --group billing --source stripe --since 2h";

/// `hookline replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The processor group that receives the copies.
    #[arg(long, value_name = "GROUP")]
    pub group: String,
    /// The source whose webhooks are replayed.
    #[arg(long, value_name = "SOURCE")]
    pub source: String,
    /// Only webhooks stored at or after this time: RFC 3339 or an age (`2h`).
    #[arg(long, value_name = "TIME")]
    pub since: String,
    /// Only webhooks stored at or before this time (default: now).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only this event type.
    #[arg(long, value_name = "EVENT")]
    pub event: Option<String>,
    /// Copies published per second, at most (`50` or `50/s`).
    #[arg(long, value_name = "N/s", default_value = "50")]
    pub rate: String,
    /// Remove the group's `done` records first, so already-handled webhooks run again.
    #[arg(long)]
    pub bypass_idempotency: bool,
    /// Only count what would be replayed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hookline trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The webhook id (as ingest answered it) or the whole Nats-Msg-Id `<source>:<id>`.
    pub id: String,
    /// The source (narrows the scan).
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Only look at messages stored at or after this time (RFC 3339 or an age).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hookline streams …`.
#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Create missing streams and change existing ones to match the config's stream section,
    /// after showing each difference and what it deletes (asks unless --yes).
    #[command(after_help = STREAMS_APPLY_HELP)]
    Apply {
        /// Do not ask.
        #[arg(long, short)]
        yes: bool,
        /// Only print the differences and what applying them would do.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
}

const STREAMS_APPLY_HELP: &str = "\
hookline-ingest creates a stream that does not exist; no binary ever changes an existing one (a
difference is logged as a warning and counted in hookline_stream_config_drift). This command is
the one way to change them: it prints each setting that differs from [stream] and what applying
it does (a lower max_age, max_bytes or max_msgs DELETES the stored messages beyond the new limit,
with their number; fewer replicas lower durability), then asks. Storage and retention cannot be
changed in place.

Examples:
  hookline streams apply --dry-run
  HOOKLINE_STREAM_MAX_AGE=30d hookline streams apply --yes";
