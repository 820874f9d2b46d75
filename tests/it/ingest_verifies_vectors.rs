//! Every case of both provider vector files (`signature/vectors/`) through the
//! real ingest HTTP path: request → answer → what is in the stream. Valid
//! deliveries are stored once with the provider's id (a redelivery is a
//! duplicate); invalid ones get 401 (or the status the provider's protocol
//! needs) and store nothing; handshakes are answered byte for byte and never
//! stored. Cases with a `now` run against an ingest whose clock is that instant.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookline_signature::{Credentials, ProviderSpec, Request, Verifier};
use hookline_tests::NatsServer;
use hookline_tests::ingest::{TestIngest, settings};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct ExpectResponse {
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    provider: String,
    secret: String,
    #[serde(default)]
    secret_secondary: Option<String>,
    #[serde(default)]
    verify_token: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    method: Option<String>,
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    now: Option<u64>,
    expect: String,
    #[serde(default)]
    expect_response: Option<ExpectResponse>,
}

fn load() -> anyhow::Result<Vec<Case>> {
    let dir = hookline_tests::workspace_root().join("signature/vectors");
    let mut cases = Vec::new();
    for file in ["signatures.json", "signatures2.json"] {
        let text = std::fs::read_to_string(dir.join(file))?;
        cases.extend(serde_json::from_str::<Vec<Case>>(&text)?);
    }
    Ok(cases)
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// The `[[sources]]` table an operator would write for this case.
fn source_toml(case: &Case) -> anyhow::Result<String> {
    let spec: ProviderSpec = case.provider.parse()?;
    let mut secrets = vec![format!("{{ value = {} }}", toml_string(&case.secret))];
    if let Some(secondary) = &case.secret_secondary {
        secrets.push(format!("{{ value = {} }}", toml_string(secondary)));
    }
    let mut text = format!(
        "[[sources]]\nname = {}\nprovider = {}\nsecrets = [{}]\n",
        toml_string(&source_name(case)),
        toml_string(&case.provider),
        secrets.join(", ")
    );
    if spec.uses_public_url() {
        let url = case.url.as_deref().unwrap_or("https://hooks.example.com/");
        let base = url.split('?').next().unwrap_or(url);
        text.push_str(&format!("public_url = {}\n", toml_string(base)));
    }
    if spec.uses_verify_token() {
        let token = case.verify_token.as_deref().unwrap_or("unset");
        text.push_str(&format!(
            "verify_token = {{ value = {} }}\n",
            toml_string(token)
        ));
    }
    if let Some(key) = case
        .public_key
        .as_deref()
        .filter(|_| spec.uses_public_key())
    {
        text.push_str(&format!("public_key = {}\n", toml_string(key)));
    }
    Ok(text)
}

fn source_name(case: &Case) -> String {
    case.id.to_ascii_lowercase()
}

fn at(seconds: Option<u64>) -> SystemTime {
    seconds.map_or_else(SystemTime::now, |s| UNIX_EPOCH + Duration::from_secs(s))
}

/// The id the provider's scheme names for a valid delivery (`None`: ingest
/// falls back to a hash of the body).
fn expected_id(case: &Case) -> anyhow::Result<Option<String>> {
    let spec: ProviderSpec = case.provider.parse()?;
    let mut secrets: Vec<&[u8]> = vec![case.secret.as_bytes()];
    if let Some(secondary) = &case.secret_secondary {
        secrets.push(secondary.as_bytes());
    }
    let verifier = Verifier::with_credentials(
        &spec,
        &Credentials {
            secrets: &secrets,
            verify_token: case.verify_token.as_deref().map(str::as_bytes),
            public_key: case.public_key.as_deref(),
        },
        None,
    )?;
    let mut headers = http::HeaderMap::new();
    for (name, value) in &case.headers {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes())?,
            value.parse()?,
        );
    }
    let body = case.body.clone().unwrap_or_default();
    let mut request = Request::new(&headers, body.as_bytes());
    if let Some(url) = &case.url {
        request = request.with_url(url);
    }
    Ok(verifier.verify(&request, at(case.now))?.id)
}

async fn send(
    client: &reqwest::Client,
    ingest: &TestIngest,
    case: &Case,
) -> anyhow::Result<reqwest::Response> {
    let mut url = ingest.webhook_url(&source_name(case));
    if let Some((_, query)) = case.url.as_deref().and_then(|u| u.split_once('?')) {
        url = format!("{url}?{query}");
    }
    let method = reqwest::Method::from_bytes(case.method.as_deref().unwrap_or("POST").as_bytes())?;
    let mut request = client.request(method, url);
    for (name, value) in &case.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    Ok(request.send().await?)
}

