//! The `hookline-processor` binary: a clear one-line error and a non-zero
//! exit for a config it cannot run; with the `file` handler it appends one
//! JSON line per webhook, serves /healthz /readyz /metrics, reads
//! environment overrides, ignores other sections of the shared file, and
//! exits 0 after SIGTERM.

use hookline_tests::processor as support;

use std::time::{Duration, Instant};

use hookline_tests::publish::{TestWebhook, publish};
use support::{Env, Instance, config_file};

async fn fails_with(toml: &str, env: &[(&str, &str)], expected: &str) -> anyhow::Result<()> {
    let mut instance = Instance::spawn_with(toml, env).await?;
    let status = instance.wait(Duration::from_secs(20)).await?;
    let stderr = instance.stderr();
    assert!(!status.success(), "exit 0 for {expected:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, got {stderr:?}");
    assert!(lines[0].starts_with("hookline-processor: "), "{stderr}");
    assert!(
        lines[0].contains(expected),
        "expected {expected:?} in {stderr:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_exits_non_zero_with_one_clear_line() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let good =
        "group = \"g\"\nhandler = { file = { path = \"/tmp/hookline-never-written.jsonl\" } }\n";
    let cases = [
        (
            good.replace("\"g\"", "\"Not Valid\""),
            "processor.group \"Not Valid\"",
        ),
        (
            format!("{good}colour = \"red\"\n"),
            "unknown field `colour`",
        ),
        (
            "group = \"g\"\n".to_owned(),
            "processor.handler is required",
        ),
        (
            format!("{good}max_deliver = 0\n"),
            "processor.max_deliver must be at least 1",
        ),
        (
            format!("{good}backoff = {{ initial = \"1m\", max = \"1s\" }}\n"),
            "processor.backoff.initial (1m) must not exceed processor.backoff.max (1s)",
        ),
        (
            format!("{good}subjects = [\"dlq.>\"]\n"),
            "processor.subjects entry \"dlq.>\"",
        ),
        (
            format!("{good}ack_wait = \"soon\"\n"),
            "invalid duration \"soon\"",
        ),
        (
            good.replace(
                "/tmp/hookline-never-written.jsonl",
                "/nonexistent/dir/x.jsonl",
            ),
            "cannot open handler output file /nonexistent/dir/x.jsonl",
        ),
    ];
    for (processor, expected) in cases {
        fails_with(&config_file(&env, &processor), &[], expected).await?;
    }
    // The [processor] section missing altogether.
    fails_with(
        &format!("[nats]\nurl = {:?}\n", env.server.url()),
        &[],
        "missing field `processor`",
    )
    .await?;
    // An environment override is validated like the file.
    fails_with(
        &config_file(&env, good),
        &[("HOOKLINE_PROCESSOR_CONCURRENCY", "0")],
        "processor.concurrency",
    )
    .await?;
    // No server to talk to.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let unreachable =
        config_file(&env, good).replace(&env.server.url(), &format!("nats://127.0.0.1:{port}"));
    fails_with(
        &unreachable,
        &[("HOOKLINE_NATS_CONNECT_TIMEOUT", "1s")],
        "cannot connect to NATS",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_config_file_is_an_error() -> anyhow::Result<()> {
    let binary = hookline_tests::workspace_binary("hookline-processor")?;
    let output = tokio::process::Command::new(binary)
        .env_remove("HOOKLINE_CONFIG")
        .output()
        .await?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no config file"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_handler_writes_json_lines_and_sigterm_exits_zero() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let out = tempfile::tempdir()?;
    let events = out.path().join("events.jsonl");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let toml = format!(
        "{}\n[[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ value = \"x\" }}]\n",
        config_file(
            &env,
            &format!("group = \"files\"\nhandler = {{ file = {{ path = {events:?} }} }}\n")
        )
        .replace(
            "metrics_listen = \"127.0.0.1:0\"",
            &format!("metrics_listen = \"127.0.0.1:{port}\"")
        )
    );
    let mut instance =
        Instance::spawn_with(&toml, &[("HOOKLINE_PROCESSOR_MAX_ACK_PENDING", "1234")]).await?;
    env.wait_pulling("files", 1, Duration::from_secs(15))
        .await?;
    assert_eq!(
        env.consumer_info("files").await?.config.max_ack_pending,
        1234
    );

    let mut binary = TestWebhook::new("stripe", "invoice.paid", "evt_bin", vec![0xff, 0x00, 0x7f]);
    binary.content_type = "application/octet-stream".into();
    binary.headers = vec![("stripe-account".into(), "acct_1".into())];
    for webhook in [
        TestWebhook::new("github", "push", "h:1", r#"{"ref":"main"}"#),
        TestWebhook::new("github", "pull_request", "h:2", "{}"),
        binary,
    ] {
        publish(&env.js, &webhook).await?;
    }
    env.wait_settled("files", Duration::from_secs(15)).await?;
    let text = std::fs::read_to_string(&events)?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 3, "{text}");
    let line = |id: &str| {
        lines
            .iter()
            .find(|l| l["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    let push = line("h:1");
    assert_eq!(push["body"], r#"{"ref":"main"}"#);
    assert_eq!(push["body_base64"], false);
    assert_eq!(push["group"], "files");
    assert_eq!(push["attempt"], 1);
    assert_eq!(push["subject"], "webhooks.github.push");
    assert_eq!(line("h:2")["event"], "pull_request");
    let bin = line("evt_bin");
    assert_eq!(bin["body"], "/wB/");
    assert_eq!(bin["body_base64"], true);
    assert_eq!(bin["headers"][0]["name"], "stripe-account");
    assert!(
        bin["received_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/healthz")).send().await?.status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/readyz")).send().await?.status(),
        200
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let handled = metrics
        .lines()
        .filter(|l| {
            l.starts_with("hookline_processor_handled_total") && l.contains("outcome=\"success\"")
        })
        .map(|l| {
            l.rsplit(' ')
                .next()
                .unwrap_or("0")
                .parse::<f64>()
                .unwrap_or(0.0)
        })
        .sum::<f64>();
    assert!((handled - 3.0).abs() < f64::EPSILON, "{metrics}");
    assert!(
        metrics.contains("hookline_processor_handler_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(!metrics.contains("evt_bin"), "ids never become labels");

    let stopping = Instant::now();
    instance.sigterm()?;
    let status = instance.wait(Duration::from_secs(15)).await?;
    assert!(
        status.success(),
        "{status:?}; stderr: {}",
        instance.stderr()
    );
    assert!(stopping.elapsed() < Duration::from_secs(10));
    Ok(())
}

/// `worker_threads` 0 (one per core) and 3 run the same instance on a
/// multi-thread runtime: it handles webhooks and still exits 0 on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_shape_handles_webhooks_and_exits_zero() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let out = tempfile::tempdir()?;
    for threads in ["0", "3"] {
        let group = format!("shape{threads}");
        let events = out.path().join(format!("{group}.jsonl"));
        let toml = config_file(
            &env,
            &format!(
                "group = \"{group}\"\nsubjects = [\"webhooks.{group}.>\"]\n\
                 handler = {{ file = {{ path = {events:?} }} }}\n"
            ),
        );
        let mut instance =
            Instance::spawn_with(&toml, &[("HOOKLINE_PROCESSOR_WORKER_THREADS", threads)]).await?;
        env.wait_pulling(&group, 1, Duration::from_secs(15)).await?;
        let id = format!("h:{threads}");
        publish(&env.js, &TestWebhook::new(&group, "push", &id, "{}")).await?;
        env.wait_settled(&group, Duration::from_secs(15)).await?;
        let text = std::fs::read_to_string(&events)?;
        assert_eq!(
            text.lines().count(),
            1,
            "worker_threads = {threads}: {text}"
        );
        assert!(text.contains(&format!("\"id\":\"{id}\"")), "{text}");
        instance.sigterm()?;
        let status = instance.wait(Duration::from_secs(15)).await?;
        assert!(
            status.success(),
            "worker_threads = {threads}: {status:?}; stderr: {}",
            instance.stderr()
        );
    }
    Ok(())
}
