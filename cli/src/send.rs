//! `hookline send`: sign a delivery exactly as the source's provider would
//! and POST it to ingest, like `stripe trigger`.

use std::io::Read as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookline_signature::{Credentials, SignRequest, Signer, test_key_pair};
use serde_json::{Value, json};

use crate::args::SendArgs;
use crate::error::{Error, Result};
use crate::samples::{self, Sample};
use crate::settings::Settings;

/// How long a send may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What `send` did, as printed.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Where it went.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The answer body (JSON when ingest answered JSON).
    pub answer: Value,
    /// The webhook id sent in the headers or the body, else as ingest
    /// answered it; `None` when neither says (`--body` for a provider that
    /// reads the id from the body, refused).
    pub id: Option<String>,
    /// The event, when it was sent in the headers or the body.
    pub event: Option<String>,
}

/// Runs `hookline send`.
///
/// # Errors
/// Unknown source (3); a secret that cannot be read, an unreadable body
/// file (2); ingest unreachable or answering non-2xx (1).
pub async fn run(settings: &Settings, args: &SendArgs) -> Result<()> {
    let sent = send(settings, args).await?;
    if args.json {
        let out = json!({
            "url": sent.url,
            "status": sent.status,
            "id": sent.id,
            "event": sent.event,
            "answer": sent.answer,
        });
        println!("{out}");
    } else {
        let answer = match &sent.answer {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        println!(
            "POST {} ({} {}) → {} {answer}",
            sent.url,
            sent.event.as_deref().unwrap_or("-"),
            sent.id.as_deref().unwrap_or("-"),
            sent.status
        );
    }
    if (200..300).contains(&sent.status) {
        Ok(())
    } else {
        let hint = match sent.status {
            401 => {
                ": ingest refused the signature (does it use the same secret, and is the clock right? For Discord and SendGrid sources, `send` signs with a test key pair derived from the source name)"
            }
            404 => ": ingest does not know this source (same config?)",
            503 => ": ingest could not store it (NATS unavailable or stream full); retry later",
            _ => "",
        };
        Err(Error::Failed(format!(
            "ingest answered {}{hint}",
            sent.status
        )))
    }
}

/// Signs and posts; returns the answer whatever its status.
///
/// # Errors
/// As [`run`], except that a non-2xx answer is returned, not an error.
pub async fn send(settings: &Settings, args: &SendArgs) -> Result<Sent> {
    let source = settings.source(&args.source)?;
    let secret = source
        .secrets
        .first()
        .ok_or_else(|| Error::Usage(format!("source {:?} has no secrets", source.name)))?
        .resolve()
        .map_err(|e| {
            Error::Usage(format!(
                "cannot sign for source {:?}: {e} (secrets come from the environment or a file, never the command line)",
                source.name
            ))
        })?;
    // Providers that sign with a private key: sign with the source's test key
    // pair (its public half is what the source must be configured with).
    let test_pair = test_key_pair(&source.provider, source.name.as_bytes())
        .map_err(|e| Error::Usage(format!("source {:?}: {e}", source.name)))?;
    let signing_secret = match &test_pair {
        Some(pair) => pair.private.as_bytes(),
        None => secret.expose().as_bytes(),
    };
    let signer = Signer::with_credentials(
        &source.provider,
        &Credentials {
            secrets: &[signing_secret],
            public_key: source.public_key.as_deref(),
            ..Credentials::default()
        },
    )
    .map_err(|e| {
        Error::Usage(format!(
            "source {:?}: the secret does not suit provider {}: {e}",
            source.name,
            source.provider.scheme()
        ))
    })?;
    let now = SystemTime::now();
    let id = args.id.as_deref().map_or_else(
        || samples::new_id(&source.provider),
        |id| samples::provider_id(&source.provider, id),
    );
    let event = args
        .event
        .clone()
        .unwrap_or_else(|| samples::default_event(&source.provider).to_owned());
    let sample = match &args.body {
        Some(path) => Sample {
            id,
            event,
            body: read_body(path)?,
        },
        None => samples::sample(&source.provider, &id, &event, now),
    };
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}/webhooks/{}", settings.ingest_addr(), source.name));
    let unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("hookline-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::caused("cannot build the HTTP client", e))?;
    // URL-signed providers sign the public URL the source is registered with.
    let public_url = source.public_url.clone().unwrap_or_else(|| url.clone());
    let signed = signer.sign_request(&SignRequest {
        body: &sample.body,
        id: &sample.id,
        event: &sample.event,
        timestamp: unix,
        url: &public_url,
        method: "POST",
    });
    // A query the signer added to the URL (Twilio's bodySHA256) goes along.
    let url = match signed.url.split_once('?') {
        Some((_, query)) if !public_url.contains('?') => format!("{url}?{query}"),
        _ => url,
    };
    let content_type = match signed.body.first() {
        Some(b'{' | b'[') | None => "application/json",
        Some(_) => "application/x-www-form-urlencoded",
    };
    let mut request = client
        .post(&url)
        .header("content-type", content_type)
        .body(signed.body.clone());
    let mut sent_text = String::from_utf8_lossy(&signed.body).into_owned();
    sent_text.push('\n');
    sent_text.push_str(&signed.url);
    for (name, value) in signed.headers {
        sent_text.push('\n');
        sent_text.push_str(&value);
        request = request.header(name.as_str(), value);
    }
    // With --body, providers that read the id or event from the body get
    // the file's, not ours: report only what was actually sent.
    // (GitHub's id `<hook>:<delivery>` travels as two headers.)
    let was_sent = |text: &str| {
        (!text.is_empty() && text.split(':').all(|part| sent_text.contains(part)))
            .then(|| text.to_owned())
    };
    let response = request.send().await.map_err(|e| {
        Error::caused(
            format!("cannot POST to {url} (is ingest running? `hookline up` starts it)"),
            e,
        )
    })?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| Error::caused(format!("cannot read the answer from {url}"), e))?;
    let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Sent {
        url,
        status,
        id: was_sent(&sample.id).or_else(|| answer["id"].as_str().map(str::to_owned)),
        event: was_sent(&sample.event),
        answer,
    })
}

fn read_body(path: &std::path::Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| Error::caused("cannot read the body from standard input", e))?;
        return Ok(body);
    }
    std::fs::read(path)
        .map_err(|e| Error::Usage(format!("cannot read --body {}: {e}", path.display())))
}
