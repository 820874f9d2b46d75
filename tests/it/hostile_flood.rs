//! A flood of unsigned and malformed requests (5 s on loopback, 16
//! concurrent senders) does not stop signed traffic sent meanwhile, and does
//! not grow the ingest process's memory past a fixed bound. Throughput is
//! reported, not asserted (the machine is shared); success and memory are.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hookline_tests::NatsServer;
use hookline_tests::ingest::signed_headers;
use hookline_tests::process::{Process, free_port, wait_ready};
use tokio::io::AsyncWriteExt;

const SECRET: &str = "flood-github-secret-7731";
const FLOOD: Duration = Duration::from_secs(5);
const SENDERS: usize = 16;
/// Peak resident memory allowed above the warmed-up baseline.
const RSS_GROWTH_BOUND_KIB: u64 = 48 * 1024;

async fn garbage_sender(
    base: String,
    addr: std::net::SocketAddr,
    kind: usize,
    until: Instant,
    sent: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let body = vec![b'g'; 1024];
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        match kind % 6 {
            0 => {
                // Unsigned.
                client
                    .post(format!("{base}/webhooks/github"))
                    .body(body.clone())
                    .send()
                    .await?;
            }
            1 => {
                // Forged signature, varying delivery ids.
                client
                    .post(format!("{base}/webhooks/github"))
                    .header("x-hub-signature-256", format!("sha256={}", "ab".repeat(32)))
                    .header("x-github-delivery", format!("forged-{n}"))
                    .header("x-github-event", format!("push.{n}"))
                    .body(body.clone())
                    .send()
                    .await?;
            }
            2 => {
                // Unknown sources with ever-new names (must not grow labels).
                client
                    .post(format!("{base}/webhooks/src-{kind}-{n}"))
                    .body(body.clone())
                    .send()
                    .await?;
            }
            3 => {
                // Declared oversize body: refused before reading it.
                client
                    .post(format!("{base}/webhooks/github"))
                    .header("content-length", "99999999")
                    .body(Vec::new())
                    .send()
                    .await
                    .ok(); // the client may object to the mismatch; fine
            }
            4 => {
                // Raw garbage and half heads on fresh connections.
                if let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await {
                    let _ = socket
                        .write_all(b"POST /webhooks/github HTTP/1.1\r\nx-\xff\xfe: \x00\r\n\r\n")
                        .await;
                }
            }
            _ => {
                // Wrong methods and random paths.
                client
                    .get(format!("{base}/webhooks/github/{n}/../../x"))
                    .send()
                    .await?;
            }
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[tokio::test]
async fn unsigned_flood_neither_stops_signed_traffic_nor_grows_memory() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let port = free_port()?;
    let mut ingest = Process::spawn(
        "hookline-ingest",
        &format!(
            "[nats]\nurl = \"{}\"\n[stream]\nmax_bytes = \"256MiB\"\n\
             [ingest]\nlisten = \"127.0.0.1:{port}\"\n\
             [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ env = \"FLOOD_GH_SECRET\" }}]\n",
            nats.url()
        ),
        &[("FLOOD_GH_SECRET", SECRET), ("RUST_LOG", "info")],
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(
        &mut ingest,
        &format!("{base}/readyz"),
        Duration::from_secs(20),
    )
    .await?;

    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let send_signed = |id: String| {
        let body =
            format!("{{\"delivery\":\"{id}\",\"pad\":\"{}\"}}", "p".repeat(900)).into_bytes();
        let headers = signed_headers(&spec, SECRET, &body, &format!("1:{id}"), "push");
        let request = client.post(format!("{base}/webhooks/github"));
        async move {
            let started = Instant::now();
            let status = request.headers(headers?).body(body).send().await?.status();
            anyhow::Ok((status.as_u16(), started.elapsed()))
        }
    };

    // Warm up, then take the baseline.
    for n in 0..100 {
        assert_eq!(send_signed(format!("warm-{n}")).await?.0, 200);
    }
    let baseline = ingest.rss_kib()?;

    let until = Instant::now() + FLOOD;
    let garbage = Arc::new(AtomicU64::new(0));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let flooders: Vec<_> = (0..SENDERS)
        .map(|kind| {
            tokio::spawn(garbage_sender(
                base.clone(),
                addr,
                kind,
                until,
                garbage.clone(),
            ))
        })
        .collect();

    let mut signed = Vec::new();
    let mut peak = baseline;
    let mut n = 0;
    while Instant::now() < until {
        signed.push(send_signed(format!("flood-{n}")).await?);
        n += 1;
        if n % 10 == 0 {
            peak = peak.max(ingest.rss_kib()?);
        }
    }
    for flooder in flooders {
        flooder.await??;
    }
    peak = peak.max(ingest.rss_kib()?);
    // After the flood, signed traffic is still served.
    for n in 0..20 {
        assert_eq!(send_signed(format!("after-{n}")).await?.0, 200);
    }
    let after = ingest.rss_kib()?;

    let failed: Vec<_> = signed.iter().filter(|(status, _)| *status != 200).collect();
    let mut latencies: Vec<Duration> = signed.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "flood: seconds={} garbage_requests={} signed={} signed_failed={} signed_p50_ms={:.1} signed_p99_ms={:.1} \
         rss_baseline_kib={baseline} rss_peak_kib={peak} rss_after_kib={after}",
        FLOOD.as_secs(),
        garbage.load(Ordering::Relaxed),
        signed.len(),
        failed.len(),
        pct(50).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
    );
    assert!(
        signed.len() >= 10,
        "only {} signed requests during the flood",
        signed.len()
    );
    assert!(
        failed.is_empty(),
        "signed requests failed during the flood: {failed:?}"
    );
    assert!(
        peak <= baseline + RSS_GROWTH_BOUND_KIB,
        "RSS grew from {baseline} KiB to {peak} KiB during the flood"
    );

    // The unknown-source flood did not create a label per path.
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        !metrics.contains("src-"),
        "attacker-chosen path became a metric label"
    );
    assert_eq!(ingest.terminate(Duration::from_secs(15)).await?, Some(0));
    Ok(())
}
