//! `hookline console` on a real pipeline, through HTTP as a browser and an
//! API client use it: the overview shows the groups, an id search leads to
//! the webhook's page with its body, a hostile body is shown as text, a
//! dead letter is re-driven with the form's button (CSRF token required)
//! and ends handled; a non-loopback console refuses requests without its
//! token, and a loopback one refuses foreign Host names.

use std::time::Duration;

use hookline_tests::cli::{Console, Pipeline, Sink, wait_lines};
use hookline_tests::eventually;
use hookline_tests::process::free_port;

const HOSTILE: &str = r#"{"note":"<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"}"#;

fn csrf(page: &str) -> anyhow::Result<String> {
    let start = page
        .find(r#"name="csrf" value=""#)
        .ok_or_else(|| anyhow::anyhow!("no CSRF field in {page}"))?
        + r#"name="csrf" value=""#.len();
    Ok(page[start..].chars().take_while(|c| *c != '"').collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_finds_and_re_drives_webhooks() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start().await?;
    let sink = Sink::start(422).await?;
    pipeline
        .add_group("billing", r#"["webhooks.>"]"#, &sink.handler())
        .await?;
    let (audit, audit_file) = pipeline.file_handler("audit");
    pipeline
        .add_group("audit", r#"["webhooks.>"]"#, &audit)
        .await?;
    let body = pipeline.dir.path().join("hostile.json");
    std::fs::write(&body, HOSTILE)?;
    let body = body.to_string_lossy().into_owned();
    pipeline
        .hookline(&["send", "github", "--id", "77:d-hostile-1", "--body", &body])
        .await?
        .assert_code(0);
    pipeline.wait_count("WEBHOOKS_DLQ", 1).await?;
    pipeline.wait_settled("billing").await?;
    wait_lines(&audit_file, 1).await?;

    let console = Console::start(
        &pipeline.config,
        &format!("127.0.0.1:{}", free_port()?),
        &[],
    )
    .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let get = |path: &str| http.get(format!("{}{path}", console.url)).send();

    // Overview: the groups, and the headers every answer carries.
    let overview = get("/").await?;
    assert_eq!(overview.status(), 200);
    let csp = overview.headers()["content-security-policy"]
        .to_str()?
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(overview.headers()["x-content-type-options"], "nosniff");
    let text = overview.text().await?;
    assert!(text.contains("billing") && text.contains("audit"), "{text}");

    // Searching the id lists it with a link to its page.
    let list = get("/webhooks?id=hostile").await?.text().await?;
    assert!(
        list.contains(r#"href="/webhooks/github/77%3Ad-hostile-1""#),
        "{list}"
    );
    let page = get("/webhooks/github/77:d-hostile-1").await?;
    assert_eq!(page.status(), 200);
    let page = page.text().await?;
    assert!(
        page.contains("&lt;script&gt;document.title"),
        "the body is shown as text: {page}"
    );
    assert!(
        !page.contains("<script") && !page.contains("<img"),
        "no markup from the body: {page}"
    );
    assert!(page.contains("dead-lettered"), "billing gave up: {page}");

    // The API gives the same reports.
    let api: serde_json::Value = get("/api/webhooks/github/77:d-hostile-1")
        .await?
        .json()
        .await?;
    assert_eq!(api["trace"]["webhook_id"], "77:d-hostile-1");
    assert_eq!(api["envelope"]["body"], HOSTILE);
    let letters: serde_json::Value = get("/api/dlq?group=billing").await?.json().await?;
    let seq = letters[0]["seq"].as_u64().unwrap_or_default();
    assert_eq!(letters[0]["webhook_id"], "77:d-hostile-1", "{letters}");
    let status: serde_json::Value = get("/api/status").await?.json().await?;
    assert_eq!(status["sources"][0]["source"], "github", "{status}");
    assert_eq!(status["sources"][0]["last_5m"], 1, "{status}");

    // A POST without the CSRF token changes nothing.
    let refused = http
        .post(format!("{}/dlq/replay", console.url))
        .form(&[("seq", seq.to_string())])
        .send()
        .await?;
    assert_eq!(refused.status(), 403);
    assert_eq!(pipeline.count("WEBHOOKS_DLQ").await?, 1);

    // The endpoint is fixed; the button re-drives the dead letter.
    sink.set(200);
    let dlq_page = get("/dlq").await?.text().await?;
    assert!(
        dlq_page.contains("permanent failure") || dlq_page.contains("422"),
        "{dlq_page}"
    );
    let token = csrf(&dlq_page)?;
    let done = http
        .post(format!("{}/dlq/replay", console.url))
        .form(&[("csrf", token.clone()), ("seq", seq.to_string())])
        .send()
        .await?;
    assert_eq!(done.status(), 303);
    pipeline.wait_count("WEBHOOKS_DLQ", 0).await?;
    pipeline.wait_settled("billing").await?;
    eventually(
        Duration::from_secs(10),
        "billing to have handled it",
        || async {
            let api: serde_json::Value = get("/api/webhooks/github/77:d-hostile-1")
                .await?
                .json()
                .await?;
            Ok(api["trace"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| g["group"] == "billing" && g["state"] == "handled"))
        },
    )
    .await?;

    // A page asked for under another name (DNS rebinding) is refused.
    let foreign = http
        .get(format!("{}/api/status", console.url))
        .header("host", "attacker.example")
        .send()
        .await?;
    assert_eq!(foreign.status(), 421);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_off_loopback_requires_its_token() -> anyhow::Result<()> {
    let pipeline = Pipeline::start().await?;
    let port = free_port()?;
    // Without a token it does not start.
    let run = pipeline
        .hookline(&["console", "--listen", &format!("0.0.0.0:{port}")])
        .await?;
    run.assert_code(2);
    assert!(run.stderr.contains("token"), "{run:?}");

    let config = pipeline.dir.path().join("with-token.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[console]\ntoken = {{ env = \"CONSOLE_TEST_TOKEN\" }}\n",
            pipeline.base
        ),
    )?;
    let token = "console-test-token-0123456789";
    let console = Console::start(
        &config,
        &format!("0.0.0.0:{port}"),
        &[("CONSOLE_TEST_TOKEN", token)],
    )
    .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = |path: &str| format!("{}{path}", console.url);
    assert_eq!(http.get(url("/api/status")).send().await?.status(), 401);
    assert_eq!(
        http.get(url("/api/status"))
            .bearer_auth("wrong")
            .send()
            .await?
            .status(),
        401
    );
    let page = http.get(url("/")).send().await?;
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    assert_eq!(
        http.post(url("/api/dlq/purge"))
            .json(&serde_json::json!({"all": "yes"}))
            .send()
            .await?
            .status(),
        401
    );
    assert_eq!(
        http.get(url("/api/status"))
            .bearer_auth(token)
            .send()
            .await?
            .status(),
        200
    );

    // The login form sets a strict, script-proof cookie that opens the pages.
    let wrong = http
        .post(url("/login"))
        .form(&[("token", "nope")])
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let login = http
        .post(url("/login"))
        .form(&[("token", token)])
        .send()
        .await?;
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str()?.to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(token),
        "the cookie does not hold the token"
    );
    let session = cookie.split(';').next().unwrap_or_default().to_owned();
    let page = http.get(url("/")).header("cookie", &session).send().await?;
    assert_eq!(page.status(), 200);
    Ok(())
}
