//! A secret file's trailing whitespace is not part of the secret (issue 12,
//! finding 8): a file written by `echo`, an editor or a Kubernetes secret
//! with extra newlines or spaces at the end still verifies. Before, only
//! one newline was dropped and every request to the source got 401.

use std::time::Duration;

use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};

#[tokio::test]
async fn secret_files_with_trailing_whitespace_verify() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("github.secret");
    std::fs::write(&path, "file-secret-93\r\n\n \t\n")?;
    let ingest = TestIngest::start(settings(
        &nats.url(),
        &format!(
            "[[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ file = {:?} }}]\n",
            path.display().to_string()
        ),
    )?)
    .await?;
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let body = b"{\"zen\":\"trailing whitespace\"}".to_vec();
    let headers = signed_headers(&spec, "file-secret-93", &body, "1:file-secret", "ping")?;
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .post(ingest.webhook_url("github"))
        .headers(headers)
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    ingest.stop().await
}
