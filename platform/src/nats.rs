//! The `[nats]` section and the client connection every binary makes.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{Client, ConnectOptions};
use serde::Deserialize;

use crate::config;
use crate::secret::{Secret, SecretError, SecretSource};

/// Credentials written into `nats.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlCredentials {
    /// `nats://user:password@host`.
    UserPassword(String, Secret),
    /// `nats://token@host`.
    Token(Secret),
}

/// The `[nats]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL, or a comma-separated list for a cluster.
    #[serde(default = "default_url")]
    pub url: String,
    /// Connection name shown in the server's monitoring (defaults to the binary's name).
    #[serde(default)]
    pub name: Option<String>,
    /// User for user/password authentication.
    #[serde(default)]
    pub user: Option<String>,
    /// Password for user/password authentication.
    #[serde(default)]
    pub password: Option<SecretSource>,
    /// Token authentication.
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// A `.creds` file (JWT + NKey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Require TLS and trust this CA file.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (with `tls_key_file`).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// Client key for mutual TLS.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// How long start-up keeps trying to reach a server.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "config::duration"
    )]
    pub connect_timeout: Duration,
    /// Bound on every JetStream API call and awaited PubAck.
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "config::duration"
    )]
    pub request_timeout: Duration,
    /// Ping interval: how fast a dead connection is noticed (two missed pings).
    #[serde(
        default = "default_ping_interval",
        deserialize_with = "config::duration"
    )]
    pub ping_interval: Duration,
}

fn default_url() -> String {
    "nats://127.0.0.1:4222".to_owned()
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_ping_interval() -> Duration {
    Duration::from_secs(10)
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: default_url(),
            name: None,
            user: None,
            password: None,
            token: None,
            credentials_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            connect_timeout: default_connect_timeout(),
            request_timeout: default_request_timeout(),
            ping_interval: default_ping_interval(),
        }
    }
}

/// Why the connection could not be made. Never contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `url` is empty or a part of it is not a server address (credentials
    /// in it are shown as `***`).
    #[error("invalid nats.url {0:?}")]
    Url(String),
    /// A password or token could not be read.
    #[error("cannot read NATS credentials")]
    Secret(#[from] SecretError),
    /// Only one of user and password is set, or a cert without a key.
    #[error("{0}")]
    Incomplete(&'static str),
    /// The credentials file could not be loaded.
    #[error("cannot load nats.credentials_file {path}")]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No server answered within `connect_timeout` (credentials in the URL
    /// are shown as `***`).
    #[error("cannot connect to NATS at {url} within {timeout:?}")]
    Unreachable {
        /// The configured URL(s).
        url: String,
        /// The configured timeout.
        timeout: Duration,
        /// The last error.
        #[source]
        source: async_nats::ConnectError,
    },
}

impl NatsConfig {
    /// The server addresses in `url`, without any credentials written into
    /// them (those are returned by [`url_credentials`](Self::url_credentials)
    /// and passed to the client as options, so no address that a library
    /// might log or print carries a password).
    ///
    /// # Errors
    /// An empty list or an address that does not parse.
    pub fn server_addrs(&self) -> Result<Vec<async_nats::ServerAddr>, ConnectError> {
        let addrs: Result<Vec<_>, _> = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let addr = part.parse::<async_nats::ServerAddr>().ok()?;
                if !addr.has_user_pass() {
                    return Some(addr);
                }
                let mut url = addr.into_inner();
                url.set_password(None).ok()?;
                url.set_username("").ok()?;
                async_nats::ServerAddr::from_url(url).ok()
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(());
        match addrs {
            Ok(addrs) if !addrs.is_empty() => Ok(addrs),
            _ => Err(ConnectError::Url(self.redacted_url())),
        }
    }

    /// Credentials written into `url` (`nats://user:password@host` or
    /// `nats://token@host`), from its first address that has any.
    pub fn url_credentials(&self) -> Option<UrlCredentials> {
        self.url.split(',').map(str::trim).find_map(|part| {
            let addr = part.parse::<async_nats::ServerAddr>().ok()?;
            let user = addr.username()?.to_owned();
            Some(match addr.password() {
                Some(password) => UrlCredentials::UserPassword(user, Secret::new(password)),
                None => UrlCredentials::Token(Secret::new(user)),
            })
        })
    }

    /// `url` with any credentials in it replaced by `***`, for messages.
    pub fn redacted_url(&self) -> String {
        self.url
            .split(',')
            .map(|part| match part.split_once("://") {
                Some((scheme, rest)) => {
                    let authority_end = rest.find('/').unwrap_or(rest.len());
                    match rest[..authority_end].rfind('@') {
                        Some(at) => format!("{scheme}://***{}", &rest[at..]),
                        None => part.to_owned(),
                    }
                }
                None => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Connection options with authentication, TLS, ping and a reconnect
    /// policy that never gives up (the process stays up and reports not ready).
    ///
    /// # Errors
    /// Unreadable secrets or credentials, incomplete auth settings.
    pub async fn options(&self, default_name: &str) -> Result<ConnectOptions, ConnectError> {
        let mut options = match &self.credentials_file {
            Some(path) => ConnectOptions::with_credentials_file(path.clone())
                .await
                .map_err(|source| ConnectError::Credentials {
                    path: path.clone(),
                    source,
                })?,
            None => ConnectOptions::new(),
        };
        // Credentials in the URL first; the explicit keys below win.
        match self.url_credentials() {
            Some(UrlCredentials::UserPassword(user, password)) => {
                options = options.user_and_password(user, password.expose().to_owned());
            }
            Some(UrlCredentials::Token(token)) => {
                options = options.token(token.expose().to_owned());
            }
            None => {}
        }
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => {
                options = options
                    .user_and_password(user.clone(), password.resolve()?.expose().to_owned());
            }
            (None, None) => {}
            _ => {
                return Err(ConnectError::Incomplete(
                    "nats.user and nats.password go together",
                ));
            }
        }
        if let Some(token) = &self.token {
            options = options.token(token.resolve()?.expose().to_owned());
        }
        if let Some(ca) = &self.tls_ca_file {
            options = options.require_tls(true).add_root_certificates(ca.clone());
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => {
                options = options
                    .require_tls(true)
                    .add_client_certificate(cert.clone(), key.clone());
            }
            (None, None) => {}
            _ => {
                return Err(ConnectError::Incomplete(
                    "nats.tls_cert_file and nats.tls_key_file go together",
                ));
            }
        }
        Ok(options
            .name(self.name.as_deref().unwrap_or(default_name))
            .ping_interval(self.ping_interval)
            .connection_timeout(self.connect_timeout.min(Duration::from_secs(5)))
            .request_timeout(Some(self.request_timeout))
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("disconnected from NATS; reconnecting")
                    }
                    other => tracing::info!(event = %other, "NATS event"),
                }
            }))
    }
}

