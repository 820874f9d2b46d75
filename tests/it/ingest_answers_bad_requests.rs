//! Bad requests of every kind get the design's status with a JSON error
//! body, and nothing reaches the stream.

use std::time::Duration;

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};

const CONFIG: &str = r#"
[[sources]]
name = "stripe"
provider = "stripe"
secrets = [{ value = "whsec_test" }]
max_body = "1KiB"
"#;

async fn message_count(nats: &NatsServer) -> anyhow::Result<u64> {
    let js = async_nats::jetstream::new(nats.client().await?);
    Ok(js
        .get_stream("WEBHOOKS")
        .await?
        .info()
        .await?
        .state
        .messages)
}

async fn expect_json_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> anyhow::Result<()> {
    assert_eq!(response.status(), status);
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("application/json"),
        "{status} without a JSON body"
    );
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["error"], code, "{body}");
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let config = settings(&nats.url(), CONFIG)?;
    let spec = config.sources[0].provider.clone();
    let ingest = TestIngest::start(config).await?;
    let client = reqwest::Client::new();
    let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;

    // Unknown source, including traversal attempts in the path segment.
    for path in [
        "/webhooks/gitlab",
        "/webhooks/..%2Fstripe",
        "/webhooks/stripe%00",
    ] {
        let response = client
            .post(ingest.url(path))
            .body(body.to_vec())
            .send()
            .await?;
        expect_json_error(response, 404, "unknown_source").await?;
    }
    let response = client
        .post(ingest.url("/webhooks/stripe/extra"))
        .send()
        .await?;
    expect_json_error(response, 404, "not_found").await?;

    // Wrong method.
    let response = client.get(ingest.webhook_url("stripe")).send().await?;
    assert_eq!(response.headers()["allow"], "POST");
    expect_json_error(response, 405, "method_not_allowed").await?;

    // Missing, malformed and stale signatures: one generic 401.
    let response = client
        .post(ingest.webhook_url("stripe"))
        .body(body.to_vec())
        .send()
        .await?;
    expect_json_error(response, 401, "unauthorized").await?;
    let response = client
        .post(ingest.webhook_url("stripe"))
        .header("Stripe-Signature", "t=abc,v1=zz")
        .body(body.to_vec())
        .send()
        .await?;
    expect_json_error(response, 401, "unauthorized").await?;
    let signer = hookline_signature::Signer::new(&spec, b"whsec_test")?;
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        - 3600;
    let mut request = client
        .post(ingest.webhook_url("stripe"))
        .body(body.to_vec());
    for (name, value) in signer.sign(body, "", "", an_hour_ago) {
        request = request.header(name, value);
    }
    expect_json_error(request.send().await?, 401, "unauthorized").await?;

    // Body over the source's limit: declared, and streamed without a length.
    let big = vec![b'x'; 4096];
    let headers = signed_headers(&spec, "whsec_test", &big, "", "")?;
    let response = client
        .post(ingest.webhook_url("stripe"))
        .headers(headers.clone())
        .body(big.clone())
        .send()
        .await?;
    expect_json_error(response, 413, "body_too_large").await?;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(512).map(|c| Ok(c.to_vec())).collect();
    let response = client
        .post(ingest.webhook_url("stripe"))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await?;
    expect_json_error(response, 413, "body_too_large").await?;

    // Error bodies never echo the secret.
    let response = client
        .post(ingest.webhook_url("stripe"))
        .body("whsec_test")
        .send()
        .await?;
    assert!(!response.text().await?.contains("whsec_test"));

    assert_eq!(
        message_count(&nats).await?,
        0,
        "a rejected request reached the stream"
    );

    // And a good request still works afterwards.
    let headers = signed_headers(&spec, "whsec_test", body, "", "")?;
    let response = client
        .post(ingest.webhook_url("stripe"))
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(message_count(&nats).await?, 1);
    ingest.stop().await
}

/// A body larger than the limit is refused while it is still arriving: the
/// server answers 413 long before the client has sent it all.
#[tokio::test]
async fn oversize_chunked_body_is_refused_without_buffering_it() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), CONFIG)?).await?;
    let mut socket = tokio::net::TcpStream::connect(ingest.addr).await?;
    socket
        .write_all(
            b"POST /webhooks/stripe HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\
              stripe-signature: t=1,v1=00\r\n\r\n",
        )
        .await?;
    let chunk = format!("{:x}\r\n{}\r\n", 256, "y".repeat(256));
    let mut sent = 0usize;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Offer up to 64 MiB; the server must answer after ~1 KiB.
    while sent < 64 << 20 {
        if socket.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server closed the connection after answering
        }
        sent += 256;
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), socket.read(&mut buf)).await
        {
            response.extend_from_slice(&buf[..n]);
            break;
        }
    }
    if response.is_empty() {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await??;
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        sent < 1 << 20,
        "server read {sent} bytes before refusing a 1 KiB-limited body"
    );
    ingest.stop().await
}
