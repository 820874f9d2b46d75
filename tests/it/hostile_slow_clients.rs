//! Slow clients (slowloris): a client that dribbles its request head is
//! disconnected within `ingest.header_timeout`; one that dribbles its body
//! gets 408 within `ingest.body_timeout`; an idle keep-alive connection is
//! closed; and signed traffic on other connections is served meanwhile.

use std::time::{Duration, Instant};

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};
use hookline_tests::raw_http::{parse_responses, read_until_closed};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SECRET: &str = "slow-github-secret";
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// Scheduling slack on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

fn config() -> String {
    format!(
        "[ingest]\nheader_timeout = \"{}ms\"\nbody_timeout = \"{}ms\"\n\
         [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ value = \"{SECRET}\" }}]\n",
        HEADER_TIMEOUT.as_millis(),
        BODY_TIMEOUT.as_millis()
    )
}

/// Sends `count` signed webhooks one after another; returns their statuses.
async fn signed_traffic(
    url: String,
    prefix: &'static str,
    count: usize,
) -> anyhow::Result<Vec<u16>> {
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut statuses = Vec::with_capacity(count);
    for n in 0..count {
        let body = format!("{{\"n\":{n}}}").into_bytes();
        let headers = signed_headers(&spec, SECRET, &body, &format!("1:{prefix}-{n}"), "push")?;
        let response = client.post(&url).headers(headers).body(body).send().await?;
        statuses.push(response.status().as_u16());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(statuses)
}

/// Writes `head` first, then one `drip` every `every` until the server
/// closes the connection or `give_up` passes; returns the elapsed time and
/// whatever the server sent.
async fn dribble(
    socket: &mut TcpStream,
    drip: &[u8],
    every: Duration,
    give_up: Duration,
) -> anyhow::Result<(Duration, Vec<u8>, bool)> {
    let started = Instant::now();
    let mut received = Vec::new();
    while started.elapsed() < give_up {
        if socket.write_all(drip).await.is_err() {
            return Ok((started.elapsed(), received, true));
        }
        let chunk = read_until_closed(socket, every).await?;
        let closed = chunk.is_empty() && !socket_is_open(socket).await;
        received.extend_from_slice(&chunk);
        if closed || !received.is_empty() {
            // The server answered or hung up: read what is left.
            received.extend(read_until_closed(socket, Duration::from_millis(500)).await?);
            return Ok((started.elapsed(), received, true));
        }
    }
    Ok((started.elapsed(), received, false))
}

/// Whether the peer has not closed: a zero-byte read means it has.
async fn socket_is_open(socket: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    match socket.try_read(&mut probe) {
        Ok(0) => false,
        Ok(_) => true,
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => true,
        Err(_) => false,
    }
}

#[tokio::test]
async fn header_dribblers_are_cut_off_while_others_are_served() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), &config())?).await?;

    // 200 connections that each send a partial head and go quiet, plus one
    // that keeps sending a header line every 200 ms, never finishing.
    let mut idle = Vec::new();
    for _ in 0..200 {
        let mut socket = TcpStream::connect(ingest.addr).await?;
        socket
            .write_all(b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\n")
            .await?;
        idle.push(socket);
    }
    let traffic = tokio::spawn(signed_traffic(ingest.webhook_url("github"), "during", 40));
    let mut dribbler = TcpStream::connect(ingest.addr).await?;
    dribbler
        .write_all(b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\n")
        .await?;
    let (elapsed, received, closed) = dribble(
        &mut dribbler,
        b"x-slow: 1\r\n",
        Duration::from_millis(200),
        Duration::from_secs(15),
    )
    .await?;
    assert!(
        closed,
        "a header dribbler was still connected after {elapsed:?}"
    );
    assert!(
        elapsed <= HEADER_TIMEOUT + SLACK,
        "header dribbler cut off after {elapsed:?}, bound {HEADER_TIMEOUT:?}"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(
        !text.contains(" 200 "),
        "a half-sent request was answered 200: {text}"
    );

    // The quiet ones were cut off too.
    let deadline = Instant::now() + HEADER_TIMEOUT + SLACK;
    for socket in &mut idle {
        let rest = deadline.saturating_duration_since(Instant::now());
        let bytes = read_until_closed(socket, rest + Duration::from_millis(100)).await?;
        assert!(
            !socket_is_open(socket).await,
            "an idle half-open request survived the header timeout"
        );
        assert!(!String::from_utf8_lossy(&bytes).contains(" 200 "));
    }

    let statuses = traffic.await??;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "signed traffic failed during the slowloris: {statuses:?}"
    );
    ingest.stop().await
}

#[tokio::test]
async fn body_dribblers_get_408_and_idle_connections_close() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), &config())?).await?;
    let traffic = tokio::spawn(signed_traffic(ingest.webhook_url("github"), "body", 40));

    // A complete head announcing 1000 bytes, then one byte every 100 ms.
    let mut socket = TcpStream::connect(ingest.addr).await?;
    socket
        .write_all(
            b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\
              x-hub-signature-256: sha256=00\r\n\r\n",
        )
        .await?;
    let (elapsed, received, closed) = dribble(
        &mut socket,
        b"x",
        Duration::from_millis(100),
        Duration::from_secs(15),
    )
    .await?;
    assert!(closed, "no answer to a body dribbler after {elapsed:?}");
    assert!(
        elapsed <= BODY_TIMEOUT + SLACK,
        "body dribbler answered after {elapsed:?}, bound {BODY_TIMEOUT:?}"
    );
    let responses = parse_responses(&received)?;
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert_eq!(responses[0].status, 408);
    assert_eq!(
        responses[0].json().expect("JSON error body")["error"],
        "body_timeout"
    );

    // Same with chunked encoding.
    let mut socket = TcpStream::connect(ingest.addr).await?;
    socket
        .write_all(
            b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await?;
    let (elapsed, received, closed) = dribble(
        &mut socket,
        b"1\r\nx\r\n",
        Duration::from_millis(100),
        Duration::from_secs(15),
    )
    .await?;
    assert!(
        closed && elapsed <= BODY_TIMEOUT + SLACK,
        "chunked dribbler: {elapsed:?}"
    );
    assert_eq!(parse_responses(&received)?[0].status, 408);

    // A keep-alive connection that finished a request and then idles is
    // closed after the header timeout (it holds no resources for long).
    let mut socket = TcpStream::connect(ingest.addr).await?;
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await?;
    let started = Instant::now();
    let received = read_until_closed(&mut socket, Duration::from_secs(15)).await?;
    let elapsed = started.elapsed();
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"));
    assert!(
        elapsed <= HEADER_TIMEOUT + SLACK,
        "idle keep-alive connection kept for {elapsed:?}"
    );

    let statuses = traffic.await??;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    ingest.stop().await
}
