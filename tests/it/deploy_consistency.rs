//! The production topology agrees with the binaries: docker-compose.yml,
//! deploy/hookline.toml, the NATS node configs, the proxy, Prometheus (scrape
//! targets and alerts) and the Grafana dashboard. Overrides are loaded
//! through the real config types, ports are compared with what the binaries
//! listen on, and every metric the dashboard or an alert queries is one the
//! running binaries expose (ingest and a processor driven against a real
//! nats-server and scraped). No Docker engine is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hookline_ingest::config::IngestSettings;
use hookline_platform::config;
use hookline_platform::secret::SecretSource;
use hookline_tests::process::{Process, free_port, wait_ready};
use hookline_tests::{NatsServer, workspace_root};
use serde_yaml::Value;

fn root() -> PathBuf {
    workspace_root()
}

fn yaml(path: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(root().join(path)).with_context(|| path.to_owned())?;
    let mut value: Value = serde_yaml::from_str(&text).with_context(|| path.to_owned())?;
    value.apply_merge()?;
    Ok(value)
}

fn str_list(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// `${VAR:?message}` → a placeholder, `${VAR:-default}` → the default.
fn interpolate(text: &str) -> String {
    let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
        return text.to_owned();
    };
    match inner.split_once(":-") {
        Some((_, default)) => default.to_owned(),
        None => "placeholder-secret".to_owned(),
    }
}

/// A service's environment as `(name, value)` pairs.
fn environment(service: &Value) -> Vec<(String, String)> {
    service["environment"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let value = match v {
                Value::String(s) => interpolate(s),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.as_str()?.to_owned(), value))
        })
        .collect()
}

