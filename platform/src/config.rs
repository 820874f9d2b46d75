//! Configuration loading: one TOML file, then `HOOKLINE_<SECTION>_<KEY>`
//! environment overrides, deserialized into the caller's typed config.
//!
//! `HOOKLINE_NATS_URL=…` sets `[nats] url`; a nested key uses a double
//! underscore: `HOOKLINE_PROCESSOR_BACKOFF__INITIAL=2s` sets
//! `[processor] backoff.initial`. Values are read as TOML scalars or inline
//! arrays (`8`, `true`, `["a","b"]`) and otherwise as strings; a key the file
//! already holds as a string stays a string. Only the environment map handed
//! to [`load`] is read: binaries pass `std::env::vars()`, tests pass their own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

mod byte_size;
pub use byte_size::ByteSize;

/// The prefix of every override variable.
pub const ENV_PREFIX: &str = "HOOKLINE_";
/// The variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "HOOKLINE_CONFIG";
/// Sections that environment variables may override.
pub const SECTIONS: &[&str] = &["nats", "stream", "ingest", "processor", "telemetry"];

/// Why configuration could not be loaded. Messages name the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong shape.
    #[error("invalid configuration{}: {message}", origin.as_deref().map(|p| format!(" in {p}")).unwrap_or_default())]
    Invalid {
        /// The file, when one was read.
        origin: Option<String>,
        /// What is wrong, with the key path.
        message: String,
    },
    /// No config file was named (`--config FILE` or `HOOKLINE_CONFIG`).
    #[error("no config file: pass --config FILE or set {CONFIG_ENV}")]
    NoFile,
    /// An environment override cannot be applied.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
}

/// Loads `path` (if any), applies overrides from `env`, and deserializes.
///
/// # Errors
/// An unreadable file, invalid TOML, an override that targets a non-table,
/// or a value that does not fit `T` (unknown keys included, where `T` denies them).
pub fn load<T: DeserializeOwned>(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let origin = path.map(|p| p.display().to_string());
    let mut table = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Invalid {
                    origin: origin.clone(),
                    message: e.message().to_owned(),
                })?
        }
        None => toml::Table::new(),
    };
    apply_env(&mut table, env)?;
    // The path makes a wrong type name its key (`processor.concurrency: invalid
    // type …`); serde alone reports only the type.
    serde_path_to_error::deserialize(table).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().message().to_owned();
        ConfigError::Invalid {
            origin,
            message: if path == "." || message.contains(&path) {
                message
            } else {
                format!("{path}: {message}")
            },
        }
    })
}

fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name != CONFIG_ENV)
        .collect();
    overrides.sort(); // deterministic when two variables touch one key
    for (var, value) in overrides {
        let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        let Some((section, key)) = SECTIONS.iter().find_map(|section| {
            rest.strip_prefix(section)
                .and_then(|r| r.strip_prefix('_'))
                .map(|key| (*section, key))
        }) else {
            continue; // not a config override (e.g. HOOKLINE_LOG_FORMAT is read elsewhere)
        };
        let path: Vec<&str> = std::iter::once(section).chain(key.split("__")).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::Env {
                var,
                message: "empty key".to_owned(),
            });
        }
        set_path(table, &path, &value).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
    }
    Ok(())
}

fn set_path(table: &mut toml::Table, path: &[&str], raw: &str) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut current = table;
    for part in parents {
        let entry = current
            .entry((*part).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is not a table in the config file"))?;
    }
    let keep_string = matches!(current.get(*last), Some(toml::Value::String(_)));
    current.insert((*last).to_owned(), env_value(raw, keep_string));
    Ok(())
}

fn env_value(raw: &str, keep_string: bool) -> toml::Value {
    let parsed = (!keep_string)
        .then(|| format!("v = {raw}").parse::<toml::Table>().ok())
        .flatten()
        .and_then(|mut doc| doc.remove("v"));
    parsed.unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// Deserializes a human duration: `"500ms"`, `"30s"`, `"5m"`, `"7d"`.
///
/// # Errors
/// A string humantime cannot parse (the message quotes it).
pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Like [`duration`], for optional keys (`#[serde(default, deserialize_with = …)]`).
///
/// # Errors
/// As [`duration`].
pub fn opt_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

/// Parses a human duration such as `"10m"`.
///
/// # Errors
/// A message quoting the bad text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?} ({e}); use e.g. \"500ms\", \"30s\", \"5m\", \"7d\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        nats: Nats,
        processor: Processor,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Nats {
        url: String,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Processor {
        group: String,
        concurrency: u32,
        #[serde(deserialize_with = "duration")]
        ack_wait: Duration,
        backoff: Backoff,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Backoff {
        #[serde(deserialize_with = "duration")]
        initial: Duration,
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    const FILE: &str = r#"
        [nats]
        url = "nats://a:4222"
        [processor]
        group = "123"
        concurrency = 4
        ack_wait = "30s"
        backoff = { initial = "1s" }
    "#;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = write(FILE);
        let env = vars(&[
            ("HOOKLINE_NATS_URL", "nats://b:4222,nats://c:4222"),
            ("HOOKLINE_PROCESSOR_CONCURRENCY", "64"),
            ("HOOKLINE_PROCESSOR_GROUP", "456"),
            ("HOOKLINE_PROCESSOR_BACKOFF__INITIAL", "2s"),
            ("HOOKLINE_CONFIG", "/ignored"),
            ("PATH", "/bin"),
        ]);
        let sample: Sample = load(Some(file.path()), env).unwrap();
        assert_eq!(sample.nats.url, "nats://b:4222,nats://c:4222");
        assert_eq!(sample.processor.concurrency, 64);
        assert_eq!(sample.processor.group, "456", "a string key stays a string");
        assert_eq!(sample.processor.backoff.initial, Duration::from_secs(2));
        assert_eq!(sample.processor.ack_wait, Duration::from_secs(30));
    }

    #[test]
    fn bad_input_names_the_problem() {
        let file = write(&FILE.replace("\"30s\"", "\"30 parsecs\""));
        let err = load::<Sample>(Some(file.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("30 parsecs"), "{err}");

        let file = write(&format!("{FILE}\n[nats2]\nx = 1\n"));
        let err = load::<Sample>(Some(file.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nats2"), "{err}");

        let file = write(&FILE.replace("concurrency = 4", "concurrency = \"four\""));
        let err = load::<Sample>(Some(file.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("processor.concurrency: invalid type"), "{err}");

        let file = write("[nats\nurl=");
        let err = load::<Sample>(Some(file.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid configuration in"), "{err}");

        let err = load::<Sample>(Some(Path::new("/nonexistent.toml")), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent.toml"), "{err}");

        let file = write(FILE);
        let env = vars(&[("HOOKLINE_NATS_URL__X", "1")]);
        let err = load::<Sample>(Some(file.path()), env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("HOOKLINE_NATS_URL__X"), "{err}");
    }
}
