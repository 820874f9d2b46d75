//! `hookline-topology`: docker-compose.yml's topology as local processes
//! (`scripts/topology` builds and runs it). Prints the URLs, runs until
//! Ctrl-C or SIGTERM, then stops every service in reverse start order.
//!
//! ```text
//! hookline-topology [--compose docker-compose.yml] [--state .hookline/topology] [--free-ports]
//! ```
//! Compose's `${VAR}`s come from the environment, then `.env` next to the
//! compose file. See docs/operating.md ("Running the topology without containers").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hookline_tests::topology::mapping::Ports;
use hookline_tests::topology::{Options, Topology, bin_dir};
use tokio::signal::unix::{SignalKind, signal};

/// `KEY=value` lines of an `.env` file (comments and blank lines skipped).
fn dotenv(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .with_context(|| format!("{}: expected KEY=value", path.display()))?;
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            vars.insert(key.trim().to_owned(), value.to_owned());
        }
    }
    Ok(vars)
}

fn options() -> anyhow::Result<Options> {
    let mut compose_file = PathBuf::from("docker-compose.yml");
    let mut state_dir = PathBuf::from(".hookline/topology");
    let mut ports = Ports::Published;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--compose" => compose_file = args.next().context("--compose FILE")?.into(),
            "--state" => state_dir = args.next().context("--state DIR")?.into(),
            "--free-ports" => ports = Ports::Free,
            other => bail!(
                "unknown argument {other:?}: hookline-topology [--compose FILE] [--state DIR] [--free-ports]"
            ),
        }
    }
    let compose_dir = compose_file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    // Compose's precedence: the shell's environment over `.env`.
    let mut vars = dotenv(&compose_dir.join(".env"))?;
    vars.extend(std::env::vars());
    std::fs::create_dir_all(&state_dir)?;
    Ok(Options {
        compose_file,
        state_dir: std::path::absolute(&state_dir)?,
        ports,
        vars,
        bin_dir: bin_dir()?,
        prometheus_timing: None,
    })
}

fn print_urls(topology: &Topology) {
    let url = |service: &str, port: u16| topology.url(service, port).unwrap_or_default();
    println!("\nThe topology is up (docker-compose.yml as local processes):");
    println!("  webhooks (nginx)  {}/webhooks/<source>", url("proxy", 80));
    println!(
        "  prometheus        {}/targets  /alerts  /graph",
        url("prometheus", 9090)
    );
    println!(
        "  demo app          {}/received (webhooks handled, by id)",
        url("app", 9000)
    );
    for service in topology.services() {
        let metrics = [9090, 9091].into_iter().find(|port| {
            service.starts_with("ingest") == (*port == 9090) && topology.url(service, *port).is_ok()
        });
        if service.starts_with("ingest") || service.starts_with("processor") {
            if let Some(port) = metrics {
                println!("  {service:<17} {}/metrics", url(service, port));
            }
        } else if service.starts_with("nats") {
            println!(
                "  {service:<17} nats://{}  monitoring {}",
                topology.address(service, 4222).unwrap_or_default(),
                url(service, 8222)
            );
        }
    }
    for (service, command) in topology.tool_commands() {
        println!("  {service:<17} {command}");
    }
    for (service, why) in topology.skipped() {
        println!("  {service:<17} not run here: {why}");
    }
    println!(
        "  logs              {}/logs/",
        topology.state_dir().display()
    );
    println!("Ctrl-C stops everything.");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let mut topology = Topology::plan(&options)?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        started = topology.start_all(Duration::from_secs(120)) => started?,
        _ = interrupt.recv() => return stop(&mut topology).await,
        _ = terminate.recv() => return stop(&mut topology).await,
    }
    print_urls(&topology);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = tick.tick() => {
                for (service, status) in topology.exited() {
                    eprintln!(
                        "{service} exited ({status}); its log: {}\n{}",
                        topology.log_path(&service).display(),
                        topology.log_tail(&service)
                    );
                    // As compose's `restart: unless-stopped` does.
                    if topology.restarts(&service) {
                        eprintln!("restarting {service}");
                        topology.start(&service)?;
                    }
                }
            }
        }
    }
    stop(&mut topology).await
}

async fn stop(topology: &mut Topology) -> anyhow::Result<()> {
    eprintln!("stopping…");
    topology.stop_all(Duration::from_secs(15)).await
}
