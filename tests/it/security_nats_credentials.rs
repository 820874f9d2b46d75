//! NATS credentials: ingest connects to a server that requires
//! user/password (or a token) with the secret taken from the environment,
//! and a wrong password fails start-up with one line that names the
//! problem and never contains a password, not even one written into the URL.

use std::time::Duration;

use hookline_tests::NatsServer;
use hookline_tests::ingest::signed_headers;
use hookline_tests::process::{Process, free_port, wait_ready};

const NATS_PASSWORD: &str = "nats-pw-Zq81-correct-horse";
const WRONG_PASSWORD: &str = "nats-pw-wrong-battery-77";
const NATS_TOKEN: &str = "nats-token-s3cr3t-0042";
const GH_SECRET: &str = "gh-secret-for-credential-tests";

fn config(url: &str, port: u16, nats_extra: &str) -> String {
    format!(
        "[nats]\nurl = \"{url}\"\nconnect_timeout = \"1s\"\n{nats_extra}\n\
         [stream]\nmax_bytes = \"64MiB\"\n\
         [ingest]\nlisten = \"127.0.0.1:{port}\"\n\
         [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ env = \"CRED_GH\" }}]\n"
    )
}

async fn send_signed(port: u16) -> anyhow::Result<u16> {
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let body = br#"{"zen":"keep it logically awesome"}"#;
    let headers = signed_headers(&spec, GH_SECRET, body, "1:cred", "ping")?;
    Ok(reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/github"))
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await?
        .status()
        .as_u16())
}

/// How a run ended: exit code, stderr, and everything it printed.
struct Exit {
    code: Option<i32>,
    stderr: String,
    output: String,
}

/// Runs ingest to its exit.
async fn run_to_exit(config: &str, env: &[(&str, &str)]) -> anyhow::Result<Exit> {
    let mut process = Process::spawn("hookline-ingest", config, env)?;
    let code = process.wait_exit(Duration::from_secs(30)).await?;
    Ok(Exit {
        code,
        stderr: process.stderr()?,
        output: process.output()?,
    })
}

fn assert_one_line_failure(exit: &Exit, expected: &str) {
    let Exit {
        code,
        stderr,
        output,
    } = exit;
    assert_ne!(*code, Some(0), "started: {output}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("hookline-ingest: "), "{stderr}");
    assert!(
        last.to_lowercase().contains(expected),
        "expected {expected:?} in {last:?}"
    );
    // Each cause once (async-nats errors print their source in their own
    // message too; issue 12 finding 8).
    let parts: Vec<&str> = last.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "{part:?} printed twice: {last}"
        );
    }
    for secret in [NATS_PASSWORD, WRONG_PASSWORD, GH_SECRET] {
        assert!(!output.contains(secret), "{secret} printed:\n{output}");
    }
}

#[tokio::test]
async fn user_and_password_from_the_environment() -> anyhow::Result<()> {
    let nats = NatsServer::start_with_config(&format!(
        "authorization {{ users = [ {{ user: hookline, password: \"{NATS_PASSWORD}\" }} ] }}"
    ))
    .await?;
    let port = free_port()?;
    let mut ingest = Process::spawn(
        "hookline-ingest",
        &config(
            &nats.url(),
            port,
            "user = \"hookline\"\npassword = { env = \"CRED_NATS_PW\" }",
        ),
        &[
            ("CRED_GH", GH_SECRET),
            ("CRED_NATS_PW", NATS_PASSWORD),
            ("RUST_LOG", "trace"),
        ],
    )?;
    wait_ready(
        &mut ingest,
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    assert_eq!(send_signed(port).await?, 200);
    assert_eq!(ingest.terminate(Duration::from_secs(15)).await?, Some(0));
    let output = ingest.output()?;
    assert!(!output.contains(NATS_PASSWORD), "password in the trace log");

    // The password written into the URL works too, and is never logged:
    // it is split off before the client library sees the address.
    let port = free_port()?;
    let url_with_password = nats
        .url()
        .replace("nats://", &format!("nats://hookline:{NATS_PASSWORD}@"));
    let mut ingest = Process::spawn(
        "hookline-ingest",
        &config(&url_with_password, port, ""),
        &[("CRED_GH", GH_SECRET), ("RUST_LOG", "trace")],
    )?;
    wait_ready(
        &mut ingest,
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    assert_eq!(send_signed(port).await?, 200);
    assert_eq!(ingest.terminate(Duration::from_secs(15)).await?, Some(0));
    assert!(
        !ingest.output()?.contains(NATS_PASSWORD),
        "URL password in the trace log"
    );

    // Wrong password: a one-line start-up failure naming authorization.
    let exit = run_to_exit(
        &config(
            &nats.url(),
            free_port()?,
            "user = \"hookline\"\npassword = { env = \"CRED_NATS_PW\" }",
        ),
        &[
            ("CRED_GH", GH_SECRET),
            ("CRED_NATS_PW", WRONG_PASSWORD),
            ("RUST_LOG", "trace"),
        ],
    )
    .await?;
    assert_one_line_failure(&exit, "authorization");

    // The same mistake with the password written into the URL.
    let url_with_password = nats
        .url()
        .replace("nats://", &format!("nats://hookline:{WRONG_PASSWORD}@"));
    let exit = run_to_exit(
        &config(&url_with_password, free_port()?, ""),
        &[("CRED_GH", GH_SECRET), ("RUST_LOG", "trace")],
    )
    .await?;
    assert_one_line_failure(&exit, "cannot connect to nats");

    // No credentials at all against a server that requires them.
    let exit = run_to_exit(
        &config(&nats.url(), free_port()?, ""),
        &[("CRED_GH", GH_SECRET)],
    )
    .await?;
    assert_one_line_failure(&exit, "authorization");

    // A user without a password is a configuration error, not a connect attempt.
    let exit = run_to_exit(
        &config(&nats.url(), free_port()?, "user = \"hookline\""),
        &[("CRED_GH", GH_SECRET)],
    )
    .await?;
    assert_one_line_failure(&exit, "nats.user and nats.password go together");
    Ok(())
}

#[tokio::test]
async fn token_from_a_file() -> anyhow::Result<()> {
    let nats =
        NatsServer::start_with_config(&format!("authorization {{ token: \"{NATS_TOKEN}\" }}"))
            .await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("nats-token");
    std::fs::write(&token_file, format!("{NATS_TOKEN}\n"))?;
    let port = free_port()?;
    let mut ingest = Process::spawn(
        "hookline-ingest",
        &config(
            &nats.url(),
            port,
            &format!(
                "token = {{ file = {:?} }}",
                token_file.display().to_string()
            ),
        ),
        &[("CRED_GH", GH_SECRET), ("RUST_LOG", "trace")],
    )?;
    wait_ready(
        &mut ingest,
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    assert_eq!(send_signed(port).await?, 200);
    assert_eq!(ingest.terminate(Duration::from_secs(15)).await?, Some(0));
    assert!(
        !ingest.output()?.contains(NATS_TOKEN),
        "token in the trace log"
    );
    Ok(())
}
