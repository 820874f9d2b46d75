//! The production topology (docker-compose.yml) as local processes, from
//! the same files under `deploy/`: the three NATS nodes, the ingests, nginx,
//! the processors, Prometheus and the demo application (`hookline-sink`),
//! on loopback ports. `scripts/topology` runs it (the `hookline-topology`
//! binary); `tests/it/topology.rs` drives it.
//!
//! Data flow: [`compose`] reads the services; [`mapping`] is the one
//! documented difference between a container and this host (hostnames →
//! loopback ports, container paths → a state directory); [`runtime`] says
//! what each image runs here. [`Topology::plan`] generates every config
//! file, [`Topology::start_all`] starts the services in `depends_on` order
//! (waiting for healthchecks where compose does), and dropping the
//! topology stops every process (SIGTERM, then SIGKILL).
//!
//! Services without a local runtime (Grafana) are listed in
//! [`Topology::skipped`]; nothing else is left out.

pub mod compose;
pub mod mapping;
pub mod runtime;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use compose::{Compose, Condition, Mount, Service};
use mapping::{Mapping, Ports};
use runtime::Runtime;

/// Test-only Prometheus timing: the scrape and evaluation interval and every
/// alert's `for`, so that an alert fires within seconds instead of minutes.
#[derive(Debug, Clone)]
pub struct PrometheusTiming {
    /// `global.scrape_interval` and `global.evaluation_interval` (e.g. `1s`).
    pub interval: String,
    /// Every rule's `for` (e.g. `5s`).
    pub rule_for: String,
}

/// What to run and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The compose file (its directory is the base of bind mounts).
    pub compose_file: PathBuf,
    /// Generated files, volumes and logs.
    pub state_dir: PathBuf,
    /// Free ports everywhere, or the published ones where possible.
    pub ports: Ports,
    /// The variables compose interpolates (`${VAR}`): the environment and `.env`.
    pub vars: BTreeMap<String, String>,
    /// Where the workspace's binaries are.
    pub bin_dir: PathBuf,
    /// Test-only Prometheus timing; `None` keeps deploy/'s.
    pub prometheus_timing: Option<PrometheusTiming>,
}

/// One service ready to start.
#[derive(Debug)]
struct Plan {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    health_url: Option<String>,
    depends_on: Vec<(String, Condition)>,
    restarts: bool,
}

/// The running topology. Dropping it stops every process.
pub struct Topology {
    state: PathBuf,
    mapping: Mapping,
    plans: BTreeMap<String, Plan>,
    order: Vec<String>,
    skipped: Vec<(String, String)>,
    tools: BTreeMap<String, Plan>,
    running: BTreeMap<String, Child>,
    restarted: BTreeMap<String, u32>,
}

impl Topology {
    /// Reads the compose file and generates every service's configuration;
    /// starts nothing.
    ///
    /// # Errors
    /// Unreadable files, a missing tool or binary, an unset required variable.
    pub fn plan(options: &Options) -> anyhow::Result<Self> {
        // First, so that their ports are free again for this run.
        stop_leftovers(&options.state_dir.join(PIDS_FILE));
        let compose = Compose::load(&options.compose_file, &options.vars)?;
        let services: BTreeMap<String, Vec<(u16, u16)>> = compose
            .services
            .values()
            .map(|s| (s.name.clone(), s.ports.clone()))
            .collect();
        let mut mapping = Mapping::new(options.ports, &options.state_dir, services);
        let mut plans = BTreeMap::new();
        let mut skipped = Vec::new();
        let mut tools = BTreeMap::new();
        // Services behind a profile (the CLI) are not started; their
        // configuration is generated so that a person can run them.
        for service in compose.services.values().filter(|s| !s.profiles.is_empty()) {
            if let Ok(runtime) = Runtime::of(service) {
                let plan = plan_service(&compose, service, runtime, &mut mapping, options)
                    .with_context(|| format!("service {}", service.name))?;
                tools.insert(service.name.clone(), plan);
            }
        }
        for service in compose.default_services() {
            match Runtime::of(service) {
                Ok(runtime) => {
                    let plan = plan_service(&compose, service, runtime, &mut mapping, options)
                        .with_context(|| format!("service {}", service.name))?;
                    plans.insert(service.name.clone(), plan);
                }
                Err(why) => skipped.push((service.name.clone(), why.to_string())),
            }
        }
        let order = start_order(&plans)?;
        std::fs::create_dir_all(options.state_dir.join("logs"))?;
        Ok(Self {
            state: options.state_dir.clone(),
            mapping,
            plans,
            order,
            skipped,
            tools,
            running: BTreeMap::new(),
            restarted: BTreeMap::new(),
        })
    }

