//! The CLI's one error type and the exit codes it maps to.

use std::process::ExitCode;

/// Exit code: the command did what was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code: the operation failed (NATS unreachable, a publish without
/// PubAck, ingest refused a send, a child process of `up` died, …).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage or configuration error; nothing was attempted.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: what was named does not exist (a source, a webhook id, a dead
/// letter's sequence, a stream, a group).
pub const EXIT_NOT_FOUND: u8 = 3;

/// Why a command did not succeed. [`Error::exit_code`] says how the process
/// ends; the message (with its causes) is printed on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or an unusable configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The configuration file or an override cannot be loaded (exit 2).
    #[error(transparent)]
    Config(#[from] hookline_platform::config::ConfigError),
    /// What the command names does not exist (exit 3).
    #[error("{0}")]
    NotFound(String),
    /// The operation was tried and failed (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The operation failed because of an underlying error (exit 1).
    #[error("{context}")]
    Caused {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// A failure with its cause.
    pub fn caused(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Caused {
            context: context.into(),
            source: source.into(),
        }
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Config(_) => EXIT_USAGE,
            Self::NotFound(_) => EXIT_NOT_FOUND,
            Self::Failed(_) | Self::Caused { .. } => EXIT_FAILED,
        }
    }

    /// The message with every cause, on one line: `a: b: c`, each cause
    /// once (some libraries print their source in their own message too).
    pub fn one_line(&self) -> String {
        hookline_platform::error::chain(self)
    }

    /// The process exit code.
    pub fn exit(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}

/// `Result` with the CLI's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to any error, making it an [`Error::Caused`] (exit 1).
pub trait Context<T> {
    /// Wraps the error with what was being done.
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E> Context<T> for std::result::Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::caused(context(), source))
    }
}
