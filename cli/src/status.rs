//! `hookline status`: streams, consumer groups, dead letters per group, the
//! idempotency bucket, and cluster health, as tables or JSON.

use std::collections::BTreeMap;

use async_nats::jetstream::{self, stream};
use futures::TryStreamExt as _;

use crate::args::StatusArgs;
use crate::error::{Error, Result};
use crate::jetstream::{durable_consumers, filters, open_stream};
use crate::report::{
    ClusterReport, ConsumerReport, GroupReport, IdempotencyReport, NatsReport, PeerReport,
    StatusReport, StreamReport,
};
use crate::settings::Settings;
use crate::table::{self, Table};
use crate::when::format_nats;

/// Runs `hookline status`.
///
/// # Errors
/// NATS unreachable (1); the `WEBHOOKS` stream missing (3).
pub async fn run(settings: &Settings, args: &StatusArgs) -> Result<()> {
    let js = settings.connect().await?;
    let report = collect(settings, &js).await?;
    if args.json {
        println!("{}", json_line(&report));
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// A report as one line of JSON (what `--json` prints).
pub fn json_line<T: serde::Serialize>(report: &T) -> String {
    serde_json::to_string(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Gathers everything `status` shows.
///
/// # Errors
/// As [`run`].
pub async fn collect(settings: &Settings, js: &jetstream::Context) -> Result<StatusReport> {
    let names = &settings.ingest.stream;
    let mut main = open_stream(js, &names.name).await?;
    let main_info = main
        .info()
        .await
        .map_err(|e| Error::caused("cannot read stream info", e))?
        .clone();
    let mut streams = vec![stream_report(&main_info)];
    let dead_letters = match open_stream(js, &names.dlq_name).await {
        Ok(mut dlq) => {
            let info = dlq
                .info()
                .await
                .map_err(|e| Error::caused("cannot read stream info", e))?
                .clone();
            streams.push(stream_report(&info));
            dead_letters_per_group(&dlq).await?
        }
        Err(Error::NotFound(_)) => BTreeMap::new(),
        Err(other) => return Err(other),
    };
    let mut groups = Vec::new();
    for consumer in durable_consumers(&main).await? {
        groups.push(GroupReport {
            group: consumer.name.clone(),
            dead_letters: dead_letters.get(&consumer.name).copied().unwrap_or(0),
            consumer: Some(ConsumerReport {
                pending: consumer.num_pending,
                ack_pending: consumer.num_ack_pending,
                redelivered: consumer.num_redelivered,
                ack_floor: consumer.ack_floor.stream_sequence,
                delivered: consumer.delivered.stream_sequence,
                waiting: consumer.num_waiting,
                filters: filters(&consumer),
            }),
        });
    }
    for (group, count) in &dead_letters {
        if !groups.iter().any(|g| &g.group == group) {
            groups.push(GroupReport {
                group: group.clone(),
                dead_letters: *count,
                consumer: None,
            });
        }
    }
    let bucket = settings.idempotency_bucket();
    let idempotency = match js.get_key_value(bucket).await {
        Ok(store) => match store.status().await {
            Ok(status) => IdempotencyReport {
                bucket: bucket.to_owned(),
                records: Some(status.values()),
                bytes: Some(status.info.state.bytes),
                ttl: Some(humantime::format_duration(status.max_age()).to_string()),
            },
            Err(e) => return Err(Error::caused("cannot read the idempotency bucket", e)),
        },
        Err(_) => IdempotencyReport {
            bucket: bucket.to_owned(),
            records: None,
            bytes: None,
            ttl: None,
        },
    };
    let server = js.client().server_info();
    Ok(StatusReport {
        nats: NatsReport {
            url: settings.ingest.nats.redacted_url(),
            server: server.server_name,
            version: server.version,
            cluster: server.cluster,
            jetstream: server.jetstream,
        },
        streams,
        groups,
        idempotency,
        cluster: cluster_report(main_info.cluster.as_ref(), main_info.config.num_replicas),
    })
}

fn stream_report(info: &stream::Info) -> StreamReport {
    let state = &info.state;
    StreamReport {
        name: info.config.name.clone(),
        subjects: info.config.subjects.clone(),
        messages: state.messages,
        bytes: state.bytes,
        first_seq: state.first_sequence,
        last_seq: state.last_sequence,
        first_time: format_nats(state.first_timestamp),
        last_time: format_nats(state.last_timestamp),
        consumers: state.consumer_count,
        replicas: info.config.num_replicas,
        max_age: humantime::format_duration(info.config.max_age).to_string(),
        max_bytes: info.config.max_bytes,
    }
}

fn cluster_report(cluster: Option<&stream::ClusterInfo>, replicas: usize) -> ClusterReport {
    let Some(cluster) = cluster.filter(|c| c.name.is_some() || !c.replicas.is_empty()) else {
        return ClusterReport {
            health: "single server (no replicas)".to_owned(),
            name: None,
            leader: None,
            peers: Vec::new(),
        };
    };
    let peers: Vec<PeerReport> = cluster
        .replicas
        .iter()
        .map(|p| PeerReport {
            name: p.name.clone(),
            current: p.current,
            offline: p.offline,
            lag: p.lag.unwrap_or(0),
            active: format!("{:.1}s", p.active.as_secs_f64()),
        })
        .collect();
    let healthy_peers = peers.iter().filter(|p| p.current && !p.offline).count();
    let health = match (&cluster.leader, replicas) {
        (None, _) => "no leader: the stream cannot accept writes",
        (Some(_), n) if healthy_peers + 1 >= n => "healthy",
        (Some(_), _) => "degraded: a replica is offline or behind",
    };
    ClusterReport {
        health: health.to_owned(),
        name: cluster.name.clone(),
        leader: cluster.leader.clone(),
        peers,
    }
}

/// Dead letters per group (`dlq.<group>.>`).
async fn dead_letters_per_group(dlq: &stream::Stream) -> Result<BTreeMap<String, u64>> {
    let subjects: Vec<(String, usize)> = dlq
        .info_with_subjects("dlq.>")
        .await
        .map_err(|e| Error::caused("cannot read the dead-letter subjects", e))?
        .try_collect()
        .await
        .map_err(|e| Error::caused("cannot read the dead-letter subjects", e))?;
    let mut per_group = BTreeMap::new();
    for (subject, count) in subjects {
        if let Some(group) = subject.split('.').nth(1) {
            *per_group.entry(group.to_owned()).or_insert(0) += count as u64;
        }
    }
    Ok(per_group)
}

/// The report as tables.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    let nats = &report.nats;
    out.push_str(&format!(
        "NATS {}  server {} {}{}\n\n",
        nats.url,
        nats.server,
        nats.version,
        nats.cluster
            .as_deref()
            .map(|c| format!(", cluster {c}"))
            .unwrap_or_default()
    ));
    let mut streams = Table::new(&[
        "STREAM", "MESSAGES", "BYTES", "FIRST", "LAST", "REPLICAS", "MAX AGE",
    ]);
    for s in &report.streams {
        streams.row(vec![
            s.name.clone(),
            s.messages.to_string(),
            table::bytes(s.bytes),
            s.first_time.clone(),
            s.last_time.clone(),
            s.replicas.to_string(),
            s.max_age.clone(),
        ]);
    }
    out.push_str(&streams.render());
    out.push('\n');
    let mut groups = Table::new(&[
        "GROUP",
        "PENDING",
        "ACK PENDING",
        "REDELIVERED",
        "ACK FLOOR",
        "WAITING",
        "DEAD LETTERS",
        "FILTERS",
    ]);
    for g in &report.groups {
        let cell = |f: fn(&ConsumerReport) -> String| {
            g.consumer.as_ref().map_or_else(|| "-".to_owned(), f)
        };
        groups.row(vec![
            g.group.clone(),
            cell(|c| c.pending.to_string()),
            cell(|c| c.ack_pending.to_string()),
            cell(|c| c.redelivered.to_string()),
            cell(|c| c.ack_floor.to_string()),
            cell(|c| c.waiting.to_string()),
            g.dead_letters.to_string(),
            g.consumer
                .as_ref()
                .map_or_else(|| "(no consumer)".to_owned(), |c| c.filters.join(" ")),
        ]);
    }
    if groups.is_empty() {
        out.push_str("no consumer groups yet (start a processor)\n");
    } else {
        out.push_str(&groups.render());
    }
    out.push('\n');
    let kv = &report.idempotency;
    match kv.records {
        Some(records) => out.push_str(&format!(
            "IDEMPOTENCY {}: {records} records, {}, kept {}\n",
            kv.bucket,
            table::bytes(kv.bytes.unwrap_or(0)),
            kv.ttl.as_deref().unwrap_or("-")
        )),
        None => out.push_str(&format!(
            "IDEMPOTENCY {}: not created yet (a processor creates it)\n",
            kv.bucket
        )),
    }
    let cluster = &report.cluster;
    let peers: Vec<String> = cluster
        .peers
        .iter()
        .map(|p| {
            format!(
                "{} ({}{})",
                p.name,
                p.state(),
                if p.lag > 0 {
                    format!(", lag {}", p.lag)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    let stream_name = report.streams.first().map_or("-", |s| s.name.as_str());
    out.push_str(&format!(
        "CLUSTER {}{}{}\n",
        cluster.health,
        cluster
            .leader
            .as_deref()
            .map(|l| format!("; {stream_name} leader {l}"))
            .unwrap_or_default(),
        if peers.is_empty() {
            String::new()
        } else {
            format!("; replicas {}", peers.join(", "))
        }
    ));
    out
}
