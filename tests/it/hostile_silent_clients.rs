//! Strangers cannot starve ingest (issue 12, finding 3): clients that open
//! a webhook request and go silent (a declared body just under `max_body`,
//! a chunked body with one byte, a body sent but for its last byte) hold no body budget
//! for long, whatever their number, and signed traffic beside them is
//! answered 200 with a sane latency. Before the fix, eight such clients
//! took the whole 8 MiB budget and every signed request got 503.
//!
//! Against the real `hookline-ingest` binary with its default limits
//! (`max_body` 888 KiB, `max_in_flight_bytes` 8 MiB); `publish_timeout` is
//! 1 s so a starved request fails fast.

use std::time::{Duration, Instant};

use hookline_tests::NatsServer;
use hookline_tests::ingest::signed_headers;
use hookline_tests::process::{Process, free_port, wait_ready};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SECRET: &str = "silent-github-secret-4410";
/// How long signed traffic runs beside the silent clients.
const TRAFFIC: Duration = Duration::from_secs(6);
/// The slowest a signed request may be answered while strangers press on
/// the budget: a body arriving for over a second yields to newcomers.
const SANE_LATENCY: Duration = Duration::from_millis(2500);
/// The body size silent clients declare: just under the default `max_body`
/// (888 KiB, what fits nats-server's 1 MiB `max_payload`), so that it is
/// read, not refused with 413 at once.
const DECLARED: usize = 880 * 1024;

/// How a silent client misbehaves.
#[derive(Debug, Clone, Copy)]
enum Silence {
    /// A head declaring an 880 KiB body, then nothing.
    DeclaredBody,
    /// A chunked head and one byte, then nothing.
    ChunkedByte,
    /// A head declaring 880 KiB, all of it but the last byte, then nothing.
    AllButLastByte,
}

struct Ingest {
    process: Process,
    base: String,
    addr: std::net::SocketAddr,
}

