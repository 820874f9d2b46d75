//! docker-compose.yml's topology, run for real as local processes from the
//! files under `deploy/` (`hookline_tests::topology`, what `scripts/topology`
//! runs): signed webhooks through nginx reach the demo app once each;
//! Prometheus scrapes all five Hookline targets; after traffic every query
//! of every Grafana panel returns data from Prometheus's HTTP API; killing
//! the NATS stream leader loses nothing; stopping a processor fires
//! `HooklineInstanceDown`.
//!
//! Test-only change through the mapping: Prometheus scrapes and evaluates
//! every 1 s (deploy/: 15 s) and every alert's `for` is 5 s (deploy/: 2 m
//! and more), so the alert fires within seconds. Grafana does not run here:
//! its panel queries go to Prometheus directly, with `$__rate_interval` as
//! 5m (the whole test fits in it).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hookline_tests::chaos::{Answer, GH_SECRET, Sender};
use hookline_tests::topology::mapping::Ports;
use hookline_tests::topology::{Options, PrometheusTiming, Topology, bin_dir};
use hookline_tests::workspace_root;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const NATS_NODES: [&str; 3] = ["nats-1", "nats-2", "nats-3"];
/// Every Hookline target: (service, metrics port in the container).
const TARGETS: [(&str, u16); 5] = [
    ("ingest-1", 9090),
    ("ingest-2", 9090),
    ("processor-1", 9091),
    ("processor-2", 9091),
    ("processor-3", 9091),
];

