//! Secrets: read from the environment or a file (or inline, for local
//! development), held in a newtype whose `Debug` never shows the value.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A secret value. `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (tests and config literals).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's value, for the one place that needs it (a MAC key, a
    /// NATS password). Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from, as written in the config file:
/// `{ env = "NAME" }`, `{ file = "/run/secrets/x" }` or `{ value = "…" }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable's value, without trailing whitespace.
    Env(String),
    /// A file's content, without trailing whitespace (newlines included:
    /// `echo secret > file`, an editor's final newline, a stray space would
    /// otherwise make every signature check fail).
    File(PathBuf),
    /// Inline in the config file: for local development only.
    Value(Secret),
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Why a secret could not be read. Messages name the variable or file, never
/// the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The variable is unset, empty or not UTF-8.
    #[error("environment variable {0} is not set (or is empty)")]
    MissingEnv(String),
    /// The file could not be read.
    #[error("cannot read secret file {path}")]
    File {
        /// The file named in the config.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The source yielded an empty value.
    #[error("secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret now (at start-up).
    ///
    /// # Errors
    /// A missing or empty variable, an unreadable or empty file.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            Self::Env(name) => match std::env::var(name) {
                Ok(value) if !value.trim_end().is_empty() => {
                    Ok(Secret(value.trim_end().to_owned()))
                }
                _ => Err(SecretError::MissingEnv(name.clone())),
            },
            Self::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                // Secrets (random tokens, keys, passwords) never end in
                // whitespace; files often do.
                let value = text.trim_end();
                if value.is_empty() {
                    return Err(SecretError::Empty(path.display().to_string()));
                }
                Ok(Secret(value.to_owned()))
            }
            Self::Value(secret) if secret.0.is_empty() => {
                Err(SecretError::Empty("an inline value".to_owned()))
            }
            Self::Value(secret) => Ok(secret.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
        let source = SecretSource::Value(secret);
        assert!(!format!("{source:?}").contains("hunter2"));
    }

    #[test]
    fn file_secret_drops_trailing_whitespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        for content in ["abc", "abc\n", "abc\r\n", "abc \n\n", "abc\t\r\n  "] {
            std::fs::write(&path, content).unwrap();
            let secret = SecretSource::File(path.clone()).resolve().unwrap();
            assert_eq!(secret.expose(), "abc", "{content:?}");
        }
        // Inner and leading characters are the secret's own.
        std::fs::write(&path, " a b\n").unwrap();
        let secret = SecretSource::File(path.clone()).resolve().unwrap();
        assert_eq!(secret.expose(), " a b");
        std::fs::write(&path, " \n\n").unwrap();
        assert!(matches!(
            SecretSource::File(path).resolve(),
            Err(SecretError::Empty(_))
        ));
    }

    #[test]
    fn missing_sources_name_what_is_missing() {
        let err = SecretSource::Env("HOOKLINE_TEST_SURELY_UNSET_VAR".into())
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("HOOKLINE_TEST_SURELY_UNSET_VAR"));
        let err = SecretSource::File("/nonexistent/secret".into())
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/secret"));
    }
}
