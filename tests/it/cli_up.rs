//! `hookline up` runs the whole local pipeline from one config: its own
//! nats-server in a data folder (or the server already answering at
//! `nats.url`), ingest and the processor; a signed send ends up in the file
//! handler's output; SIGINT stops everything and exits 0, leaving no process.

use hookline_tests::cli as support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hookline_tests::process::free_port;
use support::{GITHUB_SECRET, hookline, sources, wait_lines};
use tokio::process::Child;

/// A config with free ports: NATS, ingest, the processor's metrics.
fn config(dir: &Path, nats_url: &str) -> anyhow::Result<String> {
    let events = dir.join("events.jsonl");
    Ok(format!(
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
group = "local"
metrics_listen = "127.0.0.1:{metrics}"
handler = {{ file = {{ path = {events:?} }} }}

[console]
listen = "127.0.0.1:{console}"
"#,
        ingest = free_port()?,
        console = free_port()?,
        metrics = free_port()?,
        sources = sources()
    ))
}

/// `hookline up --config FILE --data DIR`, output to a file.
fn spawn_up(dir: &Path, config: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join("up.log"))?;
    let mut command = tokio::process::Command::new(hookline_tests::workspace_binary("hookline")?);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKLINE_") {
            command.env_remove(name);
        }
    }
    Ok(command
        .arg("up")
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(dir.join("nats"))
        .env("NATS_SERVER_BIN", hookline_tests::nats_server_binary()?)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

async fn wait_for_output(dir: &Path, child: &mut Child, needle: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = std::fs::read_to_string(dir.join("up.log")).unwrap_or_default();
        if output.contains(needle) {
            return Ok(output);
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("hookline up exited ({status}) before {needle:?}:\n{output}");
        }
        if Instant::now() > deadline {
            bail!("no {needle:?} within 60 s:\n{output}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pids(output: &str) -> Vec<(String, u32)> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.split("| started ").nth(1)?;
            let (name, pid) = rest.split_once(" (pid ")?;
            Some((name.to_owned(), pid.trim_end_matches(')').parse().ok()?))
        })
        .collect()
}

async fn interrupt(child: &mut Child) -> anyhow::Result<Option<i32>> {
    let pid = child.id().context("not running")?;
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()?;
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .context("hookline up did not stop within 60 s of SIGINT")??;
    Ok(exit.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_the_pipeline_and_ctrl_c_stops_all_of_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let nats_url = format!("nats://127.0.0.1:{}", free_port()?);
    let config_path = dir.path().join("hookline.toml");
    std::fs::write(&config_path, config(dir.path(), &nats_url)?)?;
    let mut up = spawn_up(dir.path(), &config_path)?;
    let output = wait_for_output(dir.path(), &mut up, "| ready").await?;
    assert!(output.contains("starting nats-server"), "{output}");
    let started = pids(&output);
    let names: Vec<&str> = started.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["nats", "ingest", "processor"], "{output}");
    assert!(
        dir.path().join("nats").join("jetstream").is_dir(),
        "store in --data"
    );

    let run = hookline(
        &config_path,
        &["send", "github", "--id", "9:up-test", "--json"],
        &[],
        None,
    )
    .await?;
    run.assert_code(0);
    let events = wait_lines(&dir.path().join("events.jsonl"), 1).await?;
    assert_eq!(events[0]["id"], "9:up-test");
    assert_eq!(events[0]["group"], "local");

    // The console it started answers at the printed URL.
    let output = wait_for_output(dir.path(), &mut up, "| try:").await?;
    let console_url = output
        .lines()
        .find_map(|line| line.split("console    ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no console URL in {output}"))?
        .to_owned();
    let status: serde_json::Value = reqwest::get(format!("{console_url}api/status"))
        .await?
        .json()
        .await?;
    assert_eq!(status["sources"][0]["source"], "github", "{status}");

    assert_eq!(interrupt(&mut up).await?, Some(0));
    let output = std::fs::read_to_string(dir.path().join("up.log"))?;
    assert!(
        output.contains("hookline-ingest stopped"),
        "ingest drained:\n{output}"
    );
    assert!(
        output.contains("processor stopped"),
        "processor drained:\n{output}"
    );
    assert!(output.contains("| stopped"), "{output}");
    assert!(!output.contains(GITHUB_SECRET), "no secret in any log");
    for (name, pid) in started {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "{name} (pid {pid}) is still running"
        );
    }

    // Started again on the same data folder: the webhook is still there.
    let mut up = spawn_up(dir.path(), &config_path)?;
    wait_for_output(dir.path(), &mut up, "| ready").await?;
    let status = hookline(&config_path, &["status", "--json"], &[], None).await?;
    assert_eq!(status.json()?["streams"][0]["messages"], 1);
    assert_eq!(interrupt(&mut up).await?, Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_uses_a_server_that_answers_at_the_configured_url() -> anyhow::Result<()> {
    let server = hookline_tests::NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("hookline.toml");
    std::fs::write(&config_path, config(dir.path(), &server.url())?)?;
    let mut up = spawn_up(dir.path(), &config_path)?;
    let output = wait_for_output(dir.path(), &mut up, "| ready").await?;
    assert!(output.contains("using the NATS server at"), "{output}");
    assert!(!output.contains("starting nats-server"), "{output}");
    assert_eq!(interrupt(&mut up).await?, Some(0));
    let client = server.client().await?;
    assert!(
        async_nats::jetstream::new(client)
            .get_stream("WEBHOOKS")
            .await
            .is_ok(),
        "the existing server got the streams"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_refuses_to_start_without_what_it_needs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let nats_url = format!("nats://127.0.0.1:{}", free_port()?);
    let config_path = dir.path().join("hookline.toml");
    let text = config(dir.path(), &nats_url)?.replace(
        &format!("{{ value = \"{GITHUB_SECRET}\" }}"),
        "{ env = \"CLI_TEST_UNSET_SECRET\" }",
    );
    std::fs::write(&config_path, text)?;
    let run = hookline(&config_path, &["up", "--data", "unused"], &[], None).await?;
    run.assert_code(2);
    assert!(run.stderr.contains("CLI_TEST_UNSET_SECRET"), "{run:?}");
    assert!(
        !run.stdout.contains("started"),
        "nothing was started: {run:?}"
    );

    let run = hookline(&config_path, &["up", "--nats-sync", "sometimes"], &[], None).await?;
    run.assert_code(2);
    assert!(run.stderr.contains("--nats-sync"), "{run:?}");

    // A cluster list nothing answers at is not started locally (only one
    // loopback address is).
    let list = format!(
        "nats://127.0.0.1:{},nats://127.0.0.1:{}",
        free_port()?,
        free_port()?
    );
    std::fs::write(&config_path, config(dir.path(), &list)?)?;
    let run = hookline(
        &config_path,
        &["up"],
        &[("HOOKLINE_NATS_CONNECT_TIMEOUT", "1s")],
        None,
    )
    .await?;
    run.assert_code(1);
    assert!(run.stderr.contains("single loopback address"), "{run:?}");
    assert!(!dir.path().join("unused").exists());
    Ok(())
}
