//! `ingest.max_in_flight_bytes` bounds the request bodies held in memory:
//! a request waits for its declared length of the budget before its body
//! is read, gets 503 + `Retry-After` when none frees up within
//! `publish_timeout`, and goes through once the budget is back; a body
//! larger than the whole budget still goes through on its own.

use std::time::Duration;

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SECRET: &str = "budget-github-secret";

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    id: &str,
) -> anyhow::Result<reqwest::Response> {
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let headers = signed_headers(&spec, SECRET, &body, id, "push")?;
    Ok(client.post(url).headers(headers).body(body).send().await?)
}

#[tokio::test]
async fn bodies_wait_for_the_budget_then_shed_with_503() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(
        &nats.url(),
        &format!(
            "[ingest]\nmax_in_flight_bytes = \"4KiB\"\npublish_timeout = \"500ms\"\nbody_timeout = \"10s\"\n\
             [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ value = \"{SECRET}\" }}]\n"
        ),
    )?)
    .await?;
    let url = ingest.webhook_url("github");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    // A client that declares 4 KiB and sends none of it holds the whole budget.
    let mut holder = TcpStream::connect(ingest.addr).await?;
    holder
        .write_all(
            b"POST /webhooks/github HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
              Content-Length: 4096\r\nX-Hub-Signature-256: sha256=00\r\n\r\n",
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let shed = post(&client, &url, vec![b'1'; 2048], "1:shed").await?;
    assert_eq!(shed.status().as_u16(), 503);
    assert!(shed.headers().contains_key("retry-after"));

    // The holder's body arrives (it fails verification): the budget is back.
    holder.write_all(&[b'x'; 4096]).await?;
    holder.flush().await?;
    let accepted = post(&client, &url, vec![b'2'; 2048], "1:after").await?;
    assert_eq!(accepted.status().as_u16(), 200);

    // A body larger than the whole budget takes all of it, and goes through.
    let large = post(&client, &url, vec![b'3'; 16 * 1024], "1:large").await?;
    assert_eq!(large.status().as_u16(), 200);
    ingest.stop().await
}
