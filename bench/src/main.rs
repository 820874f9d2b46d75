//! `hookline-bench`: measures Hookline against bare baselines built in this
//! binary from the same dependencies, and reports every figure as a ratio
//! to a baseline measured in the same run (absolute numbers drift on shared
//! machines; ratios from alternating runs do not, much).
//!
//! - **ingest**: a nats-server, the bare baseline (`baseline`: verify GitHub
//!   HMAC → publish with `Nats-Msg-Id` → await PubAck → 200) and the real
//!   `hookline-ingest`, driven in alternation by [`loadgen`] at each
//!   connection count and body size; throughput, p50/p99/p99.9, peak RSS.
//! - **processor**: a backlog drained by raw pull + ack (`raw-consume`), by
//!   one `hookline-processor` (file handler, idempotency on) and by three.
//! - both with the server's default sync and with `sync_interval: always`.
//!
//! Results go to `<out>/latest.json` and `<out>/latest.svg`, and a table to
//! stdout. `--smoke` runs a few seconds for CI and never fails on timing.

mod baseline;
mod cli;
mod console_bench;
mod ingest_bench;
mod loadgen;
mod nats_server;
mod process;
mod processor_bench;
mod report;

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;

use crate::cli::{Options, Part, USAGE};
use crate::report::{Machine, Report};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        // The baselines run on the runtime shape of the binaries they stand
        // beside (`--worker-threads`, as `worker_threads` in their config).
        Some("baseline") => {
            baseline_runtime(&args).and_then(|(rt, _)| rt.block_on(baseline::serve(&args[1..])))
        }
        Some("raw-consume") => baseline_runtime(&args).and_then(|(rt, threads)| {
            let args = args[1..].to_vec();
            if threads == 1 {
                return rt.block_on(baseline::raw_consume(&args));
            }
            // On a worker thread, as hookline-processor runs its instance.
            rt.block_on(async move {
                tokio::spawn(async move { baseline::raw_consume(&args).await }).await?
            })
        }),
        Some("load") => runtime().and_then(|rt| rt.block_on(load(&args[1..]))),
        Some("console") => runtime().and_then(|rt| rt.block_on(console_bench::run(&args[1..]))),
        Some("render") => render(&args[1..]),
        _ => match Options::parse(&args) {
            Ok(None) => {
                println!("{USAGE}");
                Ok(())
            }
            Ok(Some(options)) => runtime().and_then(|rt| rt.block_on(bench(options, &args))),
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "hookline-bench: {}",
                hookline_platform::error::chain(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

/// A baseline's runtime: `--worker-threads N` (default 1), built as the
/// binaries build theirs.
fn baseline_runtime(args: &[String]) -> anyhow::Result<(tokio::runtime::Runtime, usize)> {
    let threads = match args.iter().position(|a| a == "--worker-threads") {
        Some(i) => args
            .get(i + 1)
            .context("--worker-threads needs a number")?
            .parse()
            .context("--worker-threads needs a number")?,
        None => 1,
    };
    let runtime =
        hookline_platform::runtime::build(threads).context("cannot start the async runtime")?;
    Ok((runtime, threads))
}

/// The bench itself and its load generator: one worker per core.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn bench(options: Options, args: &[String]) -> anyhow::Result<()> {
    let nats_binary = hookline_tests::nats_server_binary()?;
    let nats_version = std::process::Command::new(&nats_binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let load_before = loadavg();
    eprintln!(
        "hookline-bench: {} · load {load_before} · {} rounds",
        nats_version, options.rounds
    );
    let mut report = Report {
        command: std::iter::once("hookline-bench".to_owned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        finished_at: 0,
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            worker_threads: options.worker_threads,
            processor_concurrency: Some(options.processor_concurrency),
            load_before,
            load_after: String::new(),
            nats_server: nats_version,
        },
        rounds: options.rounds,
        seconds_per_run: options.duration.as_secs_f64(),
        ingest: Vec::new(),
        processor: Vec::new(),
        targets: Vec::new(),
    };
    for &sync in &options.syncs {
        if options.part != Part::Processor {
            report
                .ingest
                .extend(ingest_bench::run(&options, sync).await?);
        }
        if options.part != Part::Ingest {
            report
                .processor
                .push(processor_bench::run(&options, sync).await?);
        }
    }
    report.machine.load_after = loadavg();
    report.finished_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if !options.smoke {
        // A smoke run is too short to judge a target on.
        report.judge();
    }
    print!("{}", report.table());
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let json = options.out.join("latest.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    let svg = options.out.join("latest.svg");
    std::fs::write(&svg, report.svg()).with_context(|| format!("writing {}", svg.display()))?;
    println!("wrote {} and {}", json.display(), svg.display());
    if options.smoke {
        println!("(smoke run: figures are indicative only; timing never fails it)");
    }
    Ok(())
}

/// `load --addr HOST:PORT --secret S [--connections N] [--size BYTES]
/// [--duration SECS]`: drives one running ingest (`github` source with
/// secret S), e.g. to profile it; prints throughput and latency.
async fn load(args: &[String]) -> anyhow::Result<()> {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let addr = value("--addr").context("missing --addr")?.parse()?;
    let secret = value("--secret").context("missing --secret")?;
    let size = value("--size").unwrap_or("1024").parse()?;
    let body = loadgen::body(size);
    let outcome = loadgen::run(std::sync::Arc::new(loadgen::Workload {
        addr,
        signature: loadgen::github_signature(secret.as_bytes(), &body)?,
        body,
        tag: format!("load-{}", std::process::id()),
        connections: value("--connections").unwrap_or("64").parse()?,
        warmup: std::time::Duration::from_millis(500),
        duration: std::time::Duration::try_from_secs_f64(
            value("--duration").unwrap_or("10").parse()?,
        )?,
    }))
    .await?;
    let figures = report::HttpFigures::from_outcome(&outcome, 0, 0);
    println!(
        "{:.0} req/s  p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  errors {}",
        figures.throughput, figures.p50_ms, figures.p99_ms, figures.p999_ms, figures.errors
    );
    Ok(())
}

/// `render FILE.json [OUT.svg]`: prints the table of a saved run and
/// redraws its chart (next to the JSON unless OUT.svg is given).
fn render(args: &[String]) -> anyhow::Result<()> {
    let json = std::path::PathBuf::from(args.first().context("render needs a JSON file")?);
    let text =
        std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
    let report: Report = serde_json::from_str(&text)?;
    print!("{}", report.table());
    let svg = args
        .get(1)
        .map_or_else(|| json.with_extension("svg"), std::path::PathBuf::from);
    std::fs::write(&svg, report.svg()).with_context(|| format!("writing {}", svg.display()))?;
    println!("wrote {}", svg.display());
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
