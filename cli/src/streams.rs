//! `hookline streams apply`: the one way to change the streams. Compares
//! `WEBHOOKS` and `WEBHOOKS_DLQ` with the config's `[stream]`, prints every
//! difference with what applying it would do (how many stored messages a
//! lower limit deletes, a lower replica count, rerouted subjects), then asks
//! (or takes `--yes`) and creates or updates the streams.
//!
//! The binaries never change an existing stream: ingest creates missing
//! ones, everything else only checks and warns
//! (`hookline_platform::streams`).

use std::io::Write as _;
use std::time::SystemTime;

use async_nats::jetstream::{self, consumer, stream};
use hookline_platform::streams::{self as platform, Difference, Effect, differences, human_bytes};
use serde_json::json;

use crate::args::StreamsCommand;
use crate::confirm::confirm;
use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::when::rfc3339;

/// What applying the config does to one stream.
#[derive(Debug)]
enum Plan {
    /// It does not exist: created.
    Create(stream::Config),
    /// It exists; these settings change (none: nothing to do).
    Update {
        wanted: stream::Config,
        changes: Vec<Change>,
    },
}

/// One setting to change, with what it does to stored messages.
#[derive(Debug)]
struct Change {
    difference: Difference,
    /// The consequence in words (`deletes 26 messages stored before …`).
    consequence: String,
    /// Stored messages it deletes now (when known).
    deletes: u64,
}

/// Runs `hookline streams …`.
///
/// # Errors
/// Invalid `[stream]` settings or a refused change (2), NATS trouble or a
/// refused update (1).
pub async fn run(settings: &Settings, command: &StreamsCommand) -> Result<()> {
    let StreamsCommand::Apply { yes, dry_run, json } = command;
    let config = &settings.ingest.stream;
    config
        .validate()
        .map_err(|e| Error::Usage(hookline_platform::error::chain(&e)))?;
    let js = settings.connect().await?;
    let mut plans = Vec::new();
    for wanted in config.wanted() {
        plans.push(plan(&js, wanted).await?);
    }
    let pending = plans.iter().any(|p| match p {
        Plan::Create(_) => true,
        Plan::Update { changes, .. } => !changes.is_empty(),
    });
    if *json {
        println!("{}", report(&plans));
    } else {
        print(&plans);
    }
    if !pending || *dry_run {
        return Ok(());
    }
    let immutable: Vec<String> = plans
        .iter()
        .flat_map(|p| match p {
            Plan::Update { wanted, changes } => changes
                .iter()
                .filter(|c| c.difference.effect == Effect::Immutable)
                .map(|c| format!("{} {}", wanted.name, c.difference.setting))
                .collect(),
            Plan::Create(_) => Vec::new(),
        })
        .collect();
    if !immutable.is_empty() {
        return Err(Error::Usage(format!(
            "nothing applied: nats-server cannot change {} in place (create a new stream and move the consumers)",
            immutable.join(", ")
        )));
    }
    let deletes: u64 = plans
        .iter()
        .flat_map(|p| match p {
            Plan::Update { changes, .. } => changes.iter().map(|c| c.deletes).collect(),
            Plan::Create(_) => Vec::new(),
        })
        .sum();
    let question = if deletes > 0 {
        format!("Apply? This deletes {deletes} stored messages for good. [y/N] ")
    } else {
        "Apply these changes? [y/N] ".to_owned()
    };
    if !yes && !confirm(&question, "pass --yes to apply without asking")? {
        return Err(Error::Failed("not applied".to_owned()));
    }
    for plan in plans {
        apply(&js, plan).await?;
    }
    if !json {
        println!("applied");
    }
    Ok(())
}

