//! What each compose image runs on this host (rule 3 of the mapping): the
//! pinned `nats-server` for `nats:*`, Debian's `nginx` for `nginx:*` and
//! `prometheus` for `prom/prometheus:*`, the workspace's binaries for the
//! services built from the Dockerfile. The image's defaults (its entrypoint,
//! its default command, the volumes it declares) are spelled out here in
//! container terms and go through the same mapping as everything else.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::compose::{Mount, Service};

/// How a service's image runs here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `nats:*`: the pinned nats-server (`scripts/install-nats-server`).
    Nats,
    /// `nginx:*`: Debian's nginx.
    Nginx,
    /// `prom/prometheus:*`: Debian's prometheus.
    Prometheus,
    /// `build: .`: the workspace's binaries.
    Hookline,
}

/// The hint every missing host tool fails with.
pub const INSTALL_HINT: &str =
    "run `scripts/install-topology-tools` (installs Debian's nginx and prometheus, with promtool)";

impl Runtime {
    /// The runtime of `service`'s image, or why it has none here.
    ///
    /// # Errors
    /// An image with no local equivalent (Grafana: no host package).
    pub fn of(service: &Service) -> anyhow::Result<Self> {
        if service.build {
            return Ok(Self::Hookline);
        }
        let image = service.image.as_deref().unwrap_or_default();
        let name = image.split(':').next().unwrap_or_default();
        match name {
            "nats" => Ok(Self::Nats),
            "nginx" => Ok(Self::Nginx),
            "prom/prometheus" => Ok(Self::Prometheus),
            _ => bail!("no local runtime for image {image:?}"),
        }
    }

    /// Volumes the image declares itself (compose mounts an anonymous volume there).
    pub fn image_mounts(self, service: &Service) -> Vec<Mount> {
        match self {
            Self::Prometheus => vec![Mount::Named {
                volume: format!("{}-data", service.name),
                target: "/prometheus".to_owned(),
            }],
            _ => Vec::new(),
        }
    }

    /// Rewrites the image's own listen syntax into `0.0.0.0:<port>` form,
    /// which the mapping then turns into a loopback port (nginx: `listen 80;`).
    pub fn normalize_config(self, text: &str) -> String {
        match self {
            Self::Nginx => text
                .lines()
                .map(|line| {
                    let trimmed = line.trim_start();
                    let indent = &line[..line.len() - trimmed.len()];
                    match trimmed.strip_prefix("listen ") {
                        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
                            format!("{indent}listen 0.0.0.0:{rest}")
                        }
                        _ => line.to_owned(),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => text.to_owned(),
        }
    }

    /// The program and its arguments, in container terms: compose's
    /// `entrypoint`/`command` where given, else the image's defaults.
    ///
    /// # Errors
    /// A tool or binary is missing (with the command that installs it).
    pub fn command(
        self,
        service: &Service,
        bin_dir: &Path,
    ) -> anyhow::Result<(PathBuf, Vec<String>)> {
        match self {
            Self::Nats => Ok((crate::nats_server_binary()?, service.command.clone())),
            Self::Nginx => Ok((
                host_tool("nginx")?,
                vec!["-c".to_owned(), "/etc/nginx/nginx.conf".to_owned()],
            )),
            Self::Prometheus => Ok((
                host_tool("prometheus")?,
                if service.command.is_empty() {
                    [
                        "--config.file=/etc/prometheus/prometheus.yml",
                        "--storage.tsdb.path=/prometheus",
                        "--web.listen-address=0.0.0.0:9090",
                    ]
                    .map(str::to_owned)
                    .to_vec()
                } else {
                    service.command.clone()
                },
            )),
            Self::Hookline => {
                let mut words = service.entrypoint.clone();
                words.extend(service.command.iter().cloned());
                let (program, args) = words
                    .split_first()
                    .context("a built service needs a command")?;
                let path = bin_dir.join(program);
                if !path.is_file() {
                    bail!(
                        "{} is not built: run `cargo build --workspace --bins` (scripts/topology does)",
                        path.display()
                    );
                }
                Ok((path, args.to_vec()))
            }
        }
    }

    /// Arguments only a host process needs (the container has them by
    /// construction): nginx's prefix, pid file and error log, in the
    /// service's directory, in the foreground.
    pub fn host_args(self, service_dir: &Path) -> Vec<String> {
        match self {
            Self::Nginx => vec![
                "-p".to_owned(),
                format!("{}/", service_dir.display()),
                "-e".to_owned(),
                "stderr".to_owned(),
                "-g".to_owned(),
                format!("daemon off; pid {}/nginx.pid;", service_dir.display()),
            ],
            _ => Vec::new(),
        }
    }
}

/// A host tool from `PATH` or the sbin directories Debian installs into.
///
/// # Errors
/// Not installed, with [`INSTALL_HINT`].
pub fn host_tool(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{name} not found: {INSTALL_HINT}"))
}

/// The version a host tool reports (`nginx -v`, `prometheus --version`,
/// `promtool --version`, `nats-server --version`): the first `x.y.z` in its output.
///
/// # Errors
/// Missing tool, or no version in its output.
pub fn tool_version(program: &Path, flag: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new(program)
        .arg(flag)
        .output()
        .with_context(|| format!("running {} {flag}", program.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|word| word.split('.').filter(|p| !p.is_empty()).count() == 3)
        .map(str::to_owned)
        .with_context(|| format!("no version in `{} {flag}`: {text}", program.display()))
}
