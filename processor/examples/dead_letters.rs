//! Reads and re-drives dead letters (until the `hookline` CLI does it):
//!
//! ```text
//! cargo run -p hookline-processor --example dead_letters -- hookline.toml list [GROUP]
//! cargo run -p hookline-processor --example dead_letters -- hookline.toml redrive SEQ [--delete]
//! ```

use anyhow::{Context as _, bail};
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use hookline_platform::contract::{HEADER_DLQ_ATTEMPTS, HEADER_DLQ_REASON};
use hookline_platform::{config, nats};
use hookline_processor::Config;
use hookline_processor::dead_letter::redrive;
use hookline_proto::{Envelope, Message as _};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((path, command)) = args.split_first() else {
        bail!("usage: dead_letters CONFIG (list [GROUP] | redrive SEQ [--delete])");
    };
    let config: Config = config::load(Some(path.as_ref()), std::env::vars())?;
    let client = nats::connect(&config.nats, "dead-letters").await?;
    let js = jetstream::new(client.clone());
    let dlq = js.get_stream(&config.stream.dlq_name).await?;
    match command {
        [list, rest @ ..] if list == "list" => {
            let filter = rest
                .first()
                .map_or_else(|| "dlq.>".to_owned(), |group| format!("dlq.{group}.>"));
            let mut next = 1;
            loop {
                let letter = match dlq.direct_get_next_for_subject(&filter, Some(next)).await {
                    Ok(letter) => letter,
                    Err(error) if error.kind() == DirectGetErrorKind::NotFound => break,
                    Err(error) => return Err(error.into()),
                };
                let header = |name: &str| {
                    letter
                        .headers
                        .get(name)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                };
                let id = Envelope::decode(letter.payload.clone())
                    .map_or_else(|_| "<undecodable>".into(), |e| e.id);
                println!(
                    "{seq}\t{subject}\t{msg_id}\tid={id}\tattempts={attempts}\t{reason}",
                    seq = letter.sequence,
                    subject = letter.subject,
                    msg_id = header(NATS_MESSAGE_ID.as_ref()),
                    attempts = header(HEADER_DLQ_ATTEMPTS),
                    reason = header(HEADER_DLQ_REASON),
                );
                next = letter.sequence + 1;
            }
        }
        [redo, seq, rest @ ..] if redo == "redrive" => {
            let seq: u64 = seq
                .parse()
                .context("SEQ must be a dead letter's sequence number")?;
            let ack = redrive(&js, &config.stream.dlq_name, seq).await?;
            println!(
                "re-driven as {} #{}{}",
                ack.stream,
                ack.sequence,
                if ack.duplicate { " (duplicate)" } else { "" }
            );
            if rest.iter().any(|a| a == "--delete") {
                dlq.delete_message(seq).await?;
                println!("dead letter {seq} deleted");
            }
        }
        _ => bail!("usage: dead_letters CONFIG (list [GROUP] | redrive SEQ [--delete])"),
    }
    client.flush().await?;
    Ok(())
}
