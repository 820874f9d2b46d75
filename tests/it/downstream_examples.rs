//! The downstream guide's examples run against a real pipeline: a Rust
//! consumer on the processor library (examples/downstream-rust) and a
//! Python consumer with nats-py and code generated from proto/
//! (examples/python), each with its own durable consumer on
//! `webhooks.github.>`, each seeing exactly the GitHub webhooks ingest
//! stored, decoded. The Python environment is prepared by
//! `scripts/setup-python-examples` (scripts/test runs it); this test installs
//! nothing and fails with that hint when it is missing.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hookline_tests::ingest::{TestIngest, settings, signed_headers};
use hookline_tests::{NatsServer, workspace_binary, workspace_root};

const SOURCES: &str = r#"
[stream]
max_bytes = "64MiB"
dlq_max_bytes = "16MiB"

[[sources]]
name = "github"
provider = "github"
secrets = [{ value = "downstream-secret" }]

[[sources]]
name = "stripe"
provider = "stripe"
secrets = [{ value = "whsec_downstream" }]
"#;

/// Two GitHub deliveries and one Stripe one through real ingest.
async fn pipeline_with_webhooks() -> anyhow::Result<(NatsServer, TestIngest)> {
    let server = NatsServer::start().await?;
    let ingest = TestIngest::start(settings(&server.url(), SOURCES)?).await?;
    let client = reqwest::Client::new();
    let github: hookline_signature::ProviderSpec = "github".parse()?;
    for (id, event, body) in [
        ("5:first", "push", r#"{"ref":"refs/heads/main"}"#),
        ("5:second", "issues", r#"{"action":"opened"}"#),
    ] {
        let headers = signed_headers(&github, "downstream-secret", body.as_bytes(), id, event)?;
        let answer = client
            .post(ingest.webhook_url("github"))
            .headers(headers)
            .body(body)
            .send()
            .await?;
        assert_eq!(answer.status(), 200);
    }
    let stripe: hookline_signature::ProviderSpec = "stripe".parse()?;
    let body = r#"{"id":"evt_d","type":"invoice.paid"}"#;
    let headers = signed_headers(&stripe, "whsec_downstream", body.as_bytes(), "", "")?;
    let answer = client
        .post(ingest.webhook_url("stripe"))
        .headers(headers)
        .body(body)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    Ok((server, ingest))
}

async fn run(mut command: tokio::process::Command) -> anyhow::Result<(String, String)> {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKLINE_") {
            command.env_remove(name);
        }
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("the example did not finish within 60 s")??;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!("example exited {}:\n{stdout}\n{stderr}", output.status);
    }
    Ok((stdout, stderr))
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_downstream_example_gets_its_sources_webhooks() -> anyhow::Result<()> {
    let (server, _ingest) = pipeline_with_webhooks().await?;
    let mut command = tokio::process::Command::new(workspace_binary("downstream-rust")?);
    command
        .arg("--config")
        .arg(workspace_root().join("examples/downstream-rust/team.toml"))
        .arg("--count")
        .arg("2")
        .env("HOOKLINE_NATS_URL", server.url());
    let (stdout, _) = run(command).await?;
    let lines = json_lines(&stdout);
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{stdout}");
    assert!(
        ids.contains(&"5:first") && ids.contains(&"5:second"),
        "{stdout}"
    );
    assert!(
        lines.iter().all(|l| l["source"] == "github"),
        "no stripe webhook: {stdout}"
    );
    let client = server.client().await?;
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("WEBHOOKS")
        .await?;
    let info = stream.consumer_info("analytics").await?;
    assert_eq!(info.config.filter_subjects[0], "webhooks.github.>");
    assert_eq!(info.num_ack_pending, 0);
    // team.toml has no [stream] section: its defaults (1 GiB) must not
    // replace the pipeline's stream settings (64 MiB), nor drop a webhook.
    let stream = stream.info().await?;
    assert_eq!(
        stream.config.max_bytes,
        64 << 20,
        "the example changed the stream"
    );
    assert_eq!(stream.state.messages, 3);
    Ok(())
}

/// `.tools/python-examples/{lib,gen}`, made by scripts/setup-python-examples.
fn python_path() -> anyhow::Result<String> {
    let base = workspace_root().join(".tools/python-examples");
    let (lib, generated): (PathBuf, PathBuf) = (base.join("lib"), base.join("gen"));
    if !lib.join("nats").is_dir() || !generated.join("hookline/v1/envelope_pb2.py").is_file() {
        bail!(
            "the Python example environment is missing: run scripts/setup-python-examples \
             (scripts/test does) to install the pinned nats-py and protobuf into .tools/ and generate code from proto/"
        );
    }
    Ok(format!("{}:{}", lib.display(), generated.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_downstream_example_decodes_the_envelope_from_proto() -> anyhow::Result<()> {
    let python_path = python_path()?;
    let (server, _ingest) = pipeline_with_webhooks().await?;
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(workspace_root().join("examples/python/consumer.py"))
        .args(["--server", &server.url(), "--source", "github"])
        .args(["--count", "2", "--timeout", "30"])
        .env("PYTHONPATH", python_path);
    let (stdout, stderr) = run(command).await?;
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 2, "{stdout}\n{stderr}");
    assert_eq!(lines[0]["id"], "5:first");
    assert_eq!(lines[0]["event"], "push");
    assert_eq!(lines[0]["subject"], "webhooks.github.push");
    assert_eq!(lines[0]["msg_id"], "github:5:first");
    assert_eq!(lines[0]["body"], r#"{"ref":"refs/heads/main"}"#);
    assert_eq!(lines[0]["headers"]["x-github-event"], "push");
    assert_eq!(lines[0]["delivered"], 1);
    assert_eq!(lines[1]["id"], "5:second");
    assert!(
        lines[1]["received_at"]
            .as_str()
            .unwrap_or_default()
            .ends_with('Z')
    );

    // Its durable consumer is its own: everything it read is acked there.
    let client = server.client().await?;
    let info = async_nats::jetstream::new(client)
        .get_stream("WEBHOOKS")
        .await?
        .consumer_info("analytics-py")
        .await?;
    assert_eq!(info.ack_floor.stream_sequence, 2);
    assert_eq!(
        info.num_pending, 0,
        "the stripe webhook is not for this consumer"
    );
    Ok(())
}
