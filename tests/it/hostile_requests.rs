//! Requests no provider sends, written byte by byte on a raw socket: absurd
//! header counts and sizes, malformed UTF-8, traversal and odd encodings in
//! `{source}`, every other method, HTTP/1.0, pipelining, smuggling-shaped
//! framing. Each gets a clear 4xx (a JSON body wherever ingest, not the
//! HTTP parser, answers), nothing reaches the stream, and the server keeps
//! serving signed traffic afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};
use hookline_tests::raw_http::{RawResponse, exchange, header_lines};

const SECRET: &str = "hostile-github-secret";
const CONFIG: &str = r#"
[ingest]
max_body = "4KiB"
[[sources]]
name = "github"
provider = "github"
secrets = [{ value = "hostile-github-secret" }]
"#;
const WAIT: Duration = Duration::from_secs(10);

async fn stream_messages(nats: &NatsServer) -> anyhow::Result<u64> {
    let js = async_nats::jetstream::new(nats.client().await?);
    Ok(js
        .get_stream("WEBHOOKS")
        .await?
        .info()
        .await?
        .state
        .messages)
}

/// One request on its own connection (closed by `connection: close` or the
/// server); exactly one response expected.
async fn one(addr: SocketAddr, request: &[u8]) -> anyhow::Result<RawResponse> {
    let mut responses = exchange(addr, request, WAIT).await?;
    assert_eq!(
        responses.len(),
        1,
        "expected one response to {:?}",
        String::from_utf8_lossy(&request[..request.len().min(200)])
    );
    Ok(responses.remove(0))
}

fn assert_json_error(response: &RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    let body = response
        .json()
        .unwrap_or_else(|| panic!("{what}: {status} without a JSON body: {response:?}"));
    assert_eq!(body["error"], code, "{what}: {body}");
}

fn signed_request(
    body: &[u8],
    delivery: &str,
    version: &str,
    extra: &str,
) -> anyhow::Result<Vec<u8>> {
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let headers = signed_headers(&spec, SECRET, body, &format!("1:{delivery}"), "push")?;
    let mut request = format!(
        "POST /webhooks/github {version}\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n{}{extra}\r\n",
        body.len(),
        header_lines(&headers)
    )
    .into_bytes();
    request.extend_from_slice(body);
    Ok(request)
}

