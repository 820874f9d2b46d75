//! Secrets and signatures never leak: the ingest binary runs at
//! `RUST_LOG=trace` against a NATS server that requires a password, and
//! serves accepted, rejected and failing (NATS away → 503) requests for
//! every provider; then its whole stdout/stderr, its `/metrics` and every
//! response body are searched for each signing secret, the NATS password
//! and each signature value sent.

use std::time::{Duration, Instant};

use hookline_tests::NatsServer;
use hookline_tests::ingest::{settings, signed_headers};
use hookline_tests::process::{Process, free_port, wait_ready};

const NATS_PASSWORD: &str = "leak-nats-password-51fd";

/// (source name, config lines, env var, secret).
const SOURCES: &[(&str, &str, &str, &str)] = &[
    (
        "github",
        "provider = \"github\"",
        "LEAK_GH",
        "leak-gh-secret-a1b2c3",
    ),
    (
        "stripe",
        "provider = \"stripe\"",
        "LEAK_STRIPE",
        "whsec_leakStripeSecret0123456789",
    ),
    (
        "svix",
        "provider = \"standard-webhooks\"",
        "LEAK_SVIX",
        "whsec_bGVha1N2aXhTZWNyZXRWYWx1ZTEyMzQ1Ng==",
    ),
    (
        "shopify",
        "provider = \"shopify\"",
        "LEAK_SHOPIFY",
        "leak-shopify-secret-d4e5",
    ),
    (
        "slack",
        "provider = \"slack\"",
        "LEAK_SLACK",
        "leak-slack-signing-f6a7",
    ),
    (
        "linear",
        "provider = \"hmac\"\nheader = \"Linear-Signature\"\nencoding = \"hex\"\nid_header = \"Linear-Delivery\"\nevent_header = \"Linear-Event\"",
        "LEAK_LINEAR",
        "leak-linear-secret-b8c9",
    ),
];

fn sources_toml() -> String {
    SOURCES
        .iter()
        .map(|(name, provider, var, _)| {
            format!(
                "[[sources]]\nname = \"{name}\"\n{provider}\nsecrets = [{{ env = \"{var}\" }}]\n"
            )
        })
        .collect()
}

fn config(nats_url: &str, port: u16, admin: u16) -> String {
    format!(
        "[nats]\nurl = \"{nats_url}\"\nuser = \"hookline\"\npassword = {{ env = \"LEAK_NATS_PW\" }}\n\
         [stream]\nmax_bytes = \"64MiB\"\n\
         [ingest]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{admin}\"\npublish_timeout = \"1s\"\n{}",
        sources_toml()
    )
}