async fn plan(js: &jetstream::Context, wanted: stream::Config) -> Result<Plan> {
    let current = platform::current(js, &wanted.name)
        .await
        .map_err(|e| Error::caused(format!("cannot read stream {}", wanted.name), e))?;
    let Some(current) = current else {
        return Ok(Plan::Create(wanted));
    };
    let differences = differences(&current, &wanted);
    let mut changes = Vec::with_capacity(differences.len());
    for difference in differences {
        let (consequence, deletes) = consequence(js, &wanted, &difference).await?;
        changes.push(Change {
            difference,
            consequence,
            deletes,
        });
    }
    Ok(Plan::Update { wanted, changes })
}

/// What applying `difference` does, and how many stored messages it deletes.
async fn consequence(
    js: &jetstream::Context,
    wanted: &stream::Config,
    difference: &Difference,
) -> Result<(String, u64)> {
    Ok(match difference.effect {
        Effect::Safe => ("no stored message is deleted".to_owned(), 0),
        Effect::LowersDurability => (
            "lowers durability: stored messages survive fewer node losses".to_owned(),
            0,
        ),
        Effect::Reroutes => (
            "publishes to a removed subject are refused (stored messages stay)".to_owned(),
            0,
        ),
        Effect::Immutable => ("cannot be changed in place".to_owned(), 0),
        Effect::Fills => (fills(js, wanted, difference.setting).await?, 0),
        Effect::Deletes => {
            let deletes = deleted_by(js, wanted, difference.setting).await?;
            match deletes {
                Deleted::Count(0, _) => (
                    "DELETES stored messages once they pass the lower limit (none now)".to_owned(),
                    0,
                ),
                Deleted::Count(n, what) => (format!("DELETES {n} stored messages {what}"), n),
                Deleted::Unknown => (
                    "DELETES older messages on subjects over the new limit".to_owned(),
                    0,
                ),
            }
        }
    })
}

enum Deleted {
    Count(u64, String),
    Unknown,
}

/// How many stored messages the lower limit `setting` of `wanted` deletes.
async fn deleted_by(
    js: &jetstream::Context,
    wanted: &stream::Config,
    setting: &str,
) -> Result<Deleted> {
    let read = |e| Error::caused(format!("cannot read stream {}", wanted.name), e);
    let mut stream = js.get_stream(&wanted.name).await.map_err(read)?;
    let state = stream
        .info()
        .await
        .map_err(|e| Error::caused(format!("cannot read stream {}", wanted.name), e))?
        .state
        .clone();
    Ok(match setting {
        "max_age" => {
            let cutoff = SystemTime::now()
                .checked_sub(wanted.max_age)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let kept = stored_since(&stream, cutoff).await?;
            Deleted::Count(
                state.messages.saturating_sub(kept),
                format!("(those stored before {})", rfc3339(cutoff)),
            )
        }
        "max_bytes" => {
            let limit = u64::try_from(wanted.max_bytes).unwrap_or(0);
            let over = state.bytes.saturating_sub(limit);
            let average = state.bytes.checked_div(state.messages).unwrap_or(1).max(1);
            Deleted::Count(
                over.div_ceil(average).min(state.messages),
                format!(
                    "(the oldest; {} stored, the limit becomes {})",
                    human_bytes(state.bytes),
                    human_bytes(limit)
                ),
            )
        }
        "max_msgs" => {
            let limit = u64::try_from(wanted.max_messages).unwrap_or(0);
            Deleted::Count(
                state.messages.saturating_sub(limit),
                format!("(the oldest; {} stored)", state.messages),
            )
        }
        _ => Deleted::Unknown,
    })
}