#[tokio::test]
async fn absurd_heads_and_bodies_get_clean_4xx() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), CONFIG)?).await?;
    let addr = ingest.addr;

    // Too many header fields: 431 from the HTTP parser (no handler runs).
    let many: String = (0..hookline_ingest::MAX_HEADERS + 50)
        .map(|i| format!("x-h{i}: v\r\n"))
        .collect();
    let response = one(
        addr,
        format!("POST /webhooks/github HTTP/1.1\r\nhost: x\r\n{many}content-length: 0\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    assert_eq!(response.status, 431, "{response:?}");
    // hyper's own answer, with the JSON body the contract promises.
    assert_eq!(
        response.json().expect("JSON body")["error"],
        "headers_too_large"
    );

    // One huge header, and a huge request line.
    let huge = "a".repeat(hookline_ingest::MAX_HEADER_BYTES + 1024);
    let response = one(
        addr,
        format!("POST /webhooks/github HTTP/1.1\r\nhost: x\r\nx-big: {huge}\r\n\r\n").as_bytes(),
    )
    .await?;
    assert_eq!(response.status, 431, "{response:?}");
    assert!(response.json().is_some(), "{response:?}");
    let response = one(
        addr,
        format!("POST /webhooks/{huge} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes(),
    )
    .await?;
    assert!(matches!(response.status, 414 | 431 | 400), "{response:?}");

    // Malformed UTF-8 (obs-text bytes) in header values: parsed, never
    // verified, one generic 401.
    let mut request = b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
        x-hub-signature-256: sha256=\xff\xfe\xfd\r\nx-github-event: \xc3\x28push\r\n\
        x-github-delivery: \xf0\x28\x8c\x28\r\ncontent-length: 2\r\n\r\n{}"
        .to_vec();
    let response = one(addr, &request).await?;
    assert_json_error(&response, 401, "unauthorized", "non-UTF-8 signature header");

    // Malformed UTF-8 in the body, unsigned: 401.
    request = b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
        content-length: 4\r\n\r\n\xff\xfe\xc3\x28"
        .to_vec();
    let response = one(addr, &request).await?;
    assert_json_error(&response, 401, "unauthorized", "non-UTF-8 body");

    // Control characters and bad bytes in a header name, a bare LF, a
    // missing host: the parser answers 400.
    for (what, raw) in [
        (
            "NUL in a header value",
            &b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nx-a: a\x00b\r\n\r\n"[..],
        ),
        (
            "bad header name",
            b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nx(a): b\r\n\r\n",
        ),
        (
            "non-ASCII header name",
            b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nx-\xff: b\r\n\r\n",
        ),
        ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
        ("no version", b"POST /webhooks/github\r\n\r\n"),
        (
            "content-length not a number",
            b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: 1e3\r\n\r\n",
        ),
        (
            "two different content-lengths",
            b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
        ),
    ] {
        let responses = exchange(addr, raw, WAIT).await?;
        assert_eq!(responses.len(), 1, "{what}: {responses:?}");
        assert_eq!(responses[0].status, 400, "{what}: {:?}", responses[0]);
        assert_eq!(
            responses[0].json().map(|json| json["error"].clone()),
            Some("bad_request".into()),
            "{what}: {:?}",
            responses[0]
        );
    }

    // Broken chunked framing after a valid head: ingest answers (JSON 400 or
    // 401 before the body matters); never a 2xx.
    let response = one(
        addr,
        b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
          transfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    )
    .await?;
    assert_json_error(&response, 400, "bad_request", "bad chunk size");

    // Smuggling shape: both Content-Length and Transfer-Encoding. The
    // request is answered once, as one request; nothing is persisted.
    let responses = exchange(
        addr,
        b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
          content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n\
          0\r\n\r\nGET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
        WAIT,
    )
    .await?;
    assert!(!responses.is_empty(), "no answer to a CL+TE request");
    assert!(
        (400..500).contains(&responses[0].status),
        "CL+TE: {responses:?}"
    );

    // Expect: 100-continue with a declared body over the limit: 413 without
    // the client sending the body.
    let response = one(
        addr,
        b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n\
          content-length: 99999999\r\nconnection: close\r\n\r\n",
    )
    .await?;
    assert_json_error(&response, 413, "body_too_large", "expect 100-continue");

    assert_eq!(
        stream_messages(&nats).await?,
        0,
        "hostile input was persisted"
    );
    let response = one(
        addr,
        &signed_request(b"{\"ok\":1}", "after", "HTTP/1.1", "connection: close\r\n")?,
    )
    .await?;
    assert_eq!(
        response.status, 200,
        "signed traffic after the abuse: {response:?}"
    );
    ingest.stop().await
}

#[tokio::test]
async fn odd_paths_and_methods_get_json_404_and_405() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), CONFIG)?).await?;
    let addr = ingest.addr;

    for path in [
        "/webhooks/..%2Fgithub",
        "/webhooks/%2e%2e",
        "/webhooks/..",
        "/webhooks/.",
        "/webhooks/%252e%252e%252fgithub",
        "/webhooks/github%2F..",
        "/webhooks/github%00",
        "/webhooks/%00",
        "/webhooks/%ff%fe",
        "/webhooks/%c0%ae%c0%ae",
        "/webhooks/GITHUB",
        "/webhooks/github;x",
        "/webhooks/github%20",
        "/webhooks/%E2%80%AEbuhtig",
        "/webhooks/github%",
        "/webhooks/%zz",
    ] {
        let response = one(
            addr,
            format!("POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{{}}")
                .as_bytes(),
        )
        .await?;
        assert_json_error(&response, 404, "unknown_source", path);
    }
    for path in [
        "/webhooks/../webhooks/github",
        "/webhooks/github/../github",
        "/webhooks//github",
        "/webhooks/",
        "/webhooks",
        "/",
        "//",
        "/webhooks/github/",
        "/%2e%2e/%2e%2e/etc/passwd",
        "*",
        "http://evil.example/webhooks/github/x",
    ] {
        let response = one(
            addr,
            format!("POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{{}}")
                .as_bytes(),
        )
        .await?;
        assert!(matches!(response.status, 400 | 404), "{path}: {response:?}");
        if response.status == 404 {
            assert!(response.json().is_some(), "{path}: 404 without JSON");
        }
    }

    for method in [
        "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "PROPFIND",
    ] {
        let response = one(
            addr,
            format!("{method} /webhooks/github HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        assert_json_error(&response, 405, "method_not_allowed", method);
        assert_eq!(response.header("allow"), Some("POST"), "{method}");
    }
    // HEAD: the same status, without a body (so read the raw bytes).
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    tokio::io::AsyncWriteExt::write_all(
        &mut socket,
        b"HEAD /webhooks/github HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await?;
    let raw = hookline_tests::raw_http::read_until_closed(&mut socket, WAIT).await?;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 405"), "HEAD: {text}");

    assert_eq!(stream_messages(&nats).await?, 0);
    ingest.stop().await
}

#[tokio::test]
async fn http_1_0_and_pipelined_requests_are_each_answered_in_order() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), CONFIG)?).await?;
    let addr = ingest.addr;

    // HTTP/1.0: answered, then the connection closes (no keep-alive asked).
    let response = one(
        addr,
        &signed_request(b"{\"v\":\"1.0\"}", "http10", "HTTP/1.0", "")?,
    )
    .await?;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json().expect("json")["id"], "1:http10");

    // Pipelining: three requests in one write (good, forged, good), three
    // answers in order on the same connection.
    let mut pipeline = signed_request(b"{\"p\":1}", "pipe-1", "HTTP/1.1", "")?;
    let mut forged = signed_request(b"{\"p\":2}", "pipe-2", "HTTP/1.1", "")?;
    let flip = forged.len() - 2;
    forged[flip] ^= 1; // body changed after signing
    pipeline.extend_from_slice(&forged);
    pipeline.extend_from_slice(&signed_request(
        b"{\"p\":3}",
        "pipe-3",
        "HTTP/1.1",
        "connection: close\r\n",
    )?);
    let responses = exchange(addr, &pipeline, WAIT).await?;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 200], "{responses:?}");
    assert_eq!(responses[0].json().expect("json")["id"], "1:pipe-1");
    assert_eq!(responses[2].json().expect("json")["id"], "1:pipe-3");

    assert_eq!(stream_messages(&nats).await?, 3);
    ingest.stop().await
}
