//! Consistent limits (issue 12, finding 4): against nats-server's default
//! 1 MiB `max_payload`, a `max_body` whose Envelope cannot fit is refused
//! at start with one line naming the key and both numbers; by default
//! `max_body` is the largest body that fits, a body of exactly that size is
//! stored, and a body near 1 MiB gets 413, never 503 (before: 503 forever,
//! as the Envelope around a 1 MiB body exceeded `max_payload`). A message
//! that still cannot fit (an id copied from a huge body) is 413 too.

use std::time::Duration;

use hookline_ingest::envelope::MAX_ENVELOPE_OVERHEAD;
use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings, signed_headers};
use hookline_tests::process::Process;

const MIB: u64 = 1 << 20;
const SECRET: &str = "payload-github-secret";

async fn start_failure(
    nats: &NatsServer,
    extra: &str,
    source_extra: &str,
) -> anyhow::Result<String> {
    let mut ingest = Process::spawn(
        "hookline-ingest",
        &format!(
            "[nats]\nurl = \"{}\"\n[ingest]\nlisten = \"127.0.0.1:0\"\n{extra}\n\
             [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ value = \"{SECRET}\" }}]\n{source_extra}\n",
            nats.url()
        ),
        &[],
    )?;
    let code = ingest.wait_exit(Duration::from_secs(20)).await?;
    assert_ne!(code, Some(0));
    let stderr = ingest.stderr()?;
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    Ok(stderr)
}

#[tokio::test]
async fn body_limits_that_cannot_fit_max_payload_are_refused_at_start() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let stderr = start_failure(&nats, "max_body = \"1MiB\"", "").await?;
    assert!(
        stderr.contains("ingest.max_body = 1048576 bytes")
            && stderr.contains("max_payload of 1048576 bytes"),
        "{stderr}"
    );
    let stderr = start_failure(&nats, "", "max_body = \"8MiB\"").await?;
    assert!(
        stderr.contains("max_body of source \"github\" = 8388608 bytes")
            && stderr.contains("max_payload of 1048576 bytes"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn bodies_near_max_payload_are_stored_or_413_never_503() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(
        &nats.url(),
        &format!(
            "[stream]\nmax_bytes = \"64MiB\"\n\
             [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ value = \"{SECRET}\" }}]\n\
             [[sources]]\nname = \"stripe\"\nprovider = \"stripe\"\nsecrets = [{{ value = \"whsec_payload\" }}]\n"
        ),
    )?)
    .await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let github: hookline_signature::ProviderSpec = "github".parse()?;
    let fits = usize::try_from(MIB - MAX_ENVELOPE_OVERHEAD)?;
    let send = |len: usize, id: &'static str| {
        let body = vec![b'a'; len];
        let headers = signed_headers(&github, SECRET, &body, id, "push");
        let request = client.post(ingest.webhook_url("github"));
        async move {
            anyhow::Ok(
                request
                    .headers(headers?)
                    .body(body)
                    .send()
                    .await?
                    .status()
                    .as_u16(),
            )
        }
    };
    assert_eq!(send(fits, "1:at-the-limit").await?, 200);
    assert_eq!(send(fits + 1, "1:over-the-limit").await?, 413);
    assert_eq!(send((MIB - 1024) as usize, "1:near-1mib").await?, 413);

    // Stripe's id comes from the body: a 600 KiB id in a 600 KiB body makes
    // an Envelope over 1 MiB. Nothing can store it: 413, not 503.
    let stripe: hookline_signature::ProviderSpec = "stripe".parse()?;
    let body = format!(
        "{{\"id\":\"evt_{}\",\"type\":\"invoice.paid\"}}",
        "x".repeat(600 * 1024)
    )
    .into_bytes();
    let headers = signed_headers(&stripe, "whsec_payload", &body, "", "invoice.paid")?;
    let response = client
        .post(ingest.webhook_url("stripe"))
        .headers(headers)
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 413);
    ingest.stop().await
}
