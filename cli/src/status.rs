//! `hookline status`: streams, consumer groups, dead letters per group, the
//! idempotency bucket, and cluster health, as tables or JSON.

use std::collections::BTreeMap;

use async_nats::jetstream::{self, stream};
use futures::TryStreamExt as _;
use serde_json::{Value, json};

use crate::args::StatusArgs;
use crate::error::{Error, Result};
use crate::jetstream::{durable_consumers, filters, open_stream};
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
        println!("{report}");
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// Gathers everything `status` shows, as JSON.
///
/// # Errors
/// As [`run`].
pub async fn collect(settings: &Settings, js: &jetstream::Context) -> Result<Value> {
    let names = &settings.ingest.stream;
    let mut main = open_stream(js, &names.name).await?;
    let main_info = main
        .info()
        .await
        .map_err(|e| Error::caused("cannot read stream info", e))?
        .clone();
    let mut streams = vec![stream_json(&main_info)];
    let dead_letters = match open_stream(js, &names.dlq_name).await {
        Ok(mut dlq) => {
            let info = dlq
                .info()
                .await
                .map_err(|e| Error::caused("cannot read stream info", e))?
                .clone();
            streams.push(stream_json(&info));
            dead_letters_per_group(&dlq).await?
        }
        Err(Error::NotFound(_)) => BTreeMap::new(),
        Err(other) => return Err(other),
    };
    let mut groups = Vec::new();
    let mut seen = Vec::new();
    for consumer in durable_consumers(&main).await? {
        let dlq = dead_letters.get(&consumer.name).copied().unwrap_or(0);
        seen.push(consumer.name.clone());
        groups.push(json!({
            "group": consumer.name,
            "pending": consumer.num_pending,
            "ack_pending": consumer.num_ack_pending,
            "redelivered": consumer.num_redelivered,
            "ack_floor": consumer.ack_floor.stream_sequence,
            "delivered": consumer.delivered.stream_sequence,
            "waiting": consumer.num_waiting,
            "dead_letters": dlq,
            "filters": filters(&consumer),
        }));
    }
    for (group, count) in &dead_letters {
        if !seen.contains(group) {
            groups.push(json!({ "group": group, "dead_letters": count, "consumer": null }));
        }
    }
    let bucket = settings.idempotency_bucket();
    let idempotency = match js.get_key_value(bucket).await {
        Ok(store) => match store.status().await {
            Ok(status) => json!({
                "bucket": bucket,
                "records": status.values(),
                "bytes": status.info.state.bytes,
                "ttl": humantime::format_duration(status.max_age()).to_string(),
            }),
            Err(e) => return Err(Error::caused("cannot read the idempotency bucket", e)),
        },
        Err(_) => json!({ "bucket": bucket, "records": null }),
    };
    let server = js.client().server_info();
    Ok(json!({
        "nats": {
            "url": settings.ingest.nats.redacted_url(),
            "server": server.server_name,
            "version": server.version,
            "cluster": server.cluster,
            "jetstream": server.jetstream,
        },
        "streams": streams,
        "groups": groups,
        "idempotency": idempotency,
        "cluster": cluster_json(main_info.cluster.as_ref(), main_info.config.num_replicas),
    }))
}

fn stream_json(info: &stream::Info) -> Value {
    let state = &info.state;
    json!({
        "name": info.config.name,
        "subjects": info.config.subjects,
        "messages": state.messages,
        "bytes": state.bytes,
        "first_seq": state.first_sequence,
        "last_seq": state.last_sequence,
        "first_time": format_nats(state.first_timestamp),
        "last_time": format_nats(state.last_timestamp),
        "consumers": state.consumer_count,
        "replicas": info.config.num_replicas,
        "max_age": humantime::format_duration(info.config.max_age).to_string(),
        "max_bytes": info.config.max_bytes,
    })
}