    /// The services this topology runs, in start order.
    pub fn services(&self) -> &[String] {
        &self.order
    }

    /// The compose services it cannot run here, with the reason.
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// The command lines of the services behind a compose profile (the
    /// CLI: `docker compose run --rm cli …`), with their environment, as a
    /// shell line to run here.
    pub fn tool_commands(&self) -> Vec<(String, String)> {
        self.tools
            .iter()
            .map(|(name, plan)| {
                let mut words: Vec<String> =
                    plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                words.push(plan.program.display().to_string());
                words.extend(plan.args.iter().cloned());
                (name.clone(), words.join(" "))
            })
            .collect()
    }

    /// `127.0.0.1:<port>` for `service`'s container port.
    ///
    /// # Errors
    /// Nothing listens on that port in the topology.
    pub fn address(&self, service: &str, container_port: u16) -> anyhow::Result<String> {
        let port = self
            .mapping
            .allocated(service, container_port)
            .with_context(|| format!("{service}:{container_port} is not in the topology"))?;
        Ok(format!("127.0.0.1:{port}"))
    }

    /// `http://127.0.0.1:<port>` for `service`'s container port.
    ///
    /// # Errors
    /// As [`address`](Self::address).
    pub fn url(&self, service: &str, container_port: u16) -> anyhow::Result<String> {
        Ok(format!("http://{}", self.address(service, container_port)?))
    }

    /// Every (service, container port) → host port of the mapping.
    pub fn ports(&self) -> &BTreeMap<(String, u16), u16> {
        self.mapping.allocations()
    }

    /// The state directory (generated configs, volumes, logs).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// `service`'s log file (stdout and stderr of every run).
    pub fn log_path(&self, service: &str) -> PathBuf {
        self.state.join("logs").join(format!("{service}.log"))
    }

    /// The pid of `service` while it runs.
    pub fn pid(&self, service: &str) -> Option<u32> {
        self.running.get(service).and_then(Child::id)
    }

    /// Starts every service in `depends_on` order (waiting for a
    /// dependency's healthcheck where the condition asks for it), then
    /// waits until every service with a healthcheck passes it.
    ///
    /// # Errors
    /// A process failed to start or stay healthy within `within`.
    pub async fn start_all(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        for name in self.order.clone() {
            let waits: Vec<String> = self.plans[&name]
                .depends_on
                .iter()
                .filter(|(_, c)| *c == Condition::Healthy)
                .map(|(d, _)| d.clone())
                .collect();
            for dependency in waits {
                self.wait_healthy(&dependency, deadline).await?;
            }
            self.start(&name)?;
        }
        for name in self.order.clone() {
            self.wait_healthy(&name, deadline).await?;
        }
        Ok(())
    }