/// Connects, retrying until `connect_timeout` has passed.
///
/// # Errors
/// Bad settings, or no server reachable in time.
pub async fn connect(config: &NatsConfig, default_name: &str) -> Result<Client, ConnectError> {
    let addrs = config.server_addrs()?;
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    let mut pause = Duration::from_millis(100);
    loop {
        let options = config.options(default_name).await?;
        match options.connect(addrs.clone()).await {
            Ok(client) => return Ok(client),
            Err(source) if tokio::time::Instant::now() + pause >= deadline => {
                return Err(ConnectError::Unreachable {
                    url: config.redacted_url(),
                    timeout: config.connect_timeout,
                    source,
                });
            }
            Err(error) => {
                tracing::warn!(%error, "NATS not reachable yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_lists_are_split_and_checked() {
        let config = NatsConfig {
            url: "nats://127.0.0.1:4222, nats://127.0.0.1:4223".into(),
            ..NatsConfig::default()
        };
        assert_eq!(config.server_addrs().unwrap().len(), 2);
        for bad in ["", " , ", "nats://host:notaport"] {
            let config = NatsConfig {
                url: bad.into(),
                ..NatsConfig::default()
            };
            assert!(config.server_addrs().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_split_off_and_redacted() {
        let config = NatsConfig {
            url:
                "nats://app:pa55@127.0.0.1:4222,nats://tok3n@127.0.0.1:4223, nats://127.0.0.1:4224"
                    .into(),
            ..NatsConfig::default()
        };
        let addrs = config.server_addrs().unwrap();
        for addr in &addrs {
            assert!(!addr.has_user_pass(), "{}", addr.as_url_str());
            assert!(!addr.as_url_str().contains("pa55") && !addr.as_url_str().contains("tok3n"));
        }
        assert_eq!(
            config.url_credentials(),
            Some(UrlCredentials::UserPassword(
                "app".into(),
                Secret::new("pa55")
            ))
        );
        let redacted = config.redacted_url();
        assert_eq!(
            redacted,
            "nats://***@127.0.0.1:4222,nats://***@127.0.0.1:4223, nats://127.0.0.1:4224"
        );
        let bad = NatsConfig {
            url: "nats://app:pa55@host:notaport".into(),
            ..NatsConfig::default()
        };
        let message = bad.server_addrs().unwrap_err().to_string();
        assert!(!message.contains("pa55"), "{message}");
    }
}
