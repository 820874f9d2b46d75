//! The one mapping between the compose network and this host: how a
//! service's configuration, written for a container, is rewritten to run as
//! a local process. Three rules, applied to every mounted config file, to
//! command arguments and to environment values:
//!
//! 1. **Hostnames**: `<service>:<port>` (any compose service) becomes
//!    `127.0.0.1:<host port>`; a service's own `0.0.0.0:<port>` and
//!    `localhost:<port>` become its own `127.0.0.1:<host port>`. Each
//!    (service, container port) gets one loopback port: a free one, or, for
//!    `ports:` a service publishes, the published host port when it is free
//!    ([`Ports::Published`]).
//! 2. **Paths**: a service's container filesystem is `<state>/services/<service>/`:
//!    a bind-mounted file `/etc/x/y.conf` is generated (rule 1 and 2
//!    applied) at `<state>/services/<service>/etc/x/y.conf`; a named volume
//!    (`nats-1:/data`) is `<state>/volumes/<volume>/`, kept across runs as
//!    compose keeps volumes. References to a mount's container path are
//!    rewritten to the host path.
//! 3. **Images**: what an image runs on this host ([`super::runtime`]).
//!
//! Nothing else changes: the files under `deploy/` are the configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::bail;

use super::compose::{Mount, Service};

/// How host ports are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// Every port is a free loopback port (tests run side by side).
    Free,
    /// Published ports (`ports: ["8080:80"]`) keep their host port when it
    /// is free; the rest are free ports.
    Published,
}

/// The hostname and path mapping for one topology.
#[derive(Debug)]
pub struct Mapping {
    mode: Ports,
    state: PathBuf,
    services: BTreeMap<String, Vec<(u16, u16)>>,
    ports: BTreeMap<(String, u16), u16>,
    taken: BTreeSet<u16>,
}

/// Characters of a hostname (and of an IPv4 address).
fn host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

impl Mapping {
    /// A mapping for `services` (name → published ports) with its state under `state`.
    pub fn new(mode: Ports, state: &Path, services: BTreeMap<String, Vec<(u16, u16)>>) -> Self {
        Self {
            mode,
            state: state.to_path_buf(),
            services,
            ports: BTreeMap::new(),
            taken: BTreeSet::new(),
        }
    }

    /// The host port of `service`'s container port, allocated on first use.
    ///
    /// # Errors
    /// No free port could be bound.
    pub fn port(&mut self, service: &str, container_port: u16) -> anyhow::Result<u16> {
        let key = (service.to_owned(), container_port);
        if let Some(port) = self.ports.get(&key) {
            return Ok(*port);
        }
        let published = self
            .services
            .get(service)
            .into_iter()
            .flatten()
            .find(|(_, container)| *container == container_port)
            .map(|(host, _)| *host)
            .filter(|_| self.mode == Ports::Published)
            .filter(|host| {
                !self.taken.contains(host)
                    && std::net::TcpListener::bind(("127.0.0.1", *host)).is_ok()
            });
        let port = match published {
            Some(port) => port,
            None => loop {
                let port = crate::process::free_port()?;
                if !self.taken.contains(&port) {
                    break port;
                }
            },
        };
        self.taken.insert(port);
        self.ports.insert(key, port);
        Ok(port)
    }

    /// The host port of `service`'s container port, if one was allocated.
    pub fn allocated(&self, service: &str, container_port: u16) -> Option<u16> {
        self.ports
            .get(&(service.to_owned(), container_port))
            .copied()
    }

    /// Every allocation: ((service, container port), host port).
    pub fn allocations(&self) -> &BTreeMap<(String, u16), u16> {
        &self.ports
    }

    /// Where `service`'s generated files live (its container root).
    pub fn service_dir(&self, service: &str) -> PathBuf {
        self.state.join("services").join(service)
    }

