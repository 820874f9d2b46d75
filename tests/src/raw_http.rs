//! HTTP/1 on a bare TCP socket, for requests no well-behaved client sends:
//! malformed heads, absurd headers, slow dribbles, pipelines, HTTP/1.0.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One parsed response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        let is_json = self
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"));
        is_json
            .then(|| serde_json::from_slice(&self.body).ok())
            .flatten()
    }
}

/// Writes `request`, reads until the server closes the connection (at most
/// `wait`), and parses every response it sent.
///
/// # Errors
/// Connecting failed, or the bytes are not HTTP/1 responses.
pub async fn exchange(
    addr: SocketAddr,
    request: &[u8],
    wait: Duration,
) -> anyhow::Result<Vec<RawResponse>> {
    let mut socket = TcpStream::connect(addr).await?;
    socket.write_all(request).await?;
    let bytes = read_until_closed(&mut socket, wait).await?;
    parse_responses(&bytes)
}

/// Reads until EOF, a reset, or `wait` has passed; returns what arrived.
///
/// # Errors
/// Never for a reset (that is a close); only unexpected I/O errors.
pub async fn read_until_closed(socket: &mut TcpStream, wait: Duration) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_elapsed) => return Ok(bytes),
            Ok(Ok(0)) => return Ok(bytes),
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(bytes);
            }
            Ok(Err(error)) => return Err(error.into()),
        }
    }
}

/// Parses consecutive HTTP/1 responses.
///
/// # Errors
/// A malformed status line, header or chunked body.
pub fn parse_responses(mut bytes: &[u8]) -> anyhow::Result<Vec<RawResponse>> {
    let mut responses = Vec::new();
    while !bytes.is_empty() {
        let end = find(bytes, b"\r\n\r\n").context("incomplete response head")?;
        let head = std::str::from_utf8(&bytes[..end]).context("response head is not UTF-8")?;
        bytes = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = find(bytes, b"\r\n").context("incomplete chunk size")?;
                let size_text = std::str::from_utf8(&bytes[..line_end])?;
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .with_context(|| format!("bad chunk size {size_text:?}"))?;
                bytes = &bytes[line_end + 2..];
                if size == 0 {
                    let trailer_end = find(bytes, b"\r\n").context("incomplete trailer")?;
                    bytes = &bytes[trailer_end + 2..];
                    break body;
                }
                if bytes.len() < size + 2 {
                    bail!("truncated chunk");
                }
                body.extend_from_slice(&bytes[..size]);
                bytes = &bytes[size + 2..];
            }
        } else {
            let length: usize = match get("content-length") {
                Some(v) => v.parse().context("bad content-length")?,
                None => bytes.len(), // close-delimited
            };
            if bytes.len() < length {
                bail!("truncated body");
            }
            let (body, rest) = bytes.split_at(length);
            bytes = rest;
            body.to_vec()
        };
        responses.push(RawResponse {
            status,
            headers,
            body,
        });
    }
    Ok(responses)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A request head in wire form from a reqwest header map (for signed headers).
pub fn header_lines(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("{name}: {}\r\n", String::from_utf8_lossy(value.as_bytes())))
        .collect()
}
