//! Built-in handlers the `hookline-processor` binary can run without code:
//! [`HttpHandler`] (forward to an internal URL) and [`FileHandler`] (append
//! JSON lines), chosen at run time through [`Builtin`].

mod file;
mod http;

pub use file::FileHandler;
pub use http::{HttpHandler, parse_retry_after};

use crate::Error;
use crate::config::HandlerConfig;
use crate::handler::{Handler, Outcome, Webhook};

/// One of the built-in handlers, as configured by `[processor] handler`.
#[derive(Debug)]
pub enum Builtin {
    /// `handler = { http = { … } }`.
    Http(HttpHandler),
    /// `handler = { file = { … } }`.
    File(FileHandler),
}

impl Builtin {
    /// Builds the configured handler (opens the file, builds the HTTP client).
    ///
    /// # Errors
    /// The file cannot be opened for appending, or the HTTP client cannot be built.
    pub async fn from_config(config: &HandlerConfig) -> Result<Self, Error> {
        Ok(match config {
            HandlerConfig::Http(http) => Self::Http(HttpHandler::new(&http.url, http.timeout)?),
            HandlerConfig::File(file) => Self::File(FileHandler::open(&file.path).await?),
        })
    }
}

impl Handler for Builtin {
    async fn handle(&self, webhook: &Webhook) -> Outcome {
        match self {
            Self::Http(handler) => handler.handle(webhook).await,
            Self::File(handler) => handler.handle(webhook).await,
        }
    }
}
