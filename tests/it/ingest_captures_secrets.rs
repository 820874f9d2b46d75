//! Asana and Notion hand their signing secret over in a handshake. Ingest keeps
//! it only while `hookline sources capture <source>` has opened a window (then
//! the window closes), refuses such handshakes otherwise, and verifies later
//! deliveries with the captured secret; handshakes are never stored.

use hookline_signature::{ProviderSpec, Signer};
use hookline_tests::NatsServer;
use hookline_tests::cli::hookline;
use hookline_tests::ingest::{TestIngest, settings};

const SOURCES: &str = "[[sources]]\nname = \"asana\"\nprovider = \"asana\"\n\
                       [[sources]]\nname = \"notion\"\nprovider = \"notion\"\n";

async fn stored(nats: &NatsServer) -> anyhow::Result<u64> {
    let js = async_nats::jetstream::new(nats.client().await?);
    Ok(js
        .get_stream("WEBHOOKS")
        .await?
        .info()
        .await?
        .state
        .messages)
}

async fn signed_post(
    client: &reqwest::Client,
    url: &str,
    provider: &str,
    secret: &str,
    body: &'static [u8],
) -> anyhow::Result<u16> {
    let spec: ProviderSpec = provider.parse()?;
    let mut request = client.post(url).body(body);
    for (name, value) in Signer::new(&spec, secret.as_bytes())?.sign(body, "id", "event", 0) {
        request = request.header(name.as_str(), value);
    }
    Ok(request.send().await?.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_secrets_are_captured_only_inside_a_window() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&nats.url(), SOURCES)?).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("hookline.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = \"{}\"\n[ingest]\nlisten = \"{}\"\n{SOURCES}",
            nats.url(),
            ingest.addr
        ),
    )?;
    let client = reqwest::Client::new();
    let asana = ingest.webhook_url("asana");
    let handshake =
        |secret: &'static str| client.post(&asana).header("x-hook-secret", secret).send();
    let body: &'static [u8] = br#"{"events":[{"action":"changed"}]}"#;

    // No window: refused, and deliveries cannot verify yet.
    assert_eq!(handshake("first-secret").await?.status(), 403);
    assert_eq!(
        signed_post(&client, &asana, "asana", "first-secret", body).await?,
        401
    );

    let run = hookline(
        &config,
        &["sources", "capture", "asana", "--for", "1m"],
        &[],
        None,
    )
    .await?;
    run.assert_code(0);
    assert!(
        run.stdout.contains("capture window for asana open until"),
        "{run:?}"
    );
    let answer = handshake("first-secret").await?;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-hook-secret"], "first-secret");

    // Deliveries signed with the captured secret are stored; others are not.
    assert_eq!(
        signed_post(&client, &asana, "asana", "first-secret", body).await?,
        200
    );
    assert_eq!(
        signed_post(&client, &asana, "asana", "other-secret", body).await?,
        401
    );
    // The window closed with the capture: a second handshake is refused.
    assert_eq!(handshake("second-secret").await?.status(), 403);
    assert_eq!(
        signed_post(&client, &asana, "asana", "first-secret", body).await?,
        200
    );

    // Notion: the verification_token in an unsigned POST.
    let notion = ingest.webhook_url("notion");
    let token = br#"{"verification_token":"secret_notion_token"}"#;
    assert_eq!(
        client.post(&notion).body(&token[..]).send().await?.status(),
        403
    );
    hookline(&config, &["sources", "capture", "notion"], &[], None)
        .await?
        .assert_code(0);
    assert_eq!(
        client.post(&notion).body(&token[..]).send().await?.status(),
        200
    );
    let event: &'static [u8] = br#"{"id":"evt-1","type":"page.created"}"#;
    assert_eq!(
        signed_post(&client, &notion, "notion", "secret_notion_token", event).await?,
        200
    );

    // One Asana delivery (sent twice: Asana sends no id, so the body hash
    // deduplicates it) and one Notion delivery; no handshake was stored.
    assert_eq!(stored(&nats).await?, 2);
    // A source whose provider hands over no secret cannot open a window.
    let run = hookline(&config, &["sources", "capture", "nope"], &[], None).await?;
    assert_eq!(run.code, Some(3), "{run:?}");
    ingest.stop().await
}