/// A lower size or count limit on a `discard: new` stream deletes nothing,
/// but refuses publishes while the stream is over it.
async fn fills(js: &jetstream::Context, wanted: &stream::Config, setting: &str) -> Result<String> {
    let mut stream = js
        .get_stream(&wanted.name)
        .await
        .map_err(|e| Error::caused(format!("cannot read stream {}", wanted.name), e))?;
    let state = stream
        .info()
        .await
        .map_err(|e| Error::caused(format!("cannot read stream {}", wanted.name), e))?
        .state
        .clone();
    let over = match setting {
        "max_bytes" => (wanted.max_bytes > 0
            && state.bytes > u64::try_from(wanted.max_bytes).unwrap_or(0))
        .then(|| format!("{} stored", human_bytes(state.bytes))),
        "max_msgs" => (wanted.max_messages > 0
            && state.messages > u64::try_from(wanted.max_messages).unwrap_or(0))
        .then(|| format!("{} messages stored", state.messages)),
        _ => None,
    };
    Ok(match over {
        Some(stored) => format!(
            "REFUSES new webhooks now (ingest answers 503) until old ones expire: {stored}; nothing is deleted"
        ),
        None => "nothing is deleted; new webhooks are refused (503) once the stream is that full"
            .to_owned(),
    })
}

/// Messages stored at or after `cutoff`: the pending count of a short-lived
/// consumer that starts there (nothing is delivered).
async fn stored_since(stream: &stream::Stream, cutoff: SystemTime) -> Result<u64> {
    let start_time = time::OffsetDateTime::from(cutoff);
    let mut probe = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: std::time::Duration::from_secs(30),
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::caused("cannot count the messages a lower max_age deletes", e))?;
    let pending = probe
        .info()
        .await
        .map_err(|e| Error::caused("cannot count the messages a lower max_age deletes", e))?
        .num_pending;
    let name = probe.cached_info().name.clone();
    // It would expire by itself (inactive_threshold); remove it now.
    let _ = stream.delete_consumer(&name).await;
    Ok(pending)
}

async fn apply(js: &jetstream::Context, plan: Plan) -> Result<()> {
    match plan {
        Plan::Create(wanted) => {
            let name = wanted.name.clone();
            js.create_stream(wanted)
                .await
                .map_err(|e| Error::caused(format!("cannot create stream {name}"), e))?;
        }
        Plan::Update { wanted, changes } if !changes.is_empty() => {
            let name = wanted.name.clone();
            js.update_stream(wanted)
                .await
                .map_err(|e| Error::caused(format!("cannot update stream {name}"), e))?;
        }
        Plan::Update { .. } => {}
    }
    Ok(())
}

fn print(plans: &[Plan]) {
    let mut out = std::io::stdout().lock();
    for plan in plans {
        let _ = match plan {
            Plan::Create(wanted) => writeln!(
                out,
                "{}: does not exist; will be created ({})",
                wanted.name,
                wanted.subjects.join(", ")
            ),
            Plan::Update { wanted, changes } if changes.is_empty() => {
                writeln!(out, "{}: matches [stream]", wanted.name)
            }
            Plan::Update { wanted, changes } => {
                let _ = writeln!(
                    out,
                    "{}: {} setting(s) differ from [stream]",
                    wanted.name,
                    changes.len()
                );
                for change in changes {
                    let d = &change.difference;
                    let _ = writeln!(
                        out,
                        "  {:<22} {} → {}   {}",
                        d.setting, d.current, d.wanted, change.consequence
                    );
                }
                Ok(())
            }
        };
    }
}

fn report(plans: &[Plan]) -> serde_json::Value {
    let streams: Vec<serde_json::Value> = plans
        .iter()
        .map(|plan| match plan {
            Plan::Create(wanted) => json!({ "stream": wanted.name, "action": "create" }),
            Plan::Update { wanted, changes } => json!({
                "stream": wanted.name,
                "action": if changes.is_empty() { "none" } else { "update" },
                "changes": changes.iter().map(|c| json!({
                    "setting": c.difference.setting,
                    "current": c.difference.current,
                    "wanted": c.difference.wanted,
                    "effect": format!("{:?}", c.difference.effect).to_lowercase(),
                    "consequence": c.consequence,
                    "deletes": c.deletes,
                })).collect::<Vec<_>>(),
            }),
        })
        .collect();
    json!({ "streams": streams })
}
