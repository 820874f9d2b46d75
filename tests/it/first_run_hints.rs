//! The first run's hint works where it is read: `hookline up`, started as
//! `scripts/run` starts it (example config, development secrets), prints a
//! `try:` command; that command, run as written from the repository root in
//! a new shell without the development secrets, sends a webhook that is
//! stored. Sending the same `--id` again is answered as a duplicate, as
//! the README says.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hookline_tests::process::free_port;
use hookline_tests::{nats_server_binary, workspace_binary, workspace_root};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// The `HOOKLINE_*` overrides that keep the example config off the
/// developer's ports and files (a new terminal would use the defaults).
fn overrides(dir: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let events = dir.join("events.jsonl");
    Ok(vec![
        (
            "HOOKLINE_NATS_URL".into(),
            format!("nats://127.0.0.1:{}", free_port()?),
        ),
        (
            "HOOKLINE_INGEST_LISTEN".into(),
            format!("127.0.0.1:{}", free_port()?),
        ),
        (
            "HOOKLINE_PROCESSOR_METRICS_LISTEN".into(),
            format!("127.0.0.1:{}", free_port()?),
        ),
        (
            "HOOKLINE_PROCESSOR_HANDLER".into(),
            format!(
                "{{ file = {{ path = {:?} }} }}",
                events.display().to_string()
            ),
        ),
    ])
}

/// A shell in the repository root with none of this environment's
/// `HOOKLINE_*` variables or webhook secrets: a new terminal.
fn fresh_shell(script: &str) -> anyhow::Result<tokio::process::Command> {
    let mut command = tokio::process::Command::new("bash");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("HOOKLINE_") || name.ends_with("_SECRET") {
            command.env_remove(name.as_ref());
        }
    }
    command
        .arg("-c")
        .arg(script)
        .current_dir(workspace_root())
        .env("HOOKLINE_CLI_BIN", workspace_binary("hookline")?)
        .env("NATS_SERVER_BIN", nats_server_binary()?)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(command)
}

#[tokio::test]
async fn the_printed_hint_runs_as_written_in_a_new_terminal() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let overrides = overrides(dir.path())?;
    let data = dir.path().join("nats");
    // What scripts/run does, with the debug binary.
    let mut up = fresh_shell(&format!(
        ". scripts/dev-secrets && exec \"$HOOKLINE_CLI_BIN\" up --config hookline.example.toml \
         --data {:?} --cli-command scripts/hookline",
        data.display().to_string()
    ))?
    .envs(overrides.iter().cloned())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()?;
    let stdout = up.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let hint = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some((_, rest)) = line.split_once("try: ") {
                let command = rest.split("   (").next().unwrap_or(rest).trim().to_owned();
                return Ok(command);
            }
        }
        bail!("hookline up ended without a hint")
    })
    .await
    .context("no hint within 60 s")??;
    assert_eq!(hint, "scripts/hookline send github");
    // Keep reading, so `up` never blocks on its output.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let send = |script: String| {
        let overrides = overrides.clone();
        async move {
            let output = fresh_shell(&script)?.envs(overrides).output().await?;
            anyhow::Ok((
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr),
            ))
        }
    };
    let (code, output) = send(hint.clone()).await?;
    assert_eq!(code, Some(0), "{hint}: {output}");
    assert!(output.contains("→ 200"), "{output}");

    let once = format!("{hint} --id 5f1c8a52-d1f4-11ee-8d7b-0a58a9feac02");
    let (_, first) = send(once.clone()).await?;
    let (code, again) = send(once).await?;
    assert_eq!(code, Some(0), "{again}");
    assert!(first.contains("\"duplicate\":false"), "{first}");
    assert!(again.contains("\"duplicate\":true"), "{again}");

    let pid = up.id().context("up has exited")?;
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()?;
    let status = tokio::time::timeout(Duration::from_secs(30), up.wait()).await??;
    assert_eq!(status.code(), Some(0));
    Ok(())
}