/// Services by the binary they run.
fn services_running(compose: &Value, binary: &str) -> Vec<(String, Value)> {
    compose["services"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter(|(_, s)| str_list(&s["command"]).first().map(String::as_str) == Some(binary))
        .filter_map(|(k, s)| Some((k.as_str()?.to_owned(), s.clone())))
        .collect()
}

fn port(addr: std::net::SocketAddr) -> String {
    addr.port().to_string()
}

#[test]
fn compose_services_load_through_the_real_config_types_and_agree_on_ports() -> anyhow::Result<()> {
    let compose = yaml("docker-compose.yml")?;
    let deploy_config = root().join("deploy/hookline.toml");

    // Three NATS nodes, each with its own config and volume, routes to all.
    for n in 1..=3 {
        let service = &compose["services"][format!("nats-{n}").as_str()];
        let volumes = str_list(&service["volumes"]);
        let conf = format!("deploy/nats/nats-{n}.conf");
        assert!(
            volumes.iter().any(|v| v.starts_with(&format!("./{conf}:"))),
            "nats-{n} mounts {conf}: {volumes:?}"
        );
        let text = std::fs::read_to_string(root().join(&conf))?;
        assert!(text.contains(&format!("server_name: nats-{n}")), "{conf}");
        for m in 1..=3 {
            assert!(
                text.contains(&format!("nats-route://nats-{m}:6222")),
                "{conf} routes to nats-{m}"
            );
        }
        assert!(text.contains("sync_interval: always"), "{conf}");
    }

    // Two ingest instances: the shared file plus their overrides load as ingest's config.
    let ingests = services_running(&compose, "hookline-ingest");
    assert_eq!(ingests.len(), 2, "two ingest instances");
    let mut ingest_ports = BTreeSet::new();
    let mut ingest_metrics = BTreeSet::new();
    for (name, service) in &ingests {
        let env = environment(service);
        let volumes = str_list(&service["volumes"]);
        let config_path = env
            .iter()
            .find(|(k, _)| k == "HOOKLINE_CONFIG")
            .map(|(_, v)| v.clone())
            .context("HOOKLINE_CONFIG")?;
        assert!(
            volumes.contains(&format!("./deploy/hookline.toml:{config_path}:ro")),
            "{name} mounts deploy/hookline.toml at {config_path}"
        );
        let settings: IngestSettings = config::load(Some(&deploy_config), env.clone())
            .with_context(|| format!("{name}: its HOOKLINE_* overrides must name real keys"))?;
        settings.validate()?;
        assert_eq!(settings.stream.replicas, 3);
        assert_eq!(settings.nats.url.split(',').count(), 3, "all three nodes");
        for source in &settings.sources {
            for secret in &source.secrets {
                if let SecretSource::Env(var) = secret {
                    assert!(
                        env.iter().any(|(k, _)| k == var),
                        "{name} passes {var} (source {})",
                        source.name
                    );
                }
            }
        }
        ingest_ports.insert(port(settings.ingest.listen));
        ingest_metrics.insert(port(
            settings.ingest.metrics_listen.context("metrics_listen")?,
        ));
    }

    // Three processor instances of one group.
    let processors = services_running(&compose, "hookline-processor");
    assert_eq!(processors.len(), 3, "three processor instances");
    let mut processor_metrics = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for (name, service) in &processors {
        let env = environment(service);
        let loaded: hookline_processor::Config = config::load(Some(&deploy_config), env)
            .with_context(|| format!("{name}: its HOOKLINE_* overrides must name real keys"))?;
        loaded.validate()?;
        assert!(loaded.processor.handler.is_some(), "{name} has a handler");
        assert!(
            loaded.processor.max_ack_pending >= 3 * loaded.processor.concurrency * 2,
            "max_ack_pending fits three instances"
        );
        groups.insert(loaded.processor.group.clone());
        processor_metrics.insert(port(loaded.processor.metrics_listen));
    }
    assert_eq!(groups.len(), 1, "the instances share one group");

    // The proxy sends webhooks to both ingest instances on their listen port.
    let nginx = std::fs::read_to_string(root().join("deploy/nginx.conf"))?;
    let proxy_volumes = str_list(&compose["services"]["proxy"]["volumes"]);
    assert!(
        proxy_volumes
            .iter()
            .any(|v| v.starts_with("./deploy/nginx.conf:"))
    );
    for (name, _) in &ingests {
        for p in &ingest_ports {
            assert!(
                nginx.contains(&format!("server {name}:{p}")),
                "nginx upstream {name}:{p}"
            );
        }
    }

    // Prometheus scrapes every instance on its metrics port, and loads the alerts.
    let prometheus = yaml("deploy/prometheus/prometheus.yml")?;
    let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for job in prometheus["scrape_configs"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let job_name = job["job_name"].as_str().unwrap_or_default().to_owned();
        for config in job["static_configs"].as_sequence().into_iter().flatten() {
            targets
                .entry(job_name.clone())
                .or_default()
                .extend(str_list(&config["targets"]));
        }
    }
    let expected = |services: &[(String, Value)], ports: &BTreeSet<String>| -> Vec<String> {
        services
            .iter()
            .flat_map(|(name, _)| ports.iter().map(move |p| format!("{name}:{p}")))
            .collect()
    };
    assert_eq!(
        targets["hookline-ingest"],
        expected(&ingests, &ingest_metrics)
    );
    assert_eq!(
        targets["hookline-processor"],
        expected(&processors, &processor_metrics)
    );
    let prometheus_volumes = str_list(&compose["services"]["prometheus"]["volumes"]);
    for rule_file in str_list(&prometheus["rule_files"]) {
        assert!(
            prometheus_volumes
                .iter()
                .any(|v| v.ends_with(&format!(":{rule_file}:ro"))),
            "{rule_file} is mounted"
        );
    }

    // Grafana: the dashboard's datasource is the provisioned one, at the provisioned path.
    let datasources = yaml("deploy/grafana/provisioning/datasources/prometheus.yml")?;
    let uid = datasources["datasources"][0]["uid"]
        .as_str()
        .context("uid")?
        .to_owned();
    let provider = yaml("deploy/grafana/provisioning/dashboards/hookline.yml")?;
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .context("path")?;
    let grafana_volumes = str_list(&compose["services"]["grafana"]["volumes"]);
    assert!(grafana_volumes.contains(&format!("./deploy/grafana/dashboards:{path}:ro")));
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("deploy/grafana/dashboards/hookline.json"),
    )?)?;
    let panels: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["type"] != "row")
        .collect();
    assert!(panels.len() >= 10, "a dashboard worth the name");
    for panel in panels {
        assert_eq!(
            panel["datasource"]["uid"],
            uid.as_str(),
            "{}",
            panel["title"]
        );
        assert!(
            panel["targets"]
                .as_array()
                .is_some_and(|targets| !targets.is_empty()),
            "{}",
            panel["title"]
        );
    }

    // The image ships every binary the services run.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile"))?;
    for binary in ["hookline-ingest", "hookline-processor", "hookline"] {
        assert!(
            dockerfile.contains(&format!("/src/target/release/{binary} "))
                || dockerfile.contains(&format!("/src/target/release/{binary}\n"))
                || dockerfile.contains(&format!("/{binary} \\")),
            "Dockerfile copies {binary}"
        );
    }
    Ok(())
}

