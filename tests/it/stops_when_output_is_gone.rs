//! Stopping is unconditional: each binary, started with its stdout and
//! stderr on a pipe whose reader has gone (a closed `… | tee`, a restarted
//! log shipper), still drains on SIGTERM and exits 0 within its drain time.
//! Before the fix, the first log line after the reader left panicked the
//! signal task and only SIGKILL ended the process.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hookline_tests::cli::sources;
use hookline_tests::process::free_port;
use hookline_tests::{NatsServer, eventually, nats_server_binary, workspace_binary};
use tokio::process::{Child, Command};

/// How long a binary may take to drain and exit after SIGTERM.
const DRAIN: Duration = Duration::from_secs(30);

/// Starts `binary args… --config FILE` with stdout and stderr on pipes.
fn spawn_piped(binary: &str, args: &[&str], config: &Path) -> anyhow::Result<Child> {
    let mut command = Command::new(workspace_binary(binary)?);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKLINE_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NATS_SERVER_BIN", nats_server_binary()?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {binary}"))
}

/// Waits until `url` answers 200.
async fn ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    eventually(
        Duration::from_secs(60),
        &format!("{url} answers 200"),
        || {
            let request = client.get(url).send();
            async move { Ok(request.await.is_ok_and(|r| r.status() == 200)) }
        },
    )
    .await
}

/// Closes the reading ends of the child's output, then sends SIGTERM and
/// returns the exit code.
async fn close_output_then_terminate(mut child: Child) -> anyhow::Result<Option<i32>> {
    drop(child.stdout.take());
    drop(child.stderr.take());
    let pid = child.id().context("the process has already exited")?;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -TERM {pid} failed");
    }
    let exit = tokio::time::timeout(DRAIN, child.wait())
        .await
        .context("still running after SIGTERM with its output closed")??;
    Ok(exit.code())
}

/// A config with free ports, the test sources and a `file` handler.
fn write_config(dir: &Path, nats_url: &str) -> anyhow::Result<(std::path::PathBuf, u16, u16)> {
    let ingest = free_port()?;
    let metrics = free_port()?;
    let events = dir.join("events.jsonl");
    let path = dir.join("hookline.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[nats]
url = "{nats_url}"

[stream]
max_bytes = "64MiB"
dlq_max_bytes = "16MiB"

[ingest]
listen = "127.0.0.1:{ingest}"
{sources}
[processor]
group = "pipe"
metrics_listen = "127.0.0.1:{metrics}"
handler = {{ file = {{ path = {events:?} }} }}
"#,
            sources = sources()
        ),
    )?;
    Ok((path, ingest, metrics))
}

#[tokio::test]
async fn ingest_exits_0_on_sigterm_after_its_reader_has_gone() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let (config, ingest, _) = write_config(dir.path(), &server.url())?;
    let child = spawn_piped("hookline-ingest", &[], &config)?;
    ready(&format!("http://127.0.0.1:{ingest}/readyz")).await?;
    assert_eq!(close_output_then_terminate(child).await?, Some(0));
    Ok(())
}

#[tokio::test]
async fn processor_exits_0_on_sigterm_after_its_reader_has_gone() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    // A processor waits for the streams (ingest creates them); declare them
    // as ingest would.
    let js = async_nats::jetstream::new(server.client().await?);
    hookline_tests::processor::stream_config()
        .declare(&js)
        .await?;
    let dir = tempfile::tempdir()?;
    let (config, _, metrics) = write_config(dir.path(), &server.url())?;
    let child = spawn_piped("hookline-processor", &[], &config)?;
    ready(&format!("http://127.0.0.1:{metrics}/readyz")).await?;
    assert_eq!(close_output_then_terminate(child).await?, Some(0));
    Ok(())
}

#[tokio::test]
async fn up_exits_0_on_sigterm_after_its_reader_has_gone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let nats_url = format!("nats://127.0.0.1:{}", free_port()?);
    let (config, ingest, metrics) = write_config(dir.path(), &nats_url)?;
    let data = dir.path().join("nats");
    let data = data.to_str().context("temporary path is not UTF-8")?;
    let child = spawn_piped("hookline", &["up", "--data", data], &config)?;
    ready(&format!("http://127.0.0.1:{ingest}/readyz")).await?;
    ready(&format!("http://127.0.0.1:{metrics}/readyz")).await?;
    assert_eq!(close_output_then_terminate(child).await?, Some(0));
    Ok(())
}
