//! The console in a real browser (headless Chromium over WebDriver) on a
//! real pipeline: the overview shows the groups, searching an id opens its
//! page with the body, a hostile body does not run, a dead letter is
//! re-driven with the button and ends handled; off loopback the browser
//! must sign in with the token first. With `CONSOLE_SCREENSHOTS=<dir>` the
//! first test saves the four pages there (`scripts/console-screenshots`).

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use hookline_tests::browser::Browser;
use hookline_tests::cli::{Console, Pipeline, Sink, wait_lines};
use hookline_tests::eventually;
use hookline_tests::process::free_port;

const HOSTILE: &str = r#"{"action":"opened","note":"<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"}"#;

async fn screenshot(browser: &Browser, name: &str) -> anyhow::Result<()> {
    if let Some(dir) = std::env::var_os("CONSOLE_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(format!("{name}.png")),
            browser.client.screenshot().await?,
        )?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_and_re_drives_a_webhook_in_a_real_browser() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start().await?;
    let sink = Sink::start(422).await?;
    pipeline
        .add_group("billing", r#"["webhooks.github.>"]"#, &sink.handler())
        .await?;
    let (audit, audit_file) = pipeline.file_handler("audit");
    pipeline
        .add_group("audit", r#"["webhooks.>"]"#, &audit)
        .await?;
    for (source, id, event) in [
        ("stripe", "evt_1QdA0001", "invoice.paid"),
        ("stripe", "evt_1QdA0002", "charge.succeeded"),
        ("shopify", "7f3c2a10-0001", "orders/create"),
    ] {
        pipeline
            .hookline(&["send", source, "--id", id, "--event", event])
            .await?
            .assert_code(0);
    }
    let body = pipeline.dir.path().join("hostile.json");
    std::fs::write(&body, HOSTILE)?;
    let body = body.to_string_lossy().into_owned();
    pipeline
        .hookline(&[
            "send",
            "github",
            "--id",
            "77:d-browser-1",
            "--event",
            "pull_request",
            "--body",
            &body,
        ])
        .await?
        .assert_code(0);
    pipeline.wait_count("WEBHOOKS_DLQ", 1).await?;
    pipeline.wait_settled("billing").await?;
    wait_lines(&audit_file, 4).await?;

    let console = Console::start(
        &pipeline.config,
        &format!("127.0.0.1:{}", free_port()?),
        &[],
    )
    .await?;
    let browser = Browser::start().await?;
    let page = &browser.client;

    // The overview shows both groups and the DLQ.
    page.goto(&format!("{}/", console.url)).await?;
    let groups = page.find(Locator::Css("#groups")).await?.text().await?;
    assert!(
        groups.contains("billing") && groups.contains("audit"),
        "{groups}"
    );
    let streams = page.find(Locator::Css("#streams")).await?.text().await?;
    assert!(streams.contains("WEBHOOKS_DLQ"), "{streams}");
    screenshot(&browser, "overview").await?;

    // Searching the id lists it; its link opens its page with the body.
    let search = page
        .find(Locator::Css("form.search input[name=id]"))
        .await?;
    search.send_keys("d-browser-1").await?;
    page.find(Locator::Css("form.search button"))
        .await?
        .click()
        .await?;
    let link = page
        .wait()
        .for_element(Locator::Css("#webhooks td.id a"))
        .await?;
    assert_eq!(link.text().await?, "77:d-browser-1");
    page.goto(&format!("{}/webhooks", console.url)).await?;
    screenshot(&browser, "webhooks").await?;
    page.goto(&format!("{}/webhooks?id=d-browser-1", console.url))
        .await?;
    page.find(Locator::Css("#webhooks td.id a"))
        .await?
        .click()
        .await?;
    let shown = page
        .wait()
        .for_element(Locator::Css("#body"))
        .await?
        .text()
        .await?;
    assert!(
        shown.contains("<script>document.title='pwned'</script>") && shown.contains("onerror"),
        "the hostile body shows as text: {shown}"
    );
    // Nothing in it ran: the title is the console's, no element came from the body.
    let title = page.title().await?;
    assert!(title.starts_with("Webhook 77:d-browser-1"), "{title}");
    let injected = page
        .execute(
            "return document.querySelectorAll('script, img').length",
            Vec::new(),
        )
        .await?;
    assert_eq!(injected, serde_json::json!(0));
    let states = page.find(Locator::Css("#groups")).await?.text().await?;
    assert!(states.contains("dead-lettered"), "{states}");
    screenshot(&browser, "webhook").await?;

    // The dead letter: tick it, re-drive it with the button.
    page.goto(&format!("{}/dlq", console.url)).await?;
    screenshot(&browser, "dlq").await?;
    sink.set(200);
    page.find(Locator::Css("#letters input[type=checkbox]"))
        .await?
        .click()
        .await?;
    page.find(Locator::Css("#redrive-selected"))
        .await?
        .click()
        .await?;
    let notice = page
        .wait()
        .for_element(Locator::Css("p.notice"))
        .await?
        .text()
        .await?;
    assert!(notice.starts_with("Re-drove 1 dead letter"), "{notice}");
    pipeline.wait_count("WEBHOOKS_DLQ", 0).await?;
    let webhook_url = format!("{}/webhooks/github/77:d-browser-1", console.url);
    eventually(
        Duration::from_secs(15),
        "billing to have handled it",
        || async {
            page.goto(&webhook_url).await?;
            let states = page.find(Locator::Css("#groups")).await?.text().await?;
            Ok(states
                .lines()
                .any(|l| l.starts_with("billing") && l.contains("handled")))
        },
    )
    .await?;
    assert_eq!(page.title().await?, "Webhook 77:d-browser-1 · Hookline");
    browser.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_the_browser_signs_in_with_the_token() -> anyhow::Result<()> {
    let pipeline = Pipeline::start().await?;
    let config = pipeline.dir.path().join("with-token.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[console]\ntoken = {{ env = \"CONSOLE_TEST_TOKEN\" }}\n",
            pipeline.base
        ),
    )?;
    let token = "browser-test-token-0123456789";
    let console = Console::start(
        &config,
        &format!("0.0.0.0:{}", free_port()?),
        &[("CONSOLE_TEST_TOKEN", token)],
    )
    .await?;
    let browser = Browser::start().await?;
    let page = &browser.client;

    page.goto(&format!("{}/dlq", console.url)).await?;
    assert!(page.current_url().await?.path().ends_with("/login"));
    assert!(
        page.find(Locator::Css("#groups")).await.is_err(),
        "nothing shown before signing in"
    );
    let field = page.find(Locator::Css("input[name=token]")).await?;
    field.send_keys("not-the-token").await?;
    page.find(Locator::Css("form.login button"))
        .await?
        .click()
        .await?;
    assert!(page.current_url().await?.path().ends_with("/login"));
    let field = page.find(Locator::Css("input[name=token]")).await?;
    field.send_keys(token).await?;
    page.find(Locator::Css("form.login button"))
        .await?
        .click()
        .await?;
    let heading = page
        .wait()
        .for_element(Locator::Css("h1"))
        .await?
        .text()
        .await?;
    assert_eq!(heading, "Overview");
    // The session cookie is not readable by scripts (HttpOnly).
    let cookies = page.execute("return document.cookie", Vec::new()).await?;
    assert_eq!(cookies, serde_json::json!(""));
    browser.close().await
}
