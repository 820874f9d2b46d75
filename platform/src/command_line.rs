//! The command line every Hookline binary shares: `--config FILE` (or
//! `HOOKLINE_CONFIG`), `--help`, `--version` (clap, as the `hookline` CLI
//! parses its own), and the exit codes: 0 after a clean stop, 2 for usage
//! and configuration errors (nothing was started), 1 for failures at run
//! time. Secrets are never taken from the command line.

use std::fmt::Display;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{CONFIG_ENV, ConfigError};

/// `-c, --config FILE`, falling back to `HOOKLINE_CONFIG`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Hookline config file (TOML); every key can be overridden with
    /// `HOOKLINE_<SECTION>_<KEY>`, e.g. `HOOKLINE_NATS_URL`
    #[arg(
        short,
        long,
        value_name = "FILE",
        env = CONFIG_ENV,
        help = "Hookline config file (TOML); every key can be overridden with \
                HOOKLINE_<SECTION>_<KEY>, e.g. HOOKLINE_NATS_URL"
    )]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// The config file, which a service binary cannot run without.
    ///
    /// # Errors
    /// [`ConfigError::NoFile`] when neither the flag nor the variable names one.
    pub fn required(&self) -> Result<&Path, ConfigError> {
        self.config.as_deref().ok_or(ConfigError::NoFile)
    }
}

/// Usage or configuration error: nothing was started.
pub const EXIT_USAGE: u8 = 2;
/// A failure at run time (NATS unreachable, a port taken, …).
pub const EXIT_FAILURE: u8 = 1;

/// Prints `program: message` on stderr and returns `code`. A failed write
/// is ignored: the exit code still tells. The message carries the cause
/// chain, each cause once ([`crate::error::chain`]).
pub fn fail_with(program: &str, code: u8, message: impl Display) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "{program}: {message}");
    ExitCode::from(code)
}