/// The compose variables: the secrets `.env.example` lists.
fn secrets() -> BTreeMap<String, String> {
    [
        ("GITHUB_WEBHOOK_SECRET", GH_SECRET),
        ("STRIPE_WEBHOOK_SECRET", "whsec_topology_stripe"),
        (
            "SVIX_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        ("SHOPIFY_WEBHOOK_SECRET", "topology-shopify"),
        ("SLACK_SIGNING_SECRET", "topology-slack"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn start(state: &std::path::Path) -> anyhow::Result<Topology> {
    let mut topology = Topology::plan(&Options {
        compose_file: workspace_root().join("docker-compose.yml"),
        state_dir: state.to_path_buf(),
        ports: Ports::Free,
        vars: secrets(),
        bin_dir: bin_dir()?,
        prometheus_timing: Some(PrometheusTiming {
            interval: "1s".to_owned(),
            rule_for: "5s".to_owned(),
        }),
    })?;
    topology.start_all(Duration::from_secs(90)).await?;
    Ok(topology)
}

/// Polls `check` every 250 ms until it returns `Some`, for at most `within`.
async fn eventually<T, F>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last = format!("{error:#}"),
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {within:?} {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prometheus's HTTP API.
struct Prometheus {
    client: reqwest::Client,
    base: String,
}

impl Prometheus {
    /// The result vector of an instant query.
    async fn query(&self, expr: &str) -> anyhow::Result<Vec<Value>> {
        let body: Value = self
            .client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .send()
            .await?
            .json()
            .await?;
        if body["status"] != "success" {
            bail!("query {expr}: {body}");
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Alerts firing now.
    async fn firing(&self) -> anyhow::Result<Vec<Value>> {
        let body: Value = self
            .client
            .get(format!("{}/api/v1/alerts", self.base))
            .send()
            .await?
            .json()
            .await?;
        Ok(body["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .cloned()
            .collect())
    }
}

/// Calls the demo app received, by `Hookline-Id`.
async fn received(client: &reqwest::Client, app: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    Ok(client
        .get(format!("{app}/received"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The ids answered 2xx, and a snapshot of what the sink got.
fn acked(sender: &Sender, prefix: &str) -> Vec<String> {
    sender
        .ledger
        .snapshot()
        .into_iter()
        .filter(|(id, answers)| id.starts_with(prefix) && answers.contains(&Answer::Ok))
        .map(|(id, _)| id)
        .collect()
}

async fn stream_leader(nats_url: &str) -> anyhow::Result<Option<String>> {
    let js = async_nats::jetstream::new(hookline_tests::chaos::connect(nats_url).await?);
    let mut stream = js.get_stream("WEBHOOKS").await?;
    let info = stream.info().await?;
    Ok(info.cluster.as_ref().and_then(|c| c.leader.clone()))
}

/// Every `expr` of every panel of every dashboard under deploy/grafana/dashboards/.
fn panel_queries() -> anyhow::Result<Vec<(String, String)>> {
    let dir = workspace_root().join("deploy/grafana/dashboards");
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| path.display().to_string())?;
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"]
                    .as_str()
                    .context("a panel target without expr")?;
                let expr = expr.replace("$__rate_interval", "5m");
                assert!(
                    !expr.contains('$'),
                    "{}: a Grafana variable this test does not know: {expr}",
                    panel["title"]
                );
                queries.push((panel["title"].as_str().unwrap_or_default().to_owned(), expr));
            }
        }
    }
    Ok(queries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_cross_the_compose_topology_and_its_monitoring_sees_them() -> anyhow::Result<()> {
    let began = Instant::now();
    let state = tempfile::Builder::new()
        .prefix("hookline-topology-")
        .tempdir()?;
    let mut topology = start(state.path()).await?;
    let started = began.elapsed();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let proxy = topology.url("proxy", 80)?;
    let app = topology.url("app", 9000)?;
    let prometheus = Prometheus {
        client: client.clone(),
        base: topology.url("prometheus", 9090)?,
    };
    let nats_url = NATS_NODES
        .iter()
        .map(|n| topology.address(n, 4222).map(|a| format!("nats://{a}")))
        .collect::<anyhow::Result<Vec<_>>>()?
        .join(",");

    // Prometheus scrapes every Hookline instance.
    let targets: Vec<String> = TARGETS
        .iter()
        .map(|(s, p)| topology.address(s, *p))
        .collect::<anyhow::Result<_>>()?;
    eventually(
        Duration::from_secs(90),
        "up == 1 for the five Hookline targets",
        || async {
            let up = prometheus.query(r#"up{job=~"hookline-.*"} == 1"#).await?;
            let mut instances: Vec<String> = up
                .iter()
                .filter_map(|s| s["metric"]["instance"].as_str().map(str::to_owned))
                .collect();
            instances.sort();
            let mut expected = targets.clone();
            expected.sort();
            if instances == expected {
                return Ok(Some(()));
            }
            anyhow::bail!("up: {instances:?}, expected {expected:?}")
        },
    )
    .await?;

    // Signed webhooks through nginx reach the app once each.
    let sender = Sender::new()?;
    for n in 0..60 {
        let answer = sender.send(&proxy, &format!("steady-{n}")).await;
        assert_eq!(answer, Answer::Ok, "steady-{n} through nginx");
    }
    // A provider's retry (a duplicate) and a delivery signed with the wrong secret.
    assert_eq!(sender.send(&proxy, "steady-0").await, Answer::Ok);
    let forged = client
        .post(format!("{proxy}/webhooks/github"))
        .headers(hookline_tests::ingest::signed_headers(
            &"github".parse()?,
            "not-the-secret",
            b"{}",
            "forged-1",
            "push",
        )?)
        .body("{}")
        .send()
        .await?;
    assert_eq!(forged.status(), 401, "a forged signature through nginx");
    let steady = acked(&sender, "1:steady-");
    eventually(
        Duration::from_secs(30),
        "the steady webhooks at the app",
        || async {
            let got = received(&client, &app).await?;
            Ok(steady.iter().all(|id| got.contains_key(id)).then_some(()))
        },
    )
    .await?;
    let got = received(&client, &app).await?;
    let twice: Vec<_> = steady.iter().filter(|id| got[*id] != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert!(
        !got.contains_key("forged-1"),
        "a forged webhook reached the app"
    );

    // The stream leader is SIGKILLed under load, then restarted: nothing acknowledged is lost.
    let leader = stream_leader(&nats_url)
        .await?
        .context("WEBHOOKS has no leader")?;
    assert!(
        NATS_NODES.contains(&leader.as_str()),
        "leader {leader} is a compose service"
    );
    let stop = CancellationToken::new();
    let load = sender.run(
        vec![proxy.clone()],
        "leader",
        4,
        Duration::from_millis(20),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    topology.kill(&leader).await?;
    let before = acked(&sender, "1:leader-").len();
    eventually(
        Duration::from_secs(30),
        "writes accepted after the leader died",
        || async { Ok((acked(&sender, "1:leader-").len() > before + 20).then_some(())) },
    )
    .await?;
    topology.start(&leader)?;
    topology
        .wait_healthy(
            &leader,
            tokio::time::Instant::now() + Duration::from_secs(30),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    load.await?;
    let during = acked(&sender, "1:leader-");
    let lost = eventually(
        Duration::from_secs(60),
        "every acknowledged webhook at the app",
        || async {
            let got = received(&client, &app).await?;
            let missing: Vec<String> = during
                .iter()
                .filter(|id| !got.contains_key(*id))
                .cloned()
                .collect();
            Ok(missing.is_empty().then_some(missing))
        },
    )
    .await;
    let got = received(&client, &app).await?;
    let duplicates: u64 = got.values().map(|n| n.saturating_sub(1)).sum();
    lost.with_context(|| {
        let missing: Vec<&String> = during.iter().filter(|id| !got.contains_key(*id)).collect();
        format!("lost after the leader ({leader}) died: {missing:?}")
    })?;
    // The documented bound of a killed connection: a processor connected to
    // the dead node may re-run its in-flight handlers (concurrency 32).
    assert!(duplicates <= 3 * 32, "{duplicates} duplicate calls");

    // One processor stops: HooklineInstanceDown fires for it.
    let victim = topology.address("processor-2", 9091)?;
    topology
        .stop("processor-2", Duration::from_secs(15))
        .await?;
    let stopped = Instant::now();
    eventually(
        Duration::from_secs(30),
        "HooklineInstanceDown firing for processor-2",
        || async {
            Ok(prometheus
                .firing()
                .await?
                .iter()
                .any(|a| {
                    a["labels"]["alertname"] == "HooklineInstanceDown"
                        && a["labels"]["instance"] == victim.as_str()
                })
                .then_some(()))
        },
    )
    .await?;
    // Every node down: ingest answers 503 (and counts it for the dashboard).
    for node in NATS_NODES {
        topology.kill(node).await?;
    }
    // Each instance may wait out its publish timeout (5 s) before the 503.
    let body = br#"{"delivery":"no-nats"}"#;
    let unavailable = client
        .post(format!("{proxy}/webhooks/github"))
        .headers(hookline_tests::ingest::signed_headers(
            &"github".parse()?,
            GH_SECRET,
            body,
            "no-nats",
            "push",
        )?)
        .body(body.to_vec())
        .timeout(Duration::from_secs(40))
        .send()
        .await?;
    assert_eq!(
        unavailable.status(),
        503,
        "no NATS: 503 through nginx (both instances tried)"
    );

    // Every query of every Grafana panel answers with data.
    let queries = panel_queries()?;
    assert!(queries.len() >= 10, "{queries:?}");
    let empty = eventually(
        Duration::from_secs(30),
        "every panel query has data",
        || async {
            let mut empty = Vec::new();
            for (title, expr) in &queries {
                if prometheus.query(expr).await?.is_empty() {
                    empty.push(format!("{title}: {expr}"));
                }
            }
            Ok(empty.is_empty().then_some(empty))
        },
    )
    .await;
    if empty.is_err() {
        let mut still = Vec::new();
        for (title, expr) in &queries {
            if prometheus.query(expr).await?.is_empty() {
                still.push(format!("{title}: {expr}"));
            }
        }
        bail!(
            "panel queries without data (a renamed metric?):\n{}",
            still.join("\n")
        );
    }

    eprintln!(
        "topology: healthy after {started:?}; {} steady + {} under leader loss handled, {duplicates} duplicate calls; \
         alert fired {:?} after the stop; total {:?}; restarts at start: {:?}",
        steady.len(),
        during.len(),
        stopped.elapsed(),
        began.elapsed(),
        topology.restarted()
    );
    Ok(())
}
