//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::nats_server::Sync;

pub(crate) const USAGE: &str = "\
hookline-bench: Hookline against bare baselines, as ratios from one run

Usage: hookline-bench [OPTIONS]      (scripts/bench builds and runs it)

  --smoke               a few seconds in total: one tiny round per kind; never
                        fails on timing (for CI)
  --rounds N            alternating rounds per setting (default 3)
  --duration SECS       measured seconds per HTTP run (default 4)
  --warmup SECS         unmeasured seconds before each HTTP run (default 1)
  --connections LIST    e.g. 64,256 (default)
  --sizes LIST          body bytes, e.g. 1024,16384,262144 (default)
  --sync LIST           default,always (default both)
  --only PART           ingest | processor (default both)
  --backlog N           webhooks drained per processor run (default 50000)
  --backlog-always N    the same with sync_interval: always (default 10000)
  --processor-concurrency N   [processor] concurrency (default 256: the raw
                        consumer's pull batch, so both keep as many in flight)
  --worker-threads N    runtime threads of ingest, processors and both
                        baselines alike (default 1, the binaries' default;
                        0 = one per core)
  --out DIR             where latest.json and latest.svg go
                        (default bench/results; with --smoke target/bench-smoke)

Also: hookline-bench render FILE.json [OUT.svg] prints a saved run's table
and redraws its chart; hookline-bench load --addr HOST:PORT --secret S
[--connections N] [--size BYTES] [--duration SECS] drives a running ingest;
hookline-bench console [--webhooks N] times the console's pages on a stream
of N webhooks (default 1,000,000).

Needs release builds of hookline-ingest and hookline-processor next to this
binary, and nats-server (NATS_SERVER_BIN, .tools/, PATH, or installed
with scripts/install-nats-server). Loopback only.";

/// Which parts run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Both,
    Ingest,
    Processor,
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) smoke: bool,
    pub(crate) rounds: usize,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) connections: Vec<usize>,
    pub(crate) sizes: Vec<usize>,
    pub(crate) syncs: Vec<Sync>,
    pub(crate) part: Part,
    pub(crate) backlog: usize,
    pub(crate) backlog_always: usize,
    pub(crate) processor_concurrency: usize,
    pub(crate) worker_threads: usize,
    pub(crate) out: PathBuf,
}

impl Options {
    /// Parses the arguments; `Ok(None)` for `--help`.
    pub(crate) fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
        let smoke = args.iter().any(|a| a == "--smoke");
        let mut options = if smoke {
            Self {
                smoke,
                rounds: 1,
                duration: Duration::from_millis(700),
                warmup: Duration::from_millis(200),
                connections: vec![64],
                sizes: vec![1024],
                syncs: vec![Sync::Default],
                part: Part::Both,
                backlog: 2000,
                backlog_always: 500,
                processor_concurrency: crate::processor_bench::RAW_BATCH,
                worker_threads: 1,
                out: PathBuf::from("target/bench-smoke"),
            }
        } else {
            Self {
                smoke,
                rounds: 3,
                duration: Duration::from_secs(4),
                warmup: Duration::from_secs(1),
                connections: vec![64, 256],
                sizes: vec![1024, 16 * 1024, 256 * 1024],
                syncs: vec![Sync::Default, Sync::Always],
                part: Part::Both,
                backlog: 50_000,
                backlog_always: 10_000,
                processor_concurrency: crate::processor_bench::RAW_BATCH,
                worker_threads: 1,
                out: PathBuf::from("bench/results"),
            }
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let mut value = || iter.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--smoke" => {}
                "--rounds" => options.rounds = value()?.parse()?,
                "--duration" => options.duration = seconds(value()?)?,
                "--warmup" => options.warmup = seconds(value()?)?,
                "--connections" => options.connections = list(value()?)?,
                "--sizes" => options.sizes = list(value()?)?,
                "--sync" => {
                    options.syncs = value()?
                        .split(',')
                        .map(|s| match s.trim() {
                            "default" => Ok(Sync::Default),
                            "always" => Ok(Sync::Always),
                            other => bail!("unknown sync mode {other:?}"),
                        })
                        .collect::<anyhow::Result<_>>()?;
                }
                "--only" => {
                    options.part = match value()?.as_str() {
                        "ingest" => Part::Ingest,
                        "processor" => Part::Processor,
                        other => bail!("unknown part {other:?}"),
                    };
                }
                "--backlog" => options.backlog = value()?.parse()?,
                "--backlog-always" => options.backlog_always = value()?.parse()?,
                "--processor-concurrency" => {
                    options.processor_concurrency = value()?.parse()?;
                }
                "--worker-threads" => options.worker_threads = value()?.parse()?,
                "--out" => options.out = PathBuf::from(value()?),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if options.rounds == 0 || options.connections.is_empty() || options.sizes.is_empty() {
            bail!("rounds, connections and sizes must not be empty");
        }
        Ok(Some(options))
    }
}

fn seconds(text: &str) -> anyhow::Result<Duration> {
    Ok(Duration::try_from_secs_f64(text.parse()?)?)
}

fn list(text: &str) -> anyhow::Result<Vec<usize>> {
    text.split(',')
        .map(|v| {
            v.trim()
                .parse()
                .with_context(|| format!("bad number {v:?}"))
        })
        .collect()
}