/// Every `hookline_*` metric named in the dashboard and the alert rules,
/// without histogram suffixes.
fn queried_metrics() -> anyhow::Result<BTreeSet<String>> {
    let mut exprs = Vec::new();
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("deploy/grafana/dashboards/hookline.json"),
    )?)?;
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap_or_default().to_owned());
        }
    }
    let alerts = yaml("deploy/prometheus/alerts.yml")?;
    for group in alerts["groups"].as_sequence().into_iter().flatten() {
        for rule in group["rules"].as_sequence().into_iter().flatten() {
            exprs.push(rule["expr"].as_str().unwrap_or_default().to_owned());
        }
    }
    let mut names = BTreeSet::new();
    for expr in exprs {
        for (i, _) in expr.match_indices("hookline_") {
            let name: String = expr[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.insert(base_name(&name));
        }
    }
    Ok(names)
}

fn base_name(name: &str) -> String {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
        .to_owned()
}

/// Metric names in a Prometheus text exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| n.starts_with("hookline_"))
        .map(base_name)
        .collect()
}

async fn scrape(url: &str) -> anyhow::Result<String> {
    Ok(reqwest::get(url).await?.error_for_status()?.text().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_query_is_exposed_by_the_binaries()
-> anyhow::Result<()> {
    let queried = queried_metrics()?;
    assert!(queried.len() >= 12, "{queried:?}");

    // The deploy config itself, pointed at a test server with free ports.
    let mut server = NatsServer::start().await?;
    let config = std::fs::read_to_string(root().join("deploy/hookline.toml"))?;
    let (listen, metrics, processor_metrics) = (free_port()?, free_port()?, free_port()?);
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink_url = format!("http://{}/hooks", sink.local_addr()?);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // First call fails (a retry, then a redelivery), the rest succeed.
            async move {
                if n == 0 {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(sink, app).await;
    });
    let url = server.url();
    let listen_addr = format!("127.0.0.1:{listen}");
    let metrics_addr = format!("127.0.0.1:{metrics}");
    let processor_addr = format!("127.0.0.1:{processor_metrics}");
    let env: Vec<(&str, &str)> = vec![
        ("HOOKLINE_NATS_URL", &url),
        ("HOOKLINE_NATS_CONNECT_TIMEOUT", "5s"),
        ("HOOKLINE_STREAM_REPLICAS", "1"),
        ("HOOKLINE_STREAM_MAX_BYTES", "64MiB"),
        ("HOOKLINE_STREAM_DLQ_MAX_BYTES", "16MiB"),
        ("HOOKLINE_INGEST_LISTEN", &listen_addr),
        ("HOOKLINE_INGEST_METRICS_LISTEN", &metrics_addr),
        ("HOOKLINE_PROCESSOR_METRICS_LISTEN", &processor_addr),
        ("HOOKLINE_PROCESSOR_HANDLER__HTTP__URL", &sink_url),
        ("HOOKLINE_PROCESSOR_BACKOFF__INITIAL", "100ms"),
        ("GITHUB_WEBHOOK_SECRET", "deploy-test-secret"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
        (
            "SVIX_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        ("SHOPIFY_WEBHOOK_SECRET", "x"),
        ("SLACK_SIGNING_SECRET", "x"),
    ];
    let mut ingest = Process::spawn("hookline-ingest", &config, &env)?;
    wait_ready(
        &mut ingest,
        &format!("http://{metrics_addr}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    let mut processor = Process::spawn("hookline-processor", &config, &env)?;
    wait_ready(
        &mut processor,
        &format!("http://{processor_addr}/readyz"),
        Duration::from_secs(20),
    )
    .await?;

    // Traffic: a good delivery (handled after one retry), a forged one.
    let client = reqwest::Client::new();
    let body = br#"{"zen":"metrics"}"#;
    let spec: hookline_signature::ProviderSpec = "github".parse()?;
    let headers =
        hookline_tests::ingest::signed_headers(&spec, "deploy-test-secret", body, "1:m", "ping")?;
    let webhook = format!("http://{listen_addr}/webhooks/github");
    let answer = client
        .post(&webhook)
        .headers(headers.clone())
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let forged = client
        .post(&webhook)
        .headers(headers.clone())
        .body(b"{}".to_vec())
        .send()
        .await?;
    assert_eq!(forged.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(30);
    let processor_text = loop {
        let text = scrape(&format!("http://{processor_addr}/metrics")).await?;
        if text.contains("outcome=\"success\"")
            && text.contains("hookline_processor_consumer_pending")
        {
            break text;
        }
        if Instant::now() > deadline {
            bail!("processor metrics incomplete:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // NATS gone: the next delivery is a 503.
    server.stop().await?;
    let later = br#"{"zen":"later"}"#;
    let headers =
        hookline_tests::ingest::signed_headers(&spec, "deploy-test-secret", later, "1:n", "ping")?;
    let unavailable = client
        .post(&webhook)
        .headers(headers)
        .body(later.to_vec())
        .send()
        .await?;
    assert_eq!(unavailable.status(), 503);
    let ingest_text = scrape(&format!("http://{metrics_addr}/metrics")).await?;

    let mut available = exposed(&ingest_text);
    available.extend(exposed(&processor_text));
    // Emitted only on rare paths (a delivery held back by the backoff gate):
    // the processor's own constant names it.
    available.insert(hookline_processor::metrics::DEFERRED_TOTAL.to_owned());
    let missing: Vec<&String> = queried.difference(&available).collect();
    assert!(
        missing.is_empty(),
        "the dashboard or alerts query metrics no binary exposes: {missing:?}\nexposed: {available:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_node_configs_are_valid_for_the_pinned_server() -> anyhow::Result<()> {
    let binary = hookline_tests::nats_server_binary()?;
    for n in 1..=3 {
        let conf = root().join(format!("deploy/nats/nats-{n}.conf"));
        let output = tokio::process::Command::new(&binary)
            .arg("-c")
            .arg(&conf)
            .arg("-t")
            .output()
            .await?;
        assert!(
            output.status.success(),
            "nats-server -t {}: {}{}",
            conf.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The local topology (`scripts/topology`, tests/it/topology.rs) and compose
/// run the same services: every service `docker compose up` starts is run
/// locally, except Grafana (no host package), and each one's configuration
/// is generated from the same files with no compose hostname left over.
#[test]
fn the_local_topology_runs_every_compose_service_but_grafana() -> anyhow::Result<()> {
    use hookline_tests::topology::compose::Compose;
    use hookline_tests::topology::{Options, Topology, mapping::Ports};

    let vars: std::collections::BTreeMap<String, String> = [
        "GITHUB_WEBHOOK_SECRET",
        "STRIPE_WEBHOOK_SECRET",
        "SVIX_WEBHOOK_SECRET",
        "SHOPIFY_WEBHOOK_SECRET",
        "SLACK_SIGNING_SECRET",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), "placeholder-secret".to_owned()))
    .collect();
    let compose_file = root().join("docker-compose.yml");
    let compose = Compose::load(&compose_file, &vars)?;
    let state = tempfile::tempdir()?;
    let topology = Topology::plan(&Options {
        compose_file,
        state_dir: state.path().to_path_buf(),
        ports: Ports::Free,
        vars,
        bin_dir: hookline_tests::topology::bin_dir()?,
        prometheus_timing: None,
    })?;
    let mut local: Vec<String> = topology.services().to_vec();
    let skipped: Vec<&str> = topology.skipped().iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(skipped, ["grafana"], "{:?}", topology.skipped());
    local.push("grafana".to_owned());
    local.sort();
    let up: Vec<String> = compose.default_services().map(|s| s.name.clone()).collect();
    assert_eq!(
        local, up,
        "scripts/topology and docker compose up run the same services"
    );
    for expected in [
        "app",
        "ingest-1",
        "ingest-2",
        "nats-1",
        "nats-2",
        "nats-3",
        "processor-1",
        "processor-2",
        "processor-3",
        "prometheus",
        "proxy",
    ] {
        assert!(
            topology.services().iter().any(|s| s == expected),
            "{expected}"
        );
    }
    // The processors deliver to the demo app, not to a dead letter.
    let config = std::fs::read_to_string(
        state
            .path()
            .join("services/processor-1/etc/hookline/hookline.toml"),
    )?;
    assert!(!config.contains("nats-1:"), "hostnames mapped: {config}");
    assert!(topology.address("app", 9000).is_ok(), "the app listens");
    let processor = &compose.services["processor-1"];
    assert!(
        processor
            .environment
            .iter()
            .any(|(k, v)| k == "HOOKLINE_PROCESSOR_HANDLER__HTTP__URL"
                && v == "http://app:9000/hooks"),
        "processors deliver to the app service"
    );
    // Hookline services wait for healthy NATS; every service has a healthcheck.
    for service in compose.default_services().filter(|s| s.name != "grafana") {
        assert!(
            service.health_url.is_some(),
            "{} has an HTTP healthcheck",
            service.name
        );
        if service.build && service.name != "app" {
            for node in ["nats-1", "nats-2", "nats-3"] {
                assert!(
                    service.depends_on.iter().any(|(d, c)| d == node
                        && *c == hookline_tests::topology::compose::Condition::Healthy),
                    "{} waits for a healthy {node}",
                    service.name
                );
            }
        }
    }
    Ok(())
}

/// The images compose pulls are the versions the tests run: the pinned
/// nats-server, and Debian's nginx and Prometheus. (Grafana is not run here.)
#[test]
fn compose_image_tags_are_the_versions_the_tests_run() -> anyhow::Result<()> {
    use hookline_tests::topology::runtime::{host_tool, tool_version};

    let compose = yaml("docker-compose.yml")?;
    let image = |service: &str| -> anyhow::Result<String> {
        compose["services"][service]["image"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{service} has no image"))
    };
    let nats = tool_version(&hookline_tests::nats_server_binary()?, "--version")?;
    assert_eq!(nats, hookline_tests::NATS_SERVER_VERSION);
    for n in 1..=3 {
        let tag = image(&format!("nats-{n}"))?;
        assert!(
            tag.starts_with(&format!("nats:{nats}")),
            "nats-{n}: {tag} vs nats-server {nats}"
        );
    }
    let nginx = tool_version(&host_tool("nginx")?, "-v")?;
    let tag = image("proxy")?;
    assert!(
        tag.starts_with(&format!("nginx:{nginx}")),
        "proxy: {tag} vs nginx {nginx}"
    );
    let prometheus = tool_version(&host_tool("prometheus")?, "--version")?;
    let tag = image("prometheus")?;
    assert_eq!(
        tag,
        format!("prom/prometheus:v{prometheus}"),
        "vs prometheus {prometheus}"
    );
    Ok(())
}