async fn start_ingest(nats: &NatsServer, extra: &str) -> anyhow::Result<Ingest> {
    let port = free_port()?;
    let mut process = Process::spawn(
        "hookline-ingest",
        &format!(
            "[nats]\nurl = \"{}\"\n[stream]\nmax_bytes = \"256MiB\"\n\
             [ingest]\nlisten = \"127.0.0.1:{port}\"\npublish_timeout = \"1s\"\n{extra}\n\
             [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ env = \"SILENT_GH_SECRET\" }}]\n",
            nats.url()
        ),
        &[("SILENT_GH_SECRET", SECRET)],
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(
        &mut process,
        &format!("{base}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    Ok(Ingest {
        process,
        base,
        addr: format!("127.0.0.1:{port}").parse()?,
    })
}

/// Opens one silent client; the returned task keeps its socket open.
async fn silent_client(
    addr: std::net::SocketAddr,
    silence: Silence,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut socket = TcpStream::connect(addr).await?;
    let head = match silence {
        Silence::DeclaredBody | Silence::AllButLastByte => format!(
            "POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: {DECLARED}\r\n\
             x-hub-signature-256: sha256=00\r\n\r\n"
        ),
        Silence::ChunkedByte => "POST /webhooks/github HTTP/1.1\r\nhost: x\r\n\
             transfer-encoding: chunked\r\nx-hub-signature-256: sha256=00\r\n\r\n1\r\nx\r\n"
            .to_owned(),
    };
    socket.write_all(head.as_bytes()).await?;
    Ok(tokio::spawn(async move {
        if let Silence::AllButLastByte = silence {
            // May block while ingest makes it wait for budget: fine.
            let _ = socket.write_all(&vec![b'x'; DECLARED - 1]).await;
        }
        // Silent from here on; hold the socket until the test ends.
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            let mut sink = [0u8; 1024];
            loop {
                match tokio::io::AsyncReadExt::read(&mut socket, &mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }))
}

/// Signed GitHub webhooks from two sequential senders for [`TRAFFIC`];
/// returns each one's status and latency.
async fn signed_traffic(base: &str, label: &str) -> anyhow::Result<Vec<(u16, Duration)>> {
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let until = Instant::now() + TRAFFIC;
    let sender = |lane: usize| {
        let (client, spec, url) = (
            client.clone(),
            spec.clone(),
            format!("{base}/webhooks/github"),
        );
        let label = label.to_owned();
        async move {
            let mut results = Vec::new();
            let mut n = 0;
            while Instant::now() < until {
                let body = format!(
                    "{{\"lane\":{lane},\"n\":{n},\"pad\":\"{}\"}}",
                    "p".repeat(900)
                )
                .into_bytes();
                let headers = signed_headers(
                    &spec,
                    SECRET,
                    &body,
                    &format!("1:{label}-{lane}-{n}"),
                    "push",
                )?;
                let started = Instant::now();
                let status = client
                    .post(&url)
                    .headers(headers)
                    .body(body)
                    .send()
                    .await?
                    .status();
                results.push((status.as_u16(), started.elapsed()));
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(results)
        }
    };
    let (a, b) = tokio::join!(sender(0), sender(1));
    let mut results = a?;
    results.extend(b?);
    Ok(results)
}

/// Opens `count` silent clients of each kind in `kinds`, runs signed
/// traffic beside them, and checks it was answered normally.
async fn signed_traffic_survives(
    ingest: &Ingest,
    label: &str,
    count: usize,
    kinds: &[Silence],
) -> anyhow::Result<()> {
    let mut holders = Vec::new();
    for n in 0..count {
        holders.push(silent_client(ingest.addr, kinds[n % kinds.len()]).await?);
    }
    let results = signed_traffic(&ingest.base, label).await?;
    // The silent clients were read, not refused at once (a declared length
    // over `max_body` would make this test vacuous).
    let metrics = reqwest::get(format!("{}/metrics", ingest.base))
        .await?
        .text()
        .await?;
    assert!(
        !metrics.contains("reason=\"body_too_large\""),
        "silent clients were refused with 413"
    );
    for holder in holders {
        holder.abort();
    }
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let failed: Vec<u16> = results
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s != 200)
        .collect();
    println!(
        "silent_clients: scenario={label} silent={count} signed={} signed_failed={} \
         p50_ms={:.1} p99_ms={:.1} max_ms={:.1} rss_kib={}",
        results.len(),
        failed.len(),
        pct(50).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        pct(100).as_secs_f64() * 1e3,
        ingest.process.rss_kib()?,
    );
    assert!(
        failed.is_empty(),
        "{label}: signed requests failed beside {count} silent clients: {failed:?}"
    );
    assert!(
        results.len() >= 20,
        "only {} signed requests",
        results.len()
    );
    assert!(
        pct(99) <= SANE_LATENCY,
        "{label}: signed p99 {:?} beside {count} silent clients",
        pct(99)
    );
    Ok(())
}

#[tokio::test]
async fn eight_eighty_and_many_silent_clients_leave_signed_traffic_answered() -> anyhow::Result<()>
{
    let nats = NatsServer::start().await?;
    let mut ingest = start_ingest(&nats, "").await?;
    // The report's attack: eight declared-1 MiB heads (and chunked ones).
    signed_traffic_survives(
        &ingest,
        "eight",
        8,
        &[Silence::DeclaredBody, Silence::ChunkedByte],
    )
    .await?;
    // Eight bodies sent but for their last byte: 8 MiB really arrives.
    signed_traffic_survives(&ingest, "eight-full", 8, &[Silence::AllButLastByte]).await?;
    signed_traffic_survives(
        &ingest,
        "eighty",
        80,
        &[
            Silence::DeclaredBody,
            Silence::ChunkedByte,
            Silence::AllButLastByte,
        ],
    )
    .await?;
    // Many: below the default connection cap (1024).
    signed_traffic_survives(
        &ingest,
        "many",
        800,
        &[Silence::DeclaredBody, Silence::ChunkedByte],
    )
    .await?;
    assert_eq!(
        ingest.process.terminate(Duration::from_secs(15)).await?,
        Some(0)
    );
    Ok(())
}

/// A metric's value in Prometheus text, by its full series name.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Polls `/metrics` until `series` reads `value` (10 s at most).
async fn wait_for_metric(
    client: &reqwest::Client,
    url: &str,
    series: &str,
    value: f64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = client.get(url).send().await?.text().await?;
        let now = metric(&text, series);
        if now == Some(value) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{series} is {now:?}, not {value}, after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_silent_bodies_are_cut_by_the_rate()
-> anyhow::Result<()> {
    const CAP: usize = 20;
    let nats = NatsServer::start().await?;
    let admin_port = free_port()?;
    let mut ingest = start_ingest(
        &nats,
        &format!("max_connections = {CAP}\nmetrics_listen = \"127.0.0.1:{admin_port}\""),
    )
    .await?;
    let metrics_url = format!("http://127.0.0.1:{admin_port}/metrics");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    let open = "hookline_ingest_open_connections{listener=\"public\"}";
    // Wait for the readiness probe's connection to close: it holds a slot.
    wait_for_metric(&client, &metrics_url, open, 0.0).await?;
    // The cap's worth of silent bodies…
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..CAP {
        let mut socket = TcpStream::connect(ingest.addr).await?;
        socket
            .write_all(
                format!(
                    "POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: {DECLARED}\r\n\
                     x-hub-signature-256: sha256=00\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        silent.push(socket);
    }
    wait_for_metric(&client, &metrics_url, open, CAP as f64).await?;
    // …then ten more connections: answered 503 at once, never read.
    for _ in 0..10 {
        let responses = hookline_tests::raw_http::exchange(
            ingest.addr,
            b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
            Duration::from_secs(5),
        )
        .await?;
        assert_eq!(responses.len(), 1, "{responses:?}");
        assert_eq!(responses[0].status, 503);
        assert!(responses[0].header("retry-after").is_some());
        assert_eq!(responses[0].json().expect("JSON")["error"], "unavailable");
    }
    let text = client.get(&metrics_url).send().await?.text().await?;
    assert_eq!(
        metric(
            &text,
            "hookline_ingest_connections_refused_total{listener=\"public\"}"
        ),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "hookline_ingest_open_connections{listener=\"public\"}"
        ),
        Some(CAP as f64),
        "{text}"
    );

    // The silent bodies fall below `min_body_rate` (1 KiB/s over 5 s): 408
    // after one window, not after `body_timeout` (30 s).
    for socket in &mut silent {
        let rest = Duration::from_secs(9).saturating_sub(started.elapsed());
        let bytes = hookline_tests::raw_http::read_until_closed(socket, rest).await?;
        let responses = hookline_tests::raw_http::parse_responses(&bytes)?;
        assert_eq!(
            responses.first().map(|r| r.status),
            Some(408),
            "{responses:?}"
        );
        assert_eq!(responses[0].json().expect("JSON")["error"], "body_too_slow");
    }
    let cut_after = started.elapsed();
    assert!(
        cut_after >= Duration::from_secs(4),
        "silent bodies cut after {cut_after:?}, before one 5 s window"
    );

    // With the slots free again, signed traffic is served.
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let body = b"{\"after\":true}".to_vec();
    let headers = signed_headers(&spec, SECRET, &body, "1:after-cap", "push")?;
    let response = client
        .post(format!("{}/webhooks/github", ingest.base))
        .headers(headers)
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let text = client.get(&metrics_url).send().await?.text().await?;
    assert!(
        metric(
            &text,
            "hookline_ingest_open_connections{listener=\"public\"}"
        )
        .is_some_and(|open| open <= 1.0),
        "{text}"
    );
    assert_eq!(
        ingest.process.terminate(Duration::from_secs(15)).await?,
        Some(0)
    );
    Ok(())
}
