//! `hookline`, the operator's CLI for a Hookline pipeline.
//!
//! Every command reads the same configuration as the other binaries
//! ([`settings`]: `--config FILE` or `HOOKLINE_CONFIG`, then
//! `HOOKLINE_<SECTION>_<KEY>` overrides, loaded into ingest's and the
//! processor's own config types), talks to NATS with the configured
//! options, and ends with a documented exit code ([`error`]: 0 ok, 1 failed,
//! 2 usage, 3 not found).
//!
//! | command | module | what |
//! |---|---|---|
//! | `up` | [`up`] | nats-server (unless one answers at `nats.url`), ingest and the processor; Ctrl-C stops all |
//! | `send` | [`send`] | a delivery signed as the provider signs it ([`samples`]), POSTed to ingest |
//! | `status` | [`status`] | streams, groups, dead letters per group, idempotency bucket, cluster health |
//! | `dlq list/show/replay/purge` | [`dlq`] | dead letters by sequence, group, source, event, time |
//! | `replay` | [`replay`] | a source's history re-delivered to one group on `replay.<group>.…` |
//! | `trace` | [`trace`] | a webhook's messages and its state in every group |
//! | `streams apply` | [`streams`] | the one way to change the streams: shows each difference from `[stream]` and what it deletes, then applies |
//! | `console` | [`console`] | the web console and `/api/` over [`webhooks`] and the queries above |
//!
//! Each command computes a typed report ([`report`]) once; its table, its
//! `--json` output and the console all render that value.
//!
//! [`run`] dispatches a parsed [`args::Cli`]; `main.rs` only parses, calls
//! it and turns the result into the exit code.

pub mod args;
pub mod confirm;
pub mod console;
pub mod dlq;
pub mod error;
pub mod jetstream;
pub mod providers;
pub mod replay;
pub mod report;
pub mod samples;
pub mod scan;
pub mod send;
pub mod settings;
pub mod sources;
pub mod status;
pub mod streams;
pub mod table;
pub mod trace;
pub mod up;
pub mod webhooks;
pub mod when;

pub use error::{Error, Result};

use args::{Cli, Command};
use settings::Settings;

/// Runs one command with the process environment `env`.
///
/// # Errors
/// The command's [`Error`], whose [`exit_code`](Error::exit_code) the process ends with.
pub async fn run(cli: Cli, env: &[(String, String)]) -> Result<()> {
    // The catalogue needs no configuration.
    if let Command::Providers(args) = &cli.command {
        return providers::run(args);
    }
    let settings = Settings::load(cli.config.as_deref(), env)?;
    match &cli.command {
        Command::Up(args) => up::run(&settings, args).await,
        Command::Send(args) => send::run(&settings, args).await,
        Command::Status(args) => status::run(&settings, args).await,
        Command::Dlq(command) => dlq::run(&settings, command).await,
        Command::Replay(args) => replay::run(&settings, args).await,
        Command::Trace(args) => trace::run(&settings, args).await,
        Command::Providers(args) => providers::run(args),
        Command::Sources(command) => sources::run(&settings, command).await,
        Command::Streams(command) => streams::run(&settings, command).await,
        Command::Console(args) => console::run(&settings, args).await,
    }
}
