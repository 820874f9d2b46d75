//! A NATS outage under load is logged once, not once per request (issue
//! 12, finding 8: 1,543 ERROR lines in a 7 s outage). The first 503 logs
//! one ERROR line with its cause; the rest are counted in
//! `hookline_ingest_publish_failures_total`; the first success afterwards
//! logs one line with the count. Against the real binary and its log.

use std::time::{Duration, Instant};

use hookline_tests::NatsServer;
use hookline_tests::ingest::signed_headers;
use hookline_tests::process::{Process, free_port, wait_ready};

const SECRET: &str = "outage-log-secret";
const FAILING: usize = 200;

#[tokio::test]
async fn an_outage_is_one_error_line_and_its_end_one_info_line() -> anyhow::Result<()> {
    let mut nats = NatsServer::start().await?;
    let port = free_port()?;
    let mut ingest = Process::spawn(
        "hookline-ingest",
        &format!(
            "[nats]\nurl = \"{}\"\n[ingest]\nlisten = \"127.0.0.1:{port}\"\npublish_timeout = \"1s\"\n\
             [[sources]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [{{ value = \"{SECRET}\" }}]\n",
            nats.url()
        ),
        &[("RUST_LOG", "info")],
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(
        &mut ingest,
        &format!("{base}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let send = |n: usize| {
        let body = format!("{{\"n\":{n}}}").into_bytes();
        let headers = signed_headers(&spec, SECRET, &body, &format!("1:outage-{n}"), "push");
        let request = client.post(format!("{base}/webhooks/github"));
        async move {
            anyhow::Ok(
                request
                    .headers(headers?)
                    .body(body)
                    .send()
                    .await?
                    .status()
                    .as_u16(),
            )
        }
    };
    assert_eq!(send(0).await?, 200);

    nats.stop().await?;
    let mut statuses = Vec::new();
    for chunk in (1..=FAILING).collect::<Vec<_>>().chunks(8) {
        let answers = futures::future::join_all(chunk.iter().map(|&n| send(n))).await;
        for answer in answers {
            statuses.push(answer?);
        }
    }
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");

    nats.restart().await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = FAILING;
    loop {
        n += 1;
        if send(n).await? == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ingest.terminate(Duration::from_secs(15)).await?, Some(0));

    let output = ingest.output()?;
    let errors: Vec<&str> = output.lines().filter(|l| l.contains("ERROR")).collect();
    println!(
        "outage log: failed_requests={} error_lines={}",
        n - 1,
        errors.len()
    );
    assert_eq!(
        output.matches("webhooks not accepted (503)").count(),
        1,
        "{output}"
    );
    assert!(
        errors.len() <= 2,
        "{} ERROR lines:\n{}",
        errors.len(),
        errors.join("\n")
    );
    let recovered = output
        .lines()
        .find(|l| l.contains("webhooks accepted again"))
        .unwrap_or_else(|| panic!("no recovery line:\n{output}"));
    let failed: usize = recovered
        .split("failed=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no count in {recovered}"));
    assert_eq!(failed, n - 1, "{recovered}");
    Ok(())
}