fn cluster_json(cluster: Option<&stream::ClusterInfo>, replicas: usize) -> Value {
    let Some(cluster) = cluster.filter(|c| c.name.is_some() || !c.replicas.is_empty()) else {
        return json!({ "health": "single server (no replicas)", "leader": null, "peers": [] });
    };
    let peers: Vec<Value> = cluster
        .replicas
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "current": p.current,
                "offline": p.offline,
                "lag": p.lag.unwrap_or(0),
                "active": format!("{:.1}s", p.active.as_secs_f64()),
            })
        })
        .collect();
    let healthy_peers = cluster
        .replicas
        .iter()
        .filter(|p| p.current && !p.offline)
        .count();
    let health = match (&cluster.leader, replicas) {
        (None, _) => "no leader: the stream cannot accept writes",
        (Some(_), n) if healthy_peers + 1 >= n => "healthy",
        (Some(_), _) => "degraded: a replica is offline or behind",
    };
    json!({
        "name": cluster.name,
        "leader": cluster.leader,
        "peers": peers,
        "health": health,
    })
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
pub fn render(report: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let nats = &report["nats"];
    out.push_str(&format!(
        "NATS {}  server {} {}{}\n\n",
        text(&nats["url"]),
        text(&nats["server"]),
        text(&nats["version"]),
        nats["cluster"]
            .as_str()
            .map(|c| format!(", cluster {c}"))
            .unwrap_or_default()
    ));
    let mut streams = Table::new(&[
        "STREAM", "MESSAGES", "BYTES", "FIRST", "LAST", "REPLICAS", "MAX AGE",
    ]);
    for s in report["streams"].as_array().into_iter().flatten() {
        streams.row(vec![
            text(&s["name"]),
            text(&s["messages"]),
            table::bytes(s["bytes"].as_u64().unwrap_or(0)),
            text(&s["first_time"]),
            text(&s["last_time"]),
            text(&s["replicas"]),
            text(&s["max_age"]),
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
    for g in report["groups"].as_array().into_iter().flatten() {
        let filters = g["filters"]
            .as_array()
            .map(|f| f.iter().map(text).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "(no consumer)".to_owned());
        groups.row(vec![
            text(&g["group"]),
            text(&g["pending"]),
            text(&g["ack_pending"]),
            text(&g["redelivered"]),
            text(&g["ack_floor"]),
            text(&g["waiting"]),
            text(&g["dead_letters"]),
            filters,
        ]);
    }
    if groups.is_empty() {
        out.push_str("no consumer groups yet (start a processor)\n");
    } else {
        out.push_str(&groups.render());
    }
    out.push('\n');
    let kv = &report["idempotency"];
    match kv["records"].as_u64() {
        Some(records) => out.push_str(&format!(
            "IDEMPOTENCY {}: {records} records, {}, kept {}\n",
            text(&kv["bucket"]),
            table::bytes(kv["bytes"].as_u64().unwrap_or(0)),
            text(&kv["ttl"])
        )),
        None => out.push_str(&format!(
            "IDEMPOTENCY {}: not created yet (a processor creates it)\n",
            text(&kv["bucket"])
        )),
    }
    let cluster = &report["cluster"];
    let peers: Vec<String> = cluster["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} ({}{})",
                text(&p["name"]),
                if p["offline"].as_bool() == Some(true) {
                    "offline"
                } else if p["current"].as_bool() == Some(true) {
                    "current"
                } else {
                    "behind"
                },
                match p["lag"].as_u64() {
                    Some(lag) if lag > 0 => format!(", lag {lag}"),
                    _ => String::new(),
                }
            )
        })
        .collect();
    out.push_str(&format!(
        "CLUSTER {}{}{}\n",
        text(&cluster["health"]),
        cluster["leader"]
            .as_str()
            .map(|l| format!("; {} leader {l}", text(&report["streams"][0]["name"])))
            .unwrap_or_default(),
        if peers.is_empty() {
            String::new()
        } else {
            format!("; replicas {}", peers.join(", "))
        }
    ));
    out
}
