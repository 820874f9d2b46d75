//! The `hookline-ingest` binary as an operator runs it: clear one-line
//! errors for bad configuration, secrets never in its output, metrics
//! served, and exit 0 after draining on SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hookline_tests::ingest::signed_headers;
use hookline_tests::{NatsServer, workspace_binary};
use tokio::io::AsyncReadExt;

const SECRET: &str = "very-secret-signing-key-4242";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A config file, the environment to run it with, and what stderr must say.
struct BadConfig {
    config: String,
    env: Vec<(&'static str, &'static str)>,
    expected: &'static str,
}

/// Runs the binary with `config` to completion and returns (exit code, stderr).
async fn run_to_exit(config: &str, env: &[(&str, &str)]) -> anyhow::Result<(i32, String)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("hookline.toml");
    std::fs::write(&path, config)?;
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(workspace_binary("hookline-ingest")?)
            .arg("--config")
            .arg(&path)
            .envs(env.iter().copied())
            .env_remove("HOOKLINE_NATS_URL")
            .stdin(Stdio::null())
            .output(),
    )
    .await??;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn bad_configuration_fails_with_one_clear_line() -> anyhow::Result<()> {
    let source = |extra: &str| {
        format!(
            "[[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ env = \"HOOKLINE_TEST_GH\" }}]\n{extra}"
        )
    };
    let with_secret = vec![("HOOKLINE_TEST_GH", SECRET)];
    let cases = [
        BadConfig {
            config:
                "[[sources]]\nname = \"x\"\nprovider = \"gitlub\"\nsecrets = [{ value = \"s\" }]\n"
                    .into(),
            env: vec![],
            expected: "unknown provider `gitlub`",
        },
        BadConfig {
            config: source(""),
            env: vec![],
            expected: "HOOKLINE_TEST_GH is not set",
        },
        BadConfig {
            config: format!("[stream]\nmax_age = \"forever\"\n{}", source("")),
            env: with_secret.clone(),
            expected: "invalid duration \"forever\"",
        },
        BadConfig {
            config: format!("[ingest]\nlisten = \"nowhere\"\n{}", source("")),
            env: with_secret.clone(),
            expected: "invalid socket address",
        },
        BadConfig {
            config: String::new(),
            env: vec![],
            expected: "no [[sources]] configured",
        },
        BadConfig {
            config: format!(
                "[nats]\nurl = \"nats://127.0.0.1:1\"\nconnect_timeout = \"300ms\"\n{}",
                source("")
            ),
            env: with_secret,
            expected: "cannot connect to NATS at nats://127.0.0.1:1",
        },
    ];
    for BadConfig {
        config,
        env,
        expected,
    } in cases
    {
        let (code, stderr) = run_to_exit(&config, &env).await?;
        assert_ne!(code, 0, "started with {config}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("hookline-ingest: "), "{stderr}");
        assert!(last.contains(expected), "expected {expected:?} in {last:?}");
        assert!(!stderr.contains(SECRET), "secret printed: {stderr}");
    }
    let output = tokio::process::Command::new(workspace_binary("hookline-ingest")?)
        .arg("--secret=x")
        .output()
        .await?;
    assert_eq!(output.status.code(), Some(2));
    Ok(())
}

#[tokio::test]
async fn serves_metrics_hides_secrets_and_drains_on_sigterm() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (port, metrics_port) = (free_port()?, free_port()?);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("hookline.toml");
    std::fs::write(
        &path,
        format!(
            "[ingest]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
             [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ env = \"HOOKLINE_TEST_GH\" }}]\n"
        ),
    )?;
    let mut child = spawn_ingest(&path, &nats, &[("RUST_LOG", "trace")])?;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;

    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let headers = signed_headers(&spec, SECRET, body, "5:delivery-1", "push")?;
    let response = client
        .post(format!("{base}/webhooks/github"))
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let response = client
        .post(format!("{base}/webhooks/github"))
        .header("x-hub-signature-256", format!("sha256={}", "ab".repeat(32)))
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(response.status(), 401);

    // Metrics live on the admin address only.
    assert_eq!(
        client.get(format!("{base}/metrics")).send().await?.status(),
        404
    );
    let metrics = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for expected in [
        "hookline_ingest_received_total{source=\"github\"} 2",
        "hookline_ingest_published_total{source=\"github\"} 1",
        "hookline_ingest_rejected_total{source=\"github\",reason=\"invalid_signature\"} 1",
        "hookline_ingest_publish_duration_seconds_bucket",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("delivery-1"),
        "a webhook id became a label"
    );

    // SIGTERM: drain and exit 0.
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()?;
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;
    assert_eq!(exit.code(), Some(0));
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut logs)
        .await?;
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut logs)
        .await?;
    assert!(logs.contains("hookline-ingest stopped"), "{logs}");
    assert!(!logs.contains(SECRET), "secret in logs");
    assert!(!logs.contains(&"ab".repeat(32)), "signature in logs");
    Ok(())
}

/// `ingest.worker_threads` 0 (one per core) and 2 serve the same ingest
/// on a multi-thread runtime: a signed webhook gets 200, SIGTERM exits 0.
#[tokio::test]
async fn every_runtime_shape_accepts_webhooks_and_exits_zero() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let client = reqwest::Client::new();
    for threads in ["0", "2"] {
        let port = free_port()?;
        let path = dir.path().join(format!("hookline-{threads}.toml"));
        std::fs::write(
            &path,
            format!(
                "[ingest]\nlisten = \"127.0.0.1:{port}\"\n\
                 [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ env = \"HOOKLINE_TEST_GH\" }}]\n"
            ),
        )?;
        let mut child = spawn_ingest(&path, &nats, &[("HOOKLINE_INGEST_WORKER_THREADS", threads)])?;
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&client, &base).await;
        let spec: hookline_signature::ProviderSpec = "github".parse()?;
        let body = br#"{"ref":"refs/heads/main"}"#;
        let delivery = format!("7:shape-{threads}");
        let response = client
            .post(format!("{base}/webhooks/github"))
            .headers(signed_headers(&spec, SECRET, body, &delivery, "push")?)
            .body(body.to_vec())
            .send()
            .await?;
        assert_eq!(response.status(), 200, "worker_threads = {threads}");
        let pid = child.id().expect("running").to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()?
                .success()
        );
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;
        assert_eq!(exit.code(), Some(0), "worker_threads = {threads}");
    }
    Ok(())
}

/// Starts the binary with the test secret, `nats` as its server and `env`;
/// its output is piped.
fn spawn_ingest(
    config: &std::path::Path,
    nats: &NatsServer,
    env: &[(&str, &str)],
) -> anyhow::Result<tokio::process::Child> {
    Ok(
        tokio::process::Command::new(workspace_binary("hookline-ingest")?)
            .arg("--config")
            .arg(config)
            .env("HOOKLINE_TEST_GH", SECRET)
            .env("HOOKLINE_NATS_URL", nats.url())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?,
    )
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            Instant::now() < deadline,
            "ingest at {base} did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
