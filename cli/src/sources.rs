//! `hookline sources capture <source> [--for 10m]`: opens the window during
//! which ingest keeps the secret a provider's handshake hands over (Asana,
//! Notion). Outside a window such handshakes are refused.

use std::time::SystemTime;

use serde_json::json;

use crate::args::{CaptureArgs, SourcesCommand};
use crate::error::{Error, Result};
use crate::settings::Settings;

/// Runs a `sources` command.
///
/// # Errors
/// Unknown source (3); a source whose provider hands over no secret (2);
/// NATS unreachable or the bucket refused (1).
pub async fn run(settings: &Settings, command: &SourcesCommand) -> Result<()> {
    match command {
        SourcesCommand::Capture(args) => capture(settings, args).await,
    }
}

async fn capture(settings: &Settings, args: &CaptureArgs) -> Result<()> {
    let source = settings.source(&args.source)?;
    let captures = source
        .provider
        .provider()
        .is_some_and(hookline_signature::Provider::captures_secret);
    if !captures {
        return Err(Error::Usage(format!(
            "source {:?} (provider {}) gets no secret from a handshake; only asana and notion sources do",
            source.name,
            source.provider.scheme()
        )));
    }
    let js = settings.connect().await?;
    let store = hookline_ingest::capture::open(&js)
        .await
        .map_err(|e| Error::caused("cannot open the capture bucket", e))?;
    let until = hookline_ingest::capture::open_window(
        &store,
        &source.name,
        SystemTime::now(),
        args.duration,
    )
    .await
    .map_err(|e| Error::caused("cannot open the capture window", e))?;
    let until_text = humantime::format_rfc3339_seconds(until).to_string();
    if args.json {
        println!("{}", json!({ "source": source.name, "until": until_text }));
    } else {
        println!(
            "capture window for {} open until {until_text}: create the webhook at the provider now; the first handshake's secret is kept and the window closes",
            source.name
        );
    }
    Ok(())
}