async fn stored(js: &async_nats::jetstream::Context, source: &str) -> anyhow::Result<u64> {
    let stream = js.get_stream("WEBHOOKS").await?;
    let info = stream
        .info_with_subjects(format!("webhooks.{source}.>"))
        .await?;
    use futures::TryStreamExt as _;
    let subjects: Vec<(String, usize)> = info.try_collect().await?;
    Ok(subjects.iter().map(|(_, count)| *count as u64).sum())
}

fn provider_accepted_body(case: &Case) -> anyhow::Result<Option<String>> {
    let spec: ProviderSpec = case.provider.parse()?;
    let verifier = Verifier::with_credentials(
        &spec,
        &Credentials {
            secrets: &[case.secret.as_bytes()],
            verify_token: case.verify_token.as_deref().map(str::as_bytes),
            public_key: case.public_key.as_deref(),
        },
        None,
    )?;
    Ok(verifier
        .accepted_response()
        .map(|answer| String::from_utf8_lossy(&answer.body).into_owned()))
}

/// Checks one case against a running ingest; `Err` says what went wrong.
async fn check(
    client: &reqwest::Client,
    ingest: &TestIngest,
    js: &async_nats::jetstream::Context,
    case: &Case,
) -> anyhow::Result<Result<(), String>> {
    let valid = case.expect == "valid";
    // A handshake that hands over a secret (Asana, Notion) is kept only inside
    // a capture window, as `hookline sources capture` opens it.
    let spec: ProviderSpec = case.provider.parse()?;
    if case.expect_response.is_some() && spec.provider().is_some_and(|p| p.captures_secret()) {
        let store = hookline_ingest::capture::open(js).await?;
        hookline_ingest::capture::open_window(
            &store,
            &source_name(case),
            SystemTime::now(),
            Duration::from_secs(60),
        )
        .await?;
    }
    let response = send(client, ingest, case).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    let count = stored(js, &source_name(case)).await?;
    // HTTP parsing drops a header value's trailing whitespace (RFC 9110 §5.5:
    // it is not part of the value), so GitLab's token with a trailing space
    // arrives equal to the token. The signature crate rejects the raw value
    // (signature/tests/vectors.rs); through HTTP it cannot be told apart.
    let trailing_space = case.headers.values().any(|value| value.ends_with(' '));
    if trailing_space && !valid {
        return Ok(if count <= 1 {
            Ok(())
        } else {
            Err(format!("{count} stored"))
        });
    }
    if let Some(expected) = &case.expect_response {
        if status != expected.status {
            return Ok(Err(format!("status {status}, want {}", expected.status)));
        }
        for (name, value) in &expected.headers {
            let found = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
            if found != Some(value.as_str()) {
                return Ok(Err(format!("header {name}: {found:?}, want {value:?}")));
            }
        }
        if let Some(want) = &expected.body
            && body != want.as_bytes()
        {
            return Ok(Err(format!(
                "body {:?}, want {want:?}",
                String::from_utf8_lossy(&body)
            )));
        }
        // A stored delivery answered as the protocol needs (Adyen's
        // `[accepted]`) is stored once; an answered handshake or a rejection
        // stores nothing (a plain 200 may be either: at most once).
        let accepted_delivery = valid && provider_accepted_body(case)?.is_some();
        let plain_ok = valid
            && status == 200
            && expected.body.as_deref().is_none_or(str::is_empty)
            && expected.headers.is_empty();
        let allowed = if accepted_delivery {
            1..=1
        } else if plain_ok {
            0..=1
        } else {
            0..=0
        };
        if !allowed.contains(&count) {
            return Ok(Err(format!("{count} message(s) stored for this answer")));
        }
        return Ok(Ok(()));
    }
    if !valid {
        if status != 401 {
            return Ok(Err(format!("status {status} for an invalid delivery")));
        }
        if count != 0 {
            return Ok(Err(format!(
                "{count} message(s) stored for an invalid delivery"
            )));
        }
        return Ok(Ok(()));
    }
    if status != 200 {
        return Ok(Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    // Providers that expect a fixed answer to a stored delivery (Adyen's
    // `[accepted]`): stored once, and once only after a redelivery.
    if let Some(accepted) = provider_accepted_body(case)? {
        if body != accepted.as_bytes() || count != 1 {
            return Ok(Err(format!(
                "answer {:?}, {count} stored",
                String::from_utf8_lossy(&body)
            )));
        }
        send(client, ingest, case).await?;
        let after = stored(js, &source_name(case)).await?;
        return Ok(if after == 1 {
            Ok(())
        } else {
            Err(format!("{after} stored after a redelivery"))
        });
    }
    let answer: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(answer) => answer,
        // A signed handshake answered by ingest (Slack url_verification).
        Err(_) if count == 0 => return Ok(Ok(())),
        Err(error) => return Ok(Err(format!("answer is not JSON: {error}"))),
    };
    if answer.get("challenge").is_some() {
        return Ok(if count == 0 {
            Ok(())
        } else {
            Err("handshake stored".into())
        });
    }
    if let Some(id) = expected_id(case)? {
        if answer["id"] != id.as_str() {
            return Ok(Err(format!("stored id {}, want {id}", answer["id"])));
        }
    } else if answer["id"].as_str().is_none_or(str::is_empty) {
        return Ok(Err("no id".into()));
    }
    if count != 1 {
        return Ok(Err(format!("{count} message(s) stored, want 1")));
    }
    // The provider's retry of the same delivery is a duplicate, not a new message.
    let again = send(client, ingest, case).await?;
    let again: serde_json::Value = again.json().await?;
    if again["duplicate"] != true || stored(js, &source_name(case)).await? != 1 {
        return Ok(Err(format!("redelivery not deduplicated: {again}")));
    }
    Ok(Ok(()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vector_through_ingest_gets_its_answer_and_stores_accordingly() -> anyhow::Result<()>
{
    let nats = NatsServer::start().await?;
    let cases = load()?;
    assert!(
        cases.len() >= 200,
        "only {} cases: is a vector file truncated?",
        cases.len()
    );
    // One ingest per recorded instant: its clock is that instant.
    let mut by_now: BTreeMap<Option<u64>, Vec<&Case>> = BTreeMap::new();
    for case in &cases {
        by_now.entry(case.now).or_default().push(case);
    }
    let client = reqwest::Client::new();
    let js = async_nats::jetstream::new(nats.client().await?);
    let mut failures = Vec::new();
    for (now, group) in by_now {
        let mut toml = String::new();
        for case in &group {
            toml.push_str(&source_toml(case)?);
        }
        let config = settings(&nats.url(), &toml)?;
        let clock: Option<hookline_ingest::sources::Clock> =
            now.map(|now| Arc::new(move || at(Some(now))) as hookline_ingest::sources::Clock);
        let ingest = TestIngest::start_with_clock(config, clock).await?;
        for case in group {
            if let Err(problem) = check(&client, &ingest, &js, case).await? {
                failures.push(format!("{} ({}): {problem}", case.id, case.provider));
            }
        }
        ingest.stop().await?;
    }
    assert!(
        failures.is_empty(),
        "{} of {} vector(s) failed through ingest:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    Ok(())
}

/// GET and HEAD reach only the sources whose provider uses them.
#[tokio::test]
async fn get_and_head_reach_only_providers_that_use_them() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let config = settings(
        &nats.url(),
        "[[sources]]\nname = \"gh\"\nprovider = \"github\"\nsecrets = [{ value = \"s\" }]\n\
         [[sources]]\nname = \"trello\"\nprovider = \"trello\"\nsecrets = [{ value = \"s\" }]\npublic_url = \"https://h.example/trello\"\n\
         [[sources]]\nname = \"dropbox\"\nprovider = \"dropbox\"\nsecrets = [{ value = \"s\" }]\n",
    )?;
    let ingest = TestIngest::start(config).await?;
    let client = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(client.get(ingest.webhook_url("gh")).send().await?),
        405
    );
    assert_eq!(
        status(client.head(ingest.webhook_url("gh")).send().await?),
        405
    );
    assert_eq!(
        status(client.head(ingest.webhook_url("trello")).send().await?),
        200
    );
    assert_eq!(
        status(client.get(ingest.webhook_url("trello")).send().await?),
        405
    );
    let answer = client
        .get(format!(
            "{}?challenge=abc123",
            ingest.webhook_url("dropbox")
        ))
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
    assert_eq!(answer.text().await?, "abc123");
    assert_eq!(
        status(client.put(ingest.webhook_url("dropbox")).send().await?),
        405
    );
    ingest.stop().await
}