    /// Where a named volume lives.
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        self.state.join("volumes").join(volume)
    }

    /// The host path of a mount of `service`.
    pub fn mount_path(&self, service: &str, mount: &Mount) -> PathBuf {
        match mount {
            Mount::Bind { target, .. } => self
                .service_dir(service)
                .join(target.trim_start_matches('/')),
            Mount::Named { volume, .. } => self.volume_dir(volume),
        }
    }

    /// Rules 1 and 2 applied to `text` as `service` (with `mounts`, the
    /// compose mounts plus the image's own volumes) sees it.
    ///
    /// # Errors
    /// A port could not be allocated.
    pub fn rewrite(
        &mut self,
        service: &Service,
        mounts: &[Mount],
        text: &str,
    ) -> anyhow::Result<String> {
        let hosts = self.rewrite_hosts(&service.name, text)?;
        Ok(self.rewrite_paths(&service.name, mounts, &hosts))
    }

    fn rewrite_hosts(&mut self, own: &str, text: &str) -> anyhow::Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut previous: Option<char> = None;
        while let Some(c) = rest.chars().next() {
            if host_char(c) && !previous.is_some_and(host_char) {
                let host_len = rest.find(|c: char| !host_char(c)).unwrap_or(rest.len());
                let host = &rest[..host_len];
                let after = &rest[host_len..];
                let digits = after
                    .strip_prefix(':')
                    .map(|p| p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len()))
                    .unwrap_or(0);
                let target = match host {
                    "0.0.0.0" | "localhost" => Some(own),
                    name if self.services.contains_key(name) => Some(name),
                    _ => None,
                };
                if let (Some(target), true) = (target, digits > 0) {
                    let container_port: u16 = after[1..=digits].parse()?;
                    let port = self.port(target, container_port)?;
                    out.push_str(&format!("127.0.0.1:{port}"));
                    rest = &after[1 + digits..];
                    previous = Some('0');
                    continue;
                }
                out.push_str(host);
                rest = after;
                previous = host.chars().last();
                continue;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
            previous = Some(c);
        }
        Ok(out)
    }

    fn rewrite_paths(&self, service: &str, mounts: &[Mount], text: &str) -> String {
        let mut targets: Vec<(&str, PathBuf)> = mounts
            .iter()
            .map(|m| (m.target(), self.mount_path(service, m)))
            .collect();
        // Longest first: /etc/prometheus/alerts.yml before /etc/prometheus.
        targets.sort_by_key(|(target, _)| std::cmp::Reverse(target.len()));
        let left = |c: Option<char>| {
            c.is_none_or(|c| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ':' | '[' | ',' | '(')
            })
        };
        let right = |c: Option<char>| {
            c.is_none_or(|c| {
                c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ']' | ';' | '/' | ')')
            })
        };
        let mut out = String::with_capacity(text.len());
        let mut previous = None;
        let mut rest = text;
        'scan: while let Some(c) = rest.chars().next() {
            if c == '/' && left(previous) {
                for (target, host) in &targets {
                    if let Some(after) = rest.strip_prefix(target)
                        && right(after.chars().next())
                    {
                        out.push_str(&host.to_string_lossy());
                        rest = after;
                        previous = Some('x');
                        continue 'scan;
                    }
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
            previous = Some(c);
        }
        out
    }
}

/// Checks that a generated file still names no compose hostname with a
/// port (a reference the mapping missed would fail at run time instead).
///
/// # Errors
/// A `<service>:<port>` remains.
pub fn assert_mapped(text: &str, services: &BTreeSet<String>, what: &str) -> anyhow::Result<()> {
    for service in services {
        if let Some(at) = text.find(&format!("{service}:"))
            && text[at + service.len() + 1..].starts_with(|c: char| c.is_ascii_digit())
            && (at == 0 || !text[..at].ends_with(host_char))
        {
            bail!("{what}: {service}:<port> left unmapped");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    fn service(name: &str) -> Service {
        Service {
            name: name.to_owned(),
            image: None,
            build: false,
            entrypoint: Vec::new(),
            command: Vec::new(),
            environment: Vec::new(),
            mounts: Vec::new(),
            ports: Vec::new(),
            depends_on: Vec::new(),
            health_url: None,
            profiles: Vec::new(),
            restarts: false,
        }
    }

    #[test]
    fn hosts_and_paths_are_rewritten_and_nothing_else() -> anyhow::Result<()> {
        let services = ["nats-1", "nats-2", "app"]
            .into_iter()
            .map(|s| (s.to_owned(), Vec::new()))
            .collect();
        let mut mapping = Mapping::new(Ports::Free, Path::new("/s"), services);
        let mounts = vec![Mount::Named {
            volume: "nats-1".into(),
            target: "/data".into(),
        }];
        let text = "server_name: nats-1\nlisten: 0.0.0.0:4222\nroutes: [nats-route://nats-2:6222]\n\
                    store_dir: /data\nurl = \"http://app:9000/hooks\"\nx: /database\nmy-nats-1:4222";
        let out = mapping.rewrite(&service("nats-1"), &mounts, text)?;
        let own = mapping.allocated("nats-1", 4222).context("own port")?;
        let route = mapping.allocated("nats-2", 6222).context("route")?;
        let app = mapping.allocated("app", 9000).context("app")?;
        assert_eq!(
            out,
            format!(
                "server_name: nats-1\nlisten: 127.0.0.1:{own}\nroutes: [nats-route://127.0.0.1:{route}]\n\
                 store_dir: /s/volumes/nats-1\nurl = \"http://127.0.0.1:{app}/hooks\"\nx: /database\nmy-nats-1:4222"
            )
        );
        Ok(())
    }
}