    /// Starts (or restarts) one service; its output is appended to its log.
    ///
    /// # Errors
    /// Unknown service, already running, or it cannot be spawned.
    pub fn start(&mut self, service: &str) -> anyhow::Result<()> {
        let plan = self
            .plans
            .get(service)
            .with_context(|| format!("no service {service}"))?;
        if self.running.contains_key(service) {
            bail!("{service} is already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(service))?;
        let child = Command::new(&plan.program)
            .args(&plan.args)
            // A container sees only what compose gives it.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(plan.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a terminal's Ctrl-C reaches the runner,
            // which stops the services in reverse order.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", plan.program.display()))?;
        self.running.insert(service.to_owned(), child);
        self.record_pids();
        Ok(())
    }

    /// Writes `<state>/pids` (service, pid, program) so that a runner
    /// killed without cleaning up (SIGKILL) has its processes stopped by the
    /// next one.
    fn record_pids(&self) {
        let lines: String = self
            .running
            .iter()
            .filter_map(|(name, child)| {
                let program = &self.plans.get(name)?.program;
                Some(format!("{name} {} {}\n", child.id()?, program.display()))
            })
            .collect();
        let _ = std::fs::write(self.state.join(PIDS_FILE), lines);
    }

    /// SIGKILLs one service and waits for it to exit.
    ///
    /// # Errors
    /// The kill failed.
    pub async fn kill(&mut self, service: &str) -> anyhow::Result<()> {
        if let Some(mut child) = self.running.remove(service) {
            child
                .kill()
                .await
                .with_context(|| format!("killing {service}"))?;
        }
        Ok(())
    }

    /// SIGTERM to one service; SIGKILL if it has not exited within `within`.
    ///
    /// # Errors
    /// The signal failed.
    pub async fn stop(&mut self, service: &str, within: Duration) -> anyhow::Result<()> {
        let Some(mut child) = self.running.remove(service) else {
            return Ok(());
        };
        terminate(&child)?;
        if tokio::time::timeout(within, child.wait()).await.is_err() {
            child.kill().await?;
        }
        self.record_pids();
        Ok(())
    }

    /// Stops every service in reverse start order.
    ///
    /// # Errors
    /// A signal failed.
    pub async fn stop_all(&mut self, within: Duration) -> anyhow::Result<()> {
        for name in self.order.clone().iter().rev() {
            self.stop(name, within).await?;
        }
        Ok(())
    }

    /// Whether compose restarts `service` when it exits (`restart:` policy).
    pub fn restarts(&self, service: &str) -> bool {
        self.plans.get(service).is_some_and(|p| p.restarts)
    }

    /// How often each service was restarted by its `restart:` policy while
    /// [`start_all`](Self::start_all) waited for it.
    pub fn restarted(&self) -> &BTreeMap<String, u32> {
        &self.restarted
    }

    /// Services that exited by themselves since the last call, with their status.
    pub fn exited(&mut self) -> Vec<(String, std::process::ExitStatus)> {
        let mut gone = Vec::new();
        for (name, child) in &mut self.running {
            if let Ok(Some(status)) = child.try_wait() {
                gone.push((name.clone(), status));
            }
        }
        for (name, _) in &gone {
            self.running.remove(name);
        }
        gone
    }

    /// Waits until `service`'s healthcheck URL answers 2xx (no healthcheck: started).
    ///
    /// # Errors
    /// Not healthy by `deadline`, or it exited, with the end of its log.
    pub async fn wait_healthy(
        &mut self,
        service: &str,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<()> {
        let Some(url) = self.plans.get(service).and_then(|p| p.health_url.clone()) else {
            return Ok(());
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.running.get_mut(service)
                && let Ok(Some(status)) = child.try_wait()
            {
                if !self.restarts(service) {
                    bail!("{service} exited ({status}):\n{}", self.log_tail(service));
                }
                // As compose's `restart: unless-stopped` does.
                eprintln!("{service} exited ({status}) before it was healthy; restarting it");
                self.running.remove(service);
                *self.restarted.entry(service.to_owned()).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.start(service)?;
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{service} not healthy at {url}:\n{}",
                    self.log_tail(service)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of `service`'s log.
    pub fn log_tail(&self, service: &str) -> String {
        let text = std::fs::read_to_string(self.log_path(service)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Topology {
    /// Reverse start order: SIGTERM, up to 5 s for the exit, then SIGKILL
    /// (nginx's master must get the signal, or its workers outlive it).
    fn drop(&mut self) {
        let mut children: Vec<(String, Child)> = Vec::new();
        for name in self.order.iter().rev() {
            if let Some(child) = self.running.remove(name) {
                let _ = terminate(&child);
                children.push((name.clone(), child));
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        for (_, mut child) in children {
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_file(self.state.join(PIDS_FILE));
    }
}

/// The file [`Topology::record_pids`] keeps.
const PIDS_FILE: &str = "pids";

/// Stops the processes a previous runner recorded that still run the
/// recorded program (a pid reused by something else is left alone).
fn stop_leftovers(pids_file: &Path) {
    let Ok(text) = std::fs::read_to_string(pids_file) else {
        return;
    };
    let mut leftovers = Vec::new();
    for line in text.lines() {
        let mut words = line.splitn(3, ' ');
        let (Some(name), Some(pid), Some(program)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe == Path::new(program) {
            eprintln!("stopping {name} (pid {pid}) left running by an earlier run");
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            leftovers.push(pid);
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for pid in leftovers {
        while nix::sys::signal::kill(pid, None).is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(pids_file);
}

fn terminate(child: &Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    }
    Ok(())
}

/// Generates `service`'s mounted files and its command line through the mapping.
fn plan_service(
    compose: &Compose,
    service: &Service,
    runtime: Runtime,
    mapping: &mut Mapping,
    options: &Options,
) -> anyhow::Result<Plan> {
    let mut mounts = service.mounts.clone();
    mounts.extend(runtime.image_mounts(service));
    let service_dir = mapping.service_dir(&service.name);
    std::fs::create_dir_all(&service_dir)?;
    let known: BTreeSet<String> = compose.services.keys().cloned().collect();
    for mount in &mounts {
        let host = mapping.mount_path(&service.name, mount);
        match mount {
            Mount::Named { .. } => std::fs::create_dir_all(&host)?,
            Mount::Bind { source, .. } if source.is_file() => {
                let text = std::fs::read_to_string(source)
                    .with_context(|| format!("reading {}", source.display()))?;
                let text = runtime.normalize_config(&text);
                let mut text = mapping.rewrite(service, &mounts, &text)?;
                if runtime == Runtime::Prometheus
                    && let Some(timing) = &options.prometheus_timing
                {
                    text = retime(&text, timing)?;
                }
                mapping::assert_mapped(&text, &known, &source.display().to_string())?;
                if let Some(parent) = host.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&host, text)?;
            }
            // A mounted directory is only Grafana's, which does not run here.
            Mount::Bind { source, .. } => bail!(
                "{}: only mounted files are supported locally",
                source.display()
            ),
        }
    }
    let (program, args) = runtime.command(service, &options.bin_dir)?;
    let mut mapped = Vec::new();
    for arg in &args {
        mapped.push(mapping.rewrite(service, &mounts, arg)?);
    }
    mapped.extend(runtime.host_args(&service_dir));
    let mut env = Vec::new();
    for (key, value) in &service.environment {
        env.push((key.clone(), mapping.rewrite(service, &mounts, value)?));
    }
    let health_url = service
        .health_url
        .as_deref()
        .map(|url| mapping.rewrite(service, &mounts, url))
        .transpose()?;
    Ok(Plan {
        program,
        args: mapped,
        env,
        health_url,
        depends_on: service.depends_on.clone(),
        restarts: service.restarts,
    })
}

/// Test-only: shorter Prometheus intervals and rule `for`s (the YAML loses its comments).
fn retime(text: &str, timing: &PrometheusTiming) -> anyhow::Result<String> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text)?;
    if let Some(global) = value.get_mut("global").and_then(|g| g.as_mapping_mut()) {
        for key in ["scrape_interval", "evaluation_interval"] {
            global.insert(key.into(), timing.interval.clone().into());
        }
    }
    if let Some(groups) = value.get_mut("groups").and_then(|g| g.as_sequence_mut()) {
        for group in groups {
            let rules = group.get_mut("rules").and_then(|r| r.as_sequence_mut());
            for rule in rules.into_iter().flatten() {
                if let Some(rule) = rule.as_mapping_mut()
                    && rule.contains_key("for")
                {
                    rule.insert("for".into(), timing.rule_for.clone().into());
                }
            }
        }
    }
    Ok(serde_yaml::to_string(&value)?)
}

/// Services ordered so that each comes after what it depends on.
fn start_order(plans: &BTreeMap<String, Plan>) -> anyhow::Result<Vec<String>> {
    let mut order: Vec<String> = Vec::new();
    while order.len() < plans.len() {
        let next = plans.iter().find(|(name, plan)| {
            !order.contains(name)
                && plan
                    .depends_on
                    .iter()
                    .all(|(d, _)| order.contains(d) || !plans.contains_key(d))
        });
        match next {
            Some((name, _)) => order.push(name.clone()),
            None => bail!("depends_on has a cycle"),
        }
    }
    Ok(order)
}

/// The directory of the workspace's binaries next to the running
/// executable (`target/<profile>/`, also from `target/<profile>/deps/`).
///
/// # Errors
/// The executable's path is unknown.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable without a directory")?;
    Ok(if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}
