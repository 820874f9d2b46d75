//! Fail closed: the ingest binary refuses to start when any source could
//! end up verifying nothing: no secrets listed, no `secrets` key, or a
//! secret whose variable, file or inline value is empty. It exits non-zero
//! with one line naming the source or the secret's origin, before it
//! listens on anything.

use std::time::Duration;

use hookline_tests::NatsServer;
use hookline_tests::process::{Process, free_port};

/// The `secrets` line, the environment, and what the error must say.
type Case = (String, Vec<(&'static str, &'static str)>, &'static str);

#[tokio::test]
async fn sources_without_usable_secrets_refuse_to_start() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let empty_file = dir.path().join("empty-secret");
    std::fs::write(&empty_file, "\n")?;
    let cases: Vec<Case> = vec![
        (
            "secrets = []".to_owned(),
            vec![],
            "source \"github\" has no secrets",
        ),
        // Absent is the same as empty (only Asana/Notion may capture theirs).
        (String::new(), vec![], "source \"github\" has no secrets"),
        (
            "secrets = [{ env = \"FAIL_CLOSED_EMPTY\" }]".to_owned(),
            vec![("FAIL_CLOSED_EMPTY", "")],
            "FAIL_CLOSED_EMPTY is not set (or is empty)",
        ),
        (
            "secrets = [{ env = \"FAIL_CLOSED_UNSET_VAR\" }]".to_owned(),
            vec![],
            "FAIL_CLOSED_UNSET_VAR is not set",
        ),
        (
            format!(
                "secrets = [{{ file = {:?} }}]",
                empty_file.display().to_string()
            ),
            vec![],
            "is empty",
        ),
        (
            "secrets = [{ value = \"ok\" }, { value = \"\" }]".to_owned(),
            vec![],
            "an inline value is empty",
        ),
    ];
    for (secrets, env, expected) in cases {
        let port = free_port()?;
        let config = format!(
            "[nats]\nurl = \"{}\"\n[ingest]\nlisten = \"127.0.0.1:{port}\"\n\
             [[sources]]\nname = \"github\"\nprovider = \"github\"\n{secrets}\n",
            nats.url()
        );
        let mut ingest = Process::spawn("hookline-ingest", &config, &env)?;
        let code = ingest.wait_exit(Duration::from_secs(20)).await?;
        let stderr = ingest.stderr()?;
        assert_ne!(code, Some(0), "started with {secrets:?}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("hookline-ingest: ") && last.contains(expected),
            "{secrets:?}: expected {expected:?} in {stderr:?}"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{secrets:?}: something listened before the refusal"
        );
    }
    Ok(())
}
