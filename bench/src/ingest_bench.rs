//! The ingest part: one nats-server, the bare baseline and the real
//! `hookline-ingest` (release build) as processes side by side, driven in
//! alternation with the same signed requests, setting by setting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream;

use crate::baseline::SECRET_ENV;
use crate::cli::Options;
use crate::loadgen::{self, Workload};
use crate::nats_server::{self, Sync};
use crate::process::{Process, RssSampler, sibling_binary};
use crate::report::{HttpFigures, IngestSetting, RoundPair, median_http};

const SECRET: &str = "hookline-bench-github-secret";

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Baseline,
    Ingest,
}

struct Servers {
    baseline: (Process, SocketAddr),
    ingest: (Process, SocketAddr),
}

impl Servers {
    fn of(&mut self, target: Target) -> (&mut Process, SocketAddr) {
        match target {
            Target::Baseline => (&mut self.baseline.0, self.baseline.1),
            Target::Ingest => (&mut self.ingest.0, self.ingest.1),
        }
    }
}

/// Runs every (connections, body size) setting for one sync mode.
pub(crate) async fn run(options: &Options, sync: Sync) -> anyhow::Result<Vec<IngestSetting>> {
    let server = nats_server::start(sync).await?;
    let work = tempfile::Builder::new()
        .prefix("hookline-bench-ingest-")
        .tempdir()?;
    let ingest_addr = free_addr()?;
    let config = work.path().join("hookline.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = \"{url}\"\n\n[stream]\nmax_bytes = \"24GiB\"\nduplicate_window = \"2m\"\n\n\
             [ingest]\nlisten = \"{ingest_addr}\"\nworker_threads = {threads}\n\n[[sources]]\nname = \"github\"\nprovider = \"github\"\n\
             secrets = [{{ env = \"{SECRET_ENV}\" }}]\n",
            url = server.url(),
            threads = options.worker_threads,
        ),
    )?;
    let env = [(SECRET_ENV, SECRET), ("RUST_LOG", "info")];
    let mut ingest = Process::spawn(
        &sibling_binary("hookline-ingest")?,
        &["--config".to_owned(), config.display().to_string()],
        &env,
        work.path(),
        "hookline-ingest",
    )?;
    wait_ready(&mut ingest, ingest_addr, "/readyz").await?;
    // The stream exists now (ingest declared it); the baseline publishes into it too.
    let baseline_addr = free_addr()?;
    let mut baseline = Process::spawn(
        &std::env::current_exe()?,
        &[
            "baseline".to_owned(),
            "--nats".to_owned(),
            server.url(),
            "--listen".to_owned(),
            baseline_addr.to_string(),
            "--worker-threads".to_owned(),
            options.worker_threads.to_string(),
        ],
        &env,
        work.path(),
        "baseline",
    )?;
    wait_ready(&mut baseline, baseline_addr, "/healthz").await?;
    let mut servers = Servers {
        baseline: (baseline, baseline_addr),
        ingest: (ingest, ingest_addr),
    };
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let stream = js.get_stream("WEBHOOKS").await?;

    let mut settings = Vec::new();
    for &body_size in &options.sizes {
        let body = loadgen::body(body_size);
        let signature = loadgen::github_signature(SECRET.as_bytes(), &body)?;
        for &connections in &options.connections {
            let mut rounds = Vec::new();
            for round in 0..options.rounds {
                let order = if round % 2 == 0 {
                    [Target::Baseline, Target::Ingest]
                } else {
                    [Target::Ingest, Target::Baseline]
                };
                let mut pair = RoundPair::default();
                for target in order {
                    stream.purge().await.context("purging WEBHOOKS")?;
                    let (process, addr) = servers.of(target);
                    process.check_alive()?;
                    let sampler = RssSampler::start(vec![process.pid()]);
                    let pid = process.pid();
                    let outcome = loadgen::run_measuring_cpu(
                        pid,
                        Arc::new(Workload {
                            addr,
                            body: body.clone(),
                            signature: signature.clone(),
                            tag: format!(
                                "{}-{}-{body_size}-{connections}-{round}-{target:?}",
                                sync.label(),
                                std::process::id()
                            ),
                            connections,
                            warmup: options.warmup,
                            duration: options.duration,
                        }),
                    )
                    .await?;
                    let rss = sampler.stop().await;
                    process.check_alive()?;
                    let (outcome, cpu) = outcome;
                    let figures = HttpFigures::from_outcome(&outcome, rss, cpu);
                    eprintln!(
                        "  ingest  sync={:<7} conns={connections:<4} body={:<7} round={round} {:<8} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  cpu {:>5.0} µs/req  errors {}  rss {:.1} MiB",
                        sync.label(),
                        human_size(body_size),
                        format!("{target:?}").to_lowercase(),
                        figures.throughput,
                        figures.p50_ms,
                        figures.p99_ms,
                        figures.cpu_us_per_request,
                        figures.errors,
                        figures.rss_peak_mib,
                    );
                    match target {
                        Target::Baseline => pair.baseline = figures,
                        Target::Ingest => pair.ingest = figures,
                    }
                }
                rounds.push(pair);
            }
            settings.push(IngestSetting::new(
                sync,
                connections,
                body_size,
                median_http(&rounds.iter().map(|r| &r.baseline).collect::<Vec<_>>()),
                median_http(&rounds.iter().map(|r| &r.ingest).collect::<Vec<_>>()),
                rounds,
            ));
        }
    }
    Ok(settings)
}

pub(crate) fn human_size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{}KiB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

async fn wait_ready(process: &mut Process, addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = loadgen::get(addr, path).await;
        if let Ok(200) = answer {
            return Ok(());
        }
        process.check_alive()?;
        if tokio::time::Instant::now() > deadline {
            bail!("{addr}{path} not ready within 20 s: {answer:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