/// The MAC parts of a signature header value (`t=…,v1=<mac>` → `<mac>`).
fn mac_tokens(value: &str) -> Vec<String> {
    value
        .split([',', ';', ' ', '='])
        .map(|part| part.trim_start_matches("sha256").trim_start_matches("v1"))
        .filter(|part| part.len() >= 16 && !part.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

struct Run {
    client: reqwest::Client,
    base: String,
    /// Every signature value sent, and every response body received.
    signatures: Vec<String>,
    bodies: Vec<String>,
}

impl Run {
    async fn send(
        &mut self,
        source: &str,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> anyhow::Result<u16> {
        for (name, value) in &headers {
            let name = name.as_str();
            if name.contains("signature") || name.contains("hmac") {
                self.signatures.extend(mac_tokens(value.to_str()?));
            }
        }
        let response = self
            .client
            .post(format!("{}/webhooks/{source}", self.base))
            .headers(headers)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        self.bodies.push(response.text().await?);
        Ok(status)
    }
}

#[tokio::test]
async fn no_secret_or_signature_in_logs_metrics_or_answers() -> anyhow::Result<()> {
    let mut nats = NatsServer::start_with_config(&format!(
        "authorization {{ users = [ {{ user: hookline, password: \"{NATS_PASSWORD}\" }} ] }}"
    ))
    .await?;
    let (port, admin) = (free_port()?, free_port()?);
    let config_text = config(&nats.url(), port, admin);
    let mut env = vec![("LEAK_NATS_PW", NATS_PASSWORD), ("RUST_LOG", "trace")];
    env.extend(SOURCES.iter().map(|(_, _, var, secret)| (*var, *secret)));
    let mut ingest = Process::spawn("hookline-ingest", &config_text, &env)?;
    wait_ready(
        &mut ingest,
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    // The parsed settings give each source's provider spec for signing.
    let specs = settings(&nats.url(), &sources_toml())?.sources;
    let mut run = Run {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        base: format!("http://127.0.0.1:{port}"),
        signatures: Vec::new(),
        bodies: Vec::new(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();

    for (n, (source, (name, _, _, secret))) in specs.iter().zip(SOURCES).enumerate() {
        let spec = &source.provider;
        let body = format!(
            r#"{{"id":"evt_{n}","type":"leak.test","event_id":"Ev{n}","event":{{"type":"leak"}}}}"#
        )
        .into_bytes();
        // Accepted.
        let headers = signed_headers(spec, secret, &body, &format!("{n}:ok"), "leak.test")?;
        assert_eq!(run.send(name, headers, body.clone()).await?, 200, "{name}");
        // Rejected: a genuine signature over a different body.
        let headers = signed_headers(spec, secret, &body, &format!("{n}:tampered"), "leak.test")?;
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert_eq!(run.send(name, headers, tampered).await?, 401, "{name}");
        // Rejected: stale (where the scheme signs a timestamp) or a
        // signature made with another secret.
        let signer = hookline_signature::Signer::new(spec, secret.as_bytes())?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (header, value) in signer.sign(&body, &format!("{n}:stale"), "leak.test", now - 3600) {
            headers.append(header, value.parse()?);
        }
        let status = run.send(name, headers, body.clone()).await?;
        assert!(matches!(status, 200 | 401), "{name}: stale → {status}");
        let other_secret = if secret.starts_with("whsec_") {
            "whsec_b3RoZXJTZWNyZXRPdGhlclNlY3JldDA="
        } else {
            "another-secret"
        };
        let headers = signed_headers(
            spec,
            other_secret,
            &body,
            &format!("{n}:other"),
            "leak.test",
        )?;
        assert_eq!(run.send(name, headers, body.clone()).await?, 401, "{name}");
    }

    // Failing: NATS away → 503 for correctly signed requests.
    nats.stop().await?;
    for (n, (source, (name, _, _, secret))) in specs.iter().zip(SOURCES).enumerate() {
        let body = format!(r#"{{"id":"evt_down_{n}","type":"leak.down"}}"#).into_bytes();
        let headers = signed_headers(
            &source.provider,
            secret,
            &body,
            &format!("{n}:down"),
            "leak.down",
        )?;
        assert_eq!(run.send(name, headers, body).await?, 503, "{name}");
    }
    nats.restart().await?;
    let (source, (name, _, _, secret)) = (&specs[0], SOURCES[0]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = br#"{"after":"restart"}"#.to_vec();
        let headers = signed_headers(&source.provider, secret, &body, "0:back", "ping")?;
        if run.send(name, headers, body).await? == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let metrics = run
        .client
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("hookline_ingest_rejected_total"),
        "{metrics}"
    );
    assert_eq!(ingest.terminate(Duration::from_secs(15)).await?, Some(0));
    let output = ingest.output()?;
    assert!(
        output.contains("TRACE") && output.len() > 10_000,
        "trace logging was not on ({} bytes)",
        output.len()
    );

    // The processor, at trace too, handles what ingest stored through an
    // http handler whose downstream fails each webhook's first attempt.
    let (processor_output, processor_metrics) = run_processor(&config_text, &nats).await?;
    // Logs that go to a file are plain text: colour codes between the
    // tokens would also let a secret slip past the search below.
    for (binary, log) in [("ingest", &output), ("processor", &processor_output)] {
        assert!(
            !log.contains('\u{1b}'),
            "{binary} wrote terminal escape codes to a file"
        );
    }

    let mut secrets: Vec<String> = vec![NATS_PASSWORD.to_owned()];
    for (_, _, _, secret) in SOURCES {
        secrets.push((*secret).to_owned());
        if let Some(key) = secret.strip_prefix("whsec_") {
            secrets.push(key.to_owned());
        }
    }
    assert!(
        run.signatures.len() >= SOURCES.len() * 4,
        "{:?}",
        run.signatures
    );
    let answers = run.bodies.join("\n");
    for needle in secrets.iter().chain(&run.signatures) {
        for (place, text) in [
            ("logs", &output),
            ("metrics", &metrics),
            ("answers", &answers),
        ] {
            assert!(
                !text.contains(needle.as_str()),
                "{needle:?} found in {place}"
            );
        }
    }
    println!(
        "secrets: searched {} bytes of trace output, {} bytes of metrics, {} answers for {} secrets and {} signature values",
        output.len() + processor_output.len(),
        metrics.len() + processor_metrics.len(),
        run.bodies.len(),
        secrets.len(),
        run.signatures.len()
    );
    Ok(())
}

/// Runs `hookline-processor` at trace against the stream ingest filled,
/// until its downstream has answered 2xx for every stored webhook (each
/// first attempt fails with 503, so retries are logged too); returns its
/// output and `/metrics`.
async fn run_processor(config_text: &str, nats: &NatsServer) -> anyhow::Result<(String, String)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let counter = counter.clone();
            async move {
                let attempt = headers
                    .get("hookline-attempt")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("1");
                if attempt == "1" {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    counter.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let stored = {
        let client = async_nats::ConnectOptions::new()
            .user_and_password("hookline".into(), NATS_PASSWORD.into())
            .connect(nats.url())
            .await?;
        let js = async_nats::jetstream::new(client);
        js.get_stream("WEBHOOKS")
            .await?
            .info()
            .await?
            .state
            .messages
    };
    let admin = free_port()?;
    let config = format!(
        "{config_text}\n[processor]\ngroup = \"leak\"\nstart = \"all\"\nack_wait = \"5s\"\n\
         backoff = {{ initial = \"100ms\", max = \"1s\" }}\n\
         metrics_listen = \"127.0.0.1:{admin}\"\n\
         handler = {{ http = {{ url = \"{sink}\", timeout = \"2s\" }} }}\n"
    );
    let mut env = vec![("LEAK_NATS_PW", NATS_PASSWORD), ("RUST_LOG", "trace")];
    env.extend(SOURCES.iter().map(|(_, _, var, secret)| (*var, *secret)));
    let mut processor = Process::spawn("hookline-processor", &config, &env)?;
    wait_ready(
        &mut processor,
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (handled.load(Ordering::SeqCst) as u64) < stored {
        assert!(
            Instant::now() < deadline,
            "processor handled {} of {stored}",
            handled.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await?
        .text()
        .await?;
    assert_eq!(processor.terminate(Duration::from_secs(15)).await?, Some(0));
    Ok((processor.output()?, metrics))
}
