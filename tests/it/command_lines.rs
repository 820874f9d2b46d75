//! The three binaries share one command line: `--help` and `--version`
//! exit 0; an unknown flag, a missing or unreadable config file, or a bad
//! key exit 2 (nothing was started) with the same wording everywhere; a
//! failure at run time (NATS unreachable) exits 1.

use std::process::Stdio;

use hookline_tests::workspace_binary;

const BINARIES: [&str; 3] = ["hookline-ingest", "hookline-processor", "hookline"];

/// Runs `binary args…` with no `HOOKLINE_*` variable; returns (code, stdout, stderr).
async fn run(binary: &str, args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    let mut command = tokio::process::Command::new(workspace_binary(binary)?);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKLINE_") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// `args` for a config-reading invocation of `binary` (the CLI needs a command).
fn with_command<'a>(binary: &str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = if binary == "hookline" {
        vec!["status"]
    } else {
        vec![]
    };
    all.extend_from_slice(args);
    all
}

#[tokio::test]
async fn help_and_version_exit_0() -> anyhow::Result<()> {
    for binary in BINARIES {
        let (code, stdout, _) = run(binary, &["--help"]).await?;
        assert_eq!(code, Some(0), "{binary} --help");
        assert!(stdout.contains("--config"), "{binary} --help: {stdout}");
        let (code, stdout, _) = run(binary, &["--version"]).await?;
        assert_eq!(code, Some(0), "{binary} --version");
        assert!(
            stdout.starts_with(&format!("{binary} ")),
            "{binary} --version: {stdout}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn usage_and_configuration_errors_exit_2_with_the_same_words() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_string_lossy();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[nats]\nurl = \"nats://127.0.0.1:4222\"\nmystery = 1\n",
    )?;
    let bad = bad.to_string_lossy();
    for binary in BINARIES {
        let (code, _, stderr) = run(binary, &with_command(binary, &["--bogus"])).await?;
        assert_eq!(code, Some(2), "{binary} --bogus: {stderr}");
        assert!(stderr.contains("--bogus"), "{binary}: {stderr}");

        let (code, _, stderr) = run(binary, &with_command(binary, &["--config", &missing])).await?;
        assert_eq!(code, Some(2), "{binary} missing file: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!(
                "{binary}: cannot read config file {missing}: No such file or directory (os error 2)"
            ),
        );

        let (code, _, stderr) = run(binary, &with_command(binary, &["--config", &bad])).await?;
        assert_eq!(code, Some(2), "{binary} unknown key: {stderr}");
        assert!(
            stderr.contains("mystery"),
            "{binary} names the key: {stderr}"
        );
    }
    for binary in ["hookline-ingest", "hookline-processor"] {
        let (code, _, stderr) = run(binary, &[]).await?;
        assert_eq!(code, Some(2), "{binary} without a config: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!("{binary}: no config file: pass --config FILE or set HOOKLINE_CONFIG")
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_failure_at_run_time_exits_1() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = hookline_tests::process::free_port()?; // nothing listens there
    let config = dir.path().join("hookline.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = \"nats://127.0.0.1:{port}\"\nconnect_timeout = \"1s\"\n\n\
             [ingest]\nlisten = \"127.0.0.1:0\"\n{}\n\
             [processor]\ngroup = \"exit\"\nmetrics_listen = \"127.0.0.1:0\"\n\
             handler = {{ file = {{ path = \"events.jsonl\" }} }}\n",
            hookline_tests::cli::sources()
        ),
    )?;
    let config = config.to_string_lossy();
    for binary in ["hookline-ingest", "hookline-processor"] {
        let (code, _, stderr) = run(binary, &["--config", &config]).await?;
        assert_eq!(code, Some(1), "{binary} with NATS away: {stderr}");
        assert!(stderr.contains("NATS"), "{binary}: {stderr}");
    }
    Ok(())
}
