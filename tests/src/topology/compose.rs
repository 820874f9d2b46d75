//! The part of docker-compose.yml the local topology reads: each service's
//! image or build, entrypoint and command, environment (with compose's
//! `${VAR}`, `${VAR:-default}` and `${VAR:?message}` interpolation), mounts,
//! published ports, `depends_on` conditions, the URL its healthcheck
//! probes, and its profiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_yaml::Value;

/// The services of a compose file, by name.
#[derive(Debug, Clone)]
pub struct Compose {
    /// The directory holding the compose file (bind mounts are relative to it).
    pub dir: PathBuf,
    /// Every service, by name.
    pub services: BTreeMap<String, Service>,
}

/// One compose service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name (also its hostname in the compose network).
    pub name: String,
    /// `image:` (also set for built services when they name their image).
    pub image: Option<String>,
    /// Built from the repository's Dockerfile (`build:`).
    pub build: bool,
    /// `entrypoint:`, empty when the image's applies.
    pub entrypoint: Vec<String>,
    /// `command:`, empty when the image's applies.
    pub command: Vec<String>,
    /// `environment:`, interpolated.
    pub environment: Vec<(String, String)>,
    /// `volumes:`.
    pub mounts: Vec<Mount>,
    /// `ports:` as (host, container).
    pub ports: Vec<(u16, u16)>,
    /// `depends_on:` with the condition to wait for.
    pub depends_on: Vec<(String, Condition)>,
    /// The `http://…` URL in the healthcheck's command, as the container sees it.
    pub health_url: Option<String>,
    /// `profiles:` (a service with a profile is not started by `up`).
    pub profiles: Vec<String>,
    /// `restart:` is `always`, `unless-stopped` or `on-failure`.
    pub restarts: bool,
}

/// A `volumes:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A file or directory of the repository (`./deploy/x:/etc/x:ro`).
    Bind {
        /// The path on the host.
        source: PathBuf,
        /// The path in the container.
        target: String,
    },
    /// A named volume (`nats-1:/data`).
    Named {
        /// The volume's name.
        volume: String,
        /// The path in the container.
        target: String,
    },
}

impl Mount {
    /// The path in the container.
    pub fn target(&self) -> &str {
        match self {
            Self::Bind { target, .. } | Self::Named { target, .. } => target,
        }
    }
}

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `service_started` (and the short list form).
    Started,
    /// `service_healthy`: its healthcheck passed.
    Healthy,
}

impl Compose {
    /// Reads `path`, interpolating `${…}` from `vars`.
    ///
    /// # Errors
    /// Unreadable or malformed file, a `${VAR:?…}` whose variable is unset.
    pub fn load(path: &Path, vars: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut root: Value =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        root.apply_merge()?;
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut services = BTreeMap::new();
        for (name, spec) in root["services"].as_mapping().into_iter().flatten() {
            let name = name.as_str().context("service name")?.to_owned();
            let service = Service::parse(&name, spec, &dir, vars)
                .with_context(|| format!("service {name}"))?;
            services.insert(name, service);
        }
        Ok(Self { dir, services })
    }

    /// The services `docker compose up` starts (those without a profile).
    pub fn default_services(&self) -> impl Iterator<Item = &Service> {
        self.services.values().filter(|s| s.profiles.is_empty())
    }
}

