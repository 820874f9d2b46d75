//! The HTTP load generator: a fixed number of keep-alive HTTP/1.1
//! connections, each sending one GitHub-signed POST at a time (closed loop)
//! with a unique `X-GitHub-Delivery` (GitHub does not sign that header, so
//! one body and one signature per size serve every request). Latency goes
//! into an HDR histogram per connection (µs), merged at the end; only
//! requests that start after the warm-up and finish before the end count.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Bodies up to this size are sent in the same write as the head.
const COALESCE_LIMIT: usize = 32 * 1024;
/// Highest latency the histogram tracks (µs).
const MAX_LATENCY_US: u64 = 120_000_000;

/// What to send, to whom, for how long.
pub(crate) struct Workload {
    pub(crate) addr: SocketAddr,
    pub(crate) body: Bytes,
    pub(crate) signature: String,
    /// Makes delivery ids unique across runs.
    pub(crate) tag: String,
    pub(crate) connections: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
}

/// One measurement.
pub(crate) struct Outcome {
    /// 200 answers counted in the window.
    pub(crate) ok: u64,
    /// Other answers and broken connections in the window.
    pub(crate) errors: u64,
    pub(crate) window: Duration,
    /// Latency of the counted 200s, µs.
    pub(crate) latency: Histogram<u64>,
}

/// A JSON body of exactly `size` bytes (a GitHub push payload, padded).
pub(crate) fn body(size: usize) -> Bytes {
    let head = r#"{"ref":"refs/heads/main","repository":{"full_name":"hookline/bench"},"pad":""#;
    let tail = r#""}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut text = String::with_capacity(size);
    text.push_str(head);
    text.extend(std::iter::repeat_n('x', pad));
    text.push_str(tail);
    Bytes::from(text)
}

/// `sha256=<hex>` of `body` under `secret`, as GitHub signs it.
pub(crate) fn github_signature(secret: &[u8], body: &[u8]) -> anyhow::Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// [`run`], also returning the CPU ticks `pid` used during the measured window.
pub(crate) async fn run_measuring_cpu(
    pid: u32,
    workload: Arc<Workload>,
) -> anyhow::Result<(Outcome, u64)> {
    let warmup = workload.warmup;
    let duration = workload.duration;
    let cpu = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        let before = crate::process::cpu_ticks(pid);
        tokio::time::sleep(duration).await;
        let after = crate::process::cpu_ticks(pid);
        after.zip(before).map_or(0, |(a, b)| a.saturating_sub(b))
    });
    let outcome = run(workload).await?;
    Ok((outcome, cpu.await.unwrap_or(0)))
}

/// Opens every connection, then drives them until the window ends.
pub(crate) async fn run(workload: Arc<Workload>) -> anyhow::Result<Outcome> {
    let mut streams = Vec::with_capacity(workload.connections);
    for _ in 0..workload.connections {
        streams.push(connect(workload.addr).await?);
    }
    let start = Instant::now();
    let from = start + workload.warmup;
    let until = from + workload.duration;
    let mut tasks = Vec::with_capacity(streams.len());
    for (index, stream) in streams.into_iter().enumerate() {
        let workload = Arc::clone(&workload);
        tasks.push(tokio::spawn(async move {
            connection(&workload, index, stream, from, until).await
        }));
    }
    let mut outcome = Outcome {
        ok: 0,
        errors: 0,
        window: workload.duration,
        latency: histogram()?,
    };
    for task in tasks {
        let (ok, errors, latency) = task.await.context("load task")??;
        outcome.ok += ok;
        outcome.errors += errors;
        outcome.latency.add(&latency)?;
    }
    Ok(outcome)
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn connection(
    workload: &Workload,
    index: usize,
    mut stream: TcpStream,
    from: Instant,
    until: Instant,
) -> anyhow::Result<(u64, u64, Histogram<u64>)> {
    let mut latency = histogram()?;
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut request = Vec::with_capacity(1024 + workload.body.len().min(COALESCE_LIMIT));
    let mut response = Vec::with_capacity(4096);
    let coalesce = workload.body.len() <= COALESCE_LIMIT;
    for n in 0u64.. {
        let sent = Instant::now();
        if sent >= until {
            break;
        }
        request.clear();
        write!(
            request,
            "POST /webhooks/github HTTP/1.1\r\nHost: bench\r\nUser-Agent: GitHub-Hookshot/bench\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nX-GitHub-Event: push\r\n\
             X-GitHub-Hook-ID: 1\r\nX-GitHub-Delivery: {}-{index}-{n}\r\nX-Hub-Signature-256: {}\r\n\r\n",
            workload.body.len(),
            workload.tag,
            workload.signature,
        )?;
        let exchanged = async {
            if coalesce {
                request.extend_from_slice(&workload.body);
                stream.write_all(&request).await?;
            } else {
                stream.write_all(&request).await?;
                stream.write_all(&workload.body).await?;
            }
            read_response(&mut stream, &mut response).await
        };
        let result = tokio::time::timeout_at(until + Duration::from_secs(30), exchanged).await;
        let done = Instant::now();
        let counted = sent >= from && done <= until;
        match result {
            Ok(Ok(200)) => {
                if counted {
                    ok += 1;
                    let micros = u64::try_from(done.duration_since(sent).as_micros())
                        .unwrap_or(MAX_LATENCY_US);
                    latency.saturating_record(micros.max(1));
                }
            }
            Ok(Ok(_status)) => errors += u64::from(counted),
            Ok(Err(_)) | Err(_) => {
                errors += u64::from(counted);
                // A broken connection: open a new one unless the window is over.
                loop {
                    if Instant::now() >= until {
                        return Ok((ok, errors, latency));
                    }
                    match connect(workload.addr).await {
                        Ok(fresh) => {
                            stream = fresh;
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }
        }
    }
    Ok((ok, errors, latency))
}

/// Reads one response (status line, headers, `Content-Length` body);
/// returns the status code.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(std::io::Error::other)?;
            let status = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other("bad status line"))?;
            let length: usize = head
                .split("\r\n")
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + length;
            while buf.len() < total {
                read_more(stream, buf).await?;
            }
            return Ok(status);
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    if stream.read_buf(buf).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `GET path` on a fresh connection; the status code.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::with_capacity(1024);
    Ok(read_response(&mut stream, &mut buf).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_exact_size_and_are_json() {
        for size in [1024, 16 * 1024, 256 * 1024] {
            let body = body(size);
            assert_eq!(body.len(), size);
            assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        }
    }

    #[test]
    fn signature_matches_githubs_test_vector() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        let signature = github_signature(b"It's a Secret to Everybody", b"Hello, World!").unwrap();
        assert_eq!(
            signature,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
