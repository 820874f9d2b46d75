//! [`Signer`]: signing exactly as a provider does, for tests and `hookline send`.

use http::HeaderName;

use crate::error::ConfigError;
use crate::spec::ProviderSpec;
use crate::verifier::{Scheme, Verifier};

/// Produces the headers a provider would attach to a delivery of `body`.
///
/// `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct Signer {
    verifier: Verifier,
}

impl Signer {
    /// Prepares signing with one secret, given as it would be configured.
    ///
    /// # Errors
    /// As [`Verifier::new`].
    pub fn new(spec: &ProviderSpec, secret: &[u8]) -> Result<Self, ConfigError> {
        Ok(Self {
            verifier: Verifier::new(spec, &[secret], None)?,
        })
    }

    /// The headers (name, value) to add to a request carrying `body`: the
    /// signature, its timestamp, and the id/event headers where the provider uses
    /// headers for them.
    ///
    /// `id` goes where the provider puts a delivery id (ignored where the id lives
    /// in the body; for GitHub, `hook:delivery` fills both headers). `event` likewise.
    /// `timestamp` is unix seconds (ignored by schemes that sign none).
    pub fn sign(
        &self,
        body: &[u8],
        id: &str,
        event: &str,
        timestamp: u64,
    ) -> Vec<(HeaderName, String)> {
        match self.verifier.scheme_impl() {
            Scheme::Github(github) => github.sign(body, id, event),
            Scheme::Stripe(stripe) => stripe.sign(body, timestamp),
            Scheme::StandardWebhooks(standard) => standard.sign(body, id, timestamp),
            Scheme::Shopify(shopify) => shopify.sign(body, id, event),
            Scheme::Slack(slack) => slack.sign(body, timestamp),
            Scheme::Hmac(hmac) => hmac.sign(body, id, event, timestamp),
        }
    }

    /// The scheme name (see [`ProviderSpec::scheme`]).
    pub fn scheme(&self) -> &'static str {
        self.verifier.scheme()
    }
}