impl Service {
    fn parse(
        name: &str,
        spec: &Value,
        dir: &Path,
        vars: &BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        let strings = |value: &Value| -> anyhow::Result<Vec<String>> {
            match value {
                Value::Null => Ok(Vec::new()),
                Value::String(s) => Ok(s.split_whitespace().map(str::to_owned).collect()),
                Value::Sequence(items) => items
                    .iter()
                    .map(|v| scalar(v).context("a list of strings"))
                    .collect(),
                _ => bail!("expected a string or a list"),
            }
        };
        let mut environment = Vec::new();
        match &spec["environment"] {
            Value::Mapping(map) => {
                for (k, v) in map {
                    let key = k.as_str().context("environment name")?.to_owned();
                    let value = interpolate(&scalar(v).unwrap_or_default(), vars)
                        .with_context(|| format!("environment {key}"))?;
                    environment.push((key, value));
                }
            }
            Value::Sequence(items) => {
                for item in items {
                    let text = item.as_str().context("KEY=value")?;
                    let (key, value) = text.split_once('=').unwrap_or((text, ""));
                    environment.push((key.to_owned(), interpolate(value, vars)?));
                }
            }
            _ => {}
        }
        let mut mounts = Vec::new();
        for volume in strings(&spec["volumes"])? {
            let mut parts = volume.split(':');
            let (Some(source), Some(target)) = (parts.next(), parts.next()) else {
                bail!("volume {volume:?}: expected SOURCE:TARGET[:MODE]");
            };
            mounts.push(if source.starts_with('.') || source.starts_with('/') {
                Mount::Bind {
                    source: dir.join(source),
                    target: target.to_owned(),
                }
            } else {
                Mount::Named {
                    volume: source.to_owned(),
                    target: target.to_owned(),
                }
            });
        }
        let mut ports = Vec::new();
        for port in strings(&spec["ports"])? {
            let (host, container) = port
                .rsplit_once(':')
                .with_context(|| format!("port {port:?}: expected HOST:CONTAINER"))?;
            let host = host.rsplit(':').next().unwrap_or(host);
            ports.push((host.parse()?, container.parse()?));
        }
        let depends_on = match &spec["depends_on"] {
            Value::Sequence(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| (s.to_owned(), Condition::Started))
                .collect(),
            Value::Mapping(map) => map
                .iter()
                .filter_map(|(k, v)| {
                    let condition = match v["condition"].as_str() {
                        Some("service_healthy") => Condition::Healthy,
                        _ => Condition::Started,
                    };
                    Some((k.as_str()?.to_owned(), condition))
                })
                .collect(),
            _ => Vec::new(),
        };
        let health_url = strings(&spec["healthcheck"]["test"])?
            .iter()
            .flat_map(|part| part.split_whitespace())
            .map(|part| part.trim_matches(|c| c == '"' || c == '\''))
            .find(|part| part.starts_with("http://"))
            .map(str::to_owned);
        Ok(Self {
            name: name.to_owned(),
            image: spec["image"]
                .as_str()
                .map(|i| interpolate(i, vars))
                .transpose()?,
            build: !spec["build"].is_null(),
            entrypoint: strings(&spec["entrypoint"])?,
            command: strings(&spec["command"])?,
            environment,
            mounts,
            ports,
            depends_on,
            health_url,
            profiles: strings(&spec["profiles"])?,
            restarts: matches!(
                spec["restart"].as_str(),
                Some("always" | "unless-stopped" | "on-failure")
            ),
        })
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:?message}` (an error when unset or empty), `$$` for `$`.
///
/// # Errors
/// A required variable is unset, or a `${` is not closed.
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(body) = rest.strip_prefix("${") else {
            out.push('$');
            rest = &rest[1..];
            continue;
        };
        let end = body
            .find('}')
            .with_context(|| format!("unclosed ${{ in {text:?}"))?;
        let expr = &body[..end];
        rest = &body[end + 1..];
        let set = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();
        let value = if let Some((name, message)) = expr.split_once(":?") {
            set(name).with_context(|| format!("{name}: {message}"))?
        } else if let Some((name, default)) = expr.split_once(":-") {
            set(name).unwrap_or_else(|| default.to_owned())
        } else if let Some((name, default)) = expr.split_once('-') {
            vars.get(name)
                .cloned()
                .unwrap_or_else(|| default.to_owned())
        } else {
            vars.get(expr).cloned().unwrap_or_default()
        };
        out.push_str(&value);
    }
    out.push_str(rest);
    Ok(out)
}
