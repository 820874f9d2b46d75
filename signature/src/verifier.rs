//! [`Verifier`]: one source's scheme with its keys prepared, and the dispatch to
//! each provider's module.

use std::time::{Duration, SystemTime};

use http::HeaderName;

use crate::error::{ConfigError, Rejection};
use crate::github::Github;
use crate::hmac_scheme::HmacScheme;
use crate::mac::Keys;
use crate::request::{Request, Verified};
use crate::shopify::Shopify;
use crate::slack::Slack;
use crate::spec::ProviderSpec;
use crate::standard_webhooks::StandardWebhooks;
use crate::stripe::Stripe;

/// One variant per scheme. Non-HMAC schemes (Ed25519 for Discord, ECDSA for
/// SendGrid, Twilio's URL-based HMAC-SHA1) join as further variants with their own
/// key types; nothing outside this module needs to change.
#[derive(Debug, Clone)]
pub(crate) enum Scheme {
    Github(Github),
    Stripe(Stripe),
    StandardWebhooks(StandardWebhooks),
    Shopify(Shopify),
    Slack(Slack),
    Hmac(Box<HmacScheme>),
}

/// Verifies one source's deliveries. Built once per source at start-up (secrets
/// decoded, HMAC key states prepared), then shared: it is `Send + Sync` and
/// verification takes `&self`.
///
/// `Debug` shows the scheme and the number of secrets, never their bytes.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    name: &'static str,
}

impl Verifier {
    /// Prepares the verifier of `spec`.
    ///
    /// `secrets` are the raw secret strings as configured, one or more: during a
    /// rotation any of them may match. `tolerance` replaces the scheme's default
    /// replay window ([`ProviderSpec::default_tolerance`]).
    ///
    /// # Errors
    /// [`ConfigError`] when no secret is given or one is empty, a Standard Webhooks
    /// secret is not base64, the `hmac` settings are inconsistent, or a `tolerance`
    /// is given for a scheme that signs no timestamp.
    pub fn new(
        spec: &ProviderSpec,
        secrets: &[&[u8]],
        tolerance: Option<Duration>,
    ) -> Result<Self, ConfigError> {
        let name = spec.scheme();
        let window = match spec.default_tolerance() {
            Some(default) => tolerance.unwrap_or(default),
            None if tolerance.is_some() => {
                return Err(ConfigError::ToleranceWithoutTimestamp { scheme: name });
            }
            None => Duration::ZERO,
        };
        let scheme = match spec {
            ProviderSpec::Github => Scheme::Github(Github::new(secrets)?),
            ProviderSpec::Stripe => Scheme::Stripe(Stripe::new(secrets, window)?),
            ProviderSpec::StandardWebhooks => {
                Scheme::StandardWebhooks(StandardWebhooks::new(secrets, window)?)
            }
            ProviderSpec::Shopify => Scheme::Shopify(Shopify::new(secrets)?),
            ProviderSpec::Slack => Scheme::Slack(Slack::new(secrets, window)?),
            ProviderSpec::Hmac(hmac) => {
                Scheme::Hmac(Box::new(hmac.compile(Keys::raw(secrets)?, tolerance)?))
            }
        };
        Ok(Self { scheme, name })
    }

    /// The scheme name (see [`ProviderSpec::scheme`]).
    pub fn scheme(&self) -> &'static str {
        self.name
    }

    /// Checks the signature (and the signed timestamp, where there is one) against
    /// `now`, then, only once that holds, reads the delivery id and event type.
    ///
    /// # Errors
    /// A [`Rejection`] naming why the request is not genuine or not fresh.
    pub fn verify(&self, request: &Request<'_>, now: SystemTime) -> Result<Verified, Rejection> {
        match &self.scheme {
            Scheme::Github(github) => github.verify(request),
            Scheme::Stripe(stripe) => stripe.verify(request, now),
            Scheme::StandardWebhooks(standard) => standard.verify(request, now),
            Scheme::Shopify(shopify) => shopify.verify(request),
            Scheme::Slack(slack) => slack.verify(request, now),
            Scheme::Hmac(hmac) => hmac.verify(request, now),
        }
    }

    /// Whether `name` carries a signature: such headers must never be stored,
    /// logged or forwarded.
    pub fn is_secret_header(&self, name: &HeaderName) -> bool {
        match &self.scheme {
            Scheme::Github(_) => Github::is_secret_header(name),
            Scheme::Stripe(_) => Stripe::is_secret_header(name),
            Scheme::StandardWebhooks(_) => StandardWebhooks::is_secret_header(name),
            Scheme::Shopify(_) => Shopify::is_secret_header(name),
            Scheme::Slack(_) => Slack::is_secret_header(name),
            Scheme::Hmac(hmac) => hmac.is_secret_header(name),
        }
    }

    pub(crate) fn scheme_impl(&self) -> &Scheme {
        &self.scheme
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ingest shares one verifier per source across request tasks.
    #[test]
    fn verifiers_and_signers_are_shareable() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Verifier>();
        shareable::<crate::Signer>();
        shareable::<Rejection>();
        shareable::<ConfigError>();
    }
}
