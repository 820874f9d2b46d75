//! Which provider signs a source's deliveries, as written in configuration.

use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::hmac_spec::HmacSpec;
use crate::timestamp::DEFAULT_TOLERANCE;

/// Provider and provider-specific settings, read from a `[[sources]]` table.
///
/// Internally tagged by `provider`; ingest embeds it with `#[serde(flatten)]` next
/// to its own keys (`name`, `secrets`, `tolerance`, `max_body`). Because serde's
/// `deny_unknown_fields` does not work through `flatten`, unknown keys are left to
/// the embedding config: it accepts a key when it is its own or in
/// [`ProviderSpec::known_keys`], and refuses the rest (a misspelt `separater`
/// must not silently change how signatures are read).
///
/// Per provider (URL `/webhooks/<source name>`):
/// - `github`: secret = the webhook's "Secret". Verifies `X-Hub-Signature-256`.
/// - `stripe`: secret = the endpoint's signing secret, the whole `whsec_...` string.
/// - `standard-webhooks` (alias `svix`): secret = the endpoint's `whsec_...`
///   secret (with or without the prefix); accepts `webhook-*` and `svix-*` headers.
/// - `shopify`: secret = the app's client secret (API secret key).
/// - `slack`: secret = the app's "Signing Secret" (not the verification token).
/// - `hmac`: any HMAC-SHA256 scheme described by [`HmacSpec`] (Linear, Paddle,
///   PagerDuty, Zoom, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProviderSpec {
    /// GitHub webhooks (`X-Hub-Signature-256`, no timestamp).
    Github,
    /// Stripe (`Stripe-Signature`, 5 minute age limit).
    Stripe,
    /// Standard Webhooks and Svix (`webhook-*`/`svix-*`, ±5 minutes).
    #[serde(alias = "svix")]
    StandardWebhooks,
    /// Shopify (`X-Shopify-Hmac-Sha256` or `Shopify-Hmac-Sha256`, no timestamp).
    Shopify,
    /// Slack (`X-Slack-Signature`, ±5 minutes).
    Slack,
    /// A declarative HMAC-SHA256 scheme (boxed: it is much larger than the others).
    Hmac(Box<HmacSpec>),
}

/// The keys every provider reads: only the tag.
const TAG_ONLY: &[&str] = &["provider"];

impl ProviderSpec {
    /// The scheme name, as recorded in the envelope (`"github"`, `"hmac"`, ...).
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::StandardWebhooks => "standard-webhooks",
            Self::Shopify => "shopify",
            Self::Slack => "slack",
            Self::Hmac(_) => "hmac",
        }
    }

    /// The replay window used when the source sets no `tolerance`; `None` when the
    /// scheme signs no timestamp (then dedup by id is the only replay defence).
    pub fn default_tolerance(&self) -> Option<Duration> {
        match self {
            Self::Stripe | Self::StandardWebhooks | Self::Slack => Some(DEFAULT_TOLERANCE),
            Self::Hmac(spec) if spec.has_timestamp() => Some(DEFAULT_TOLERANCE),
            Self::Github | Self::Shopify | Self::Hmac(_) => None,
        }
    }

    /// The configuration keys this provider reads, `provider` included, so that
    /// the embedding config can refuse any other key it does not own itself.
    pub fn known_keys(&self) -> &'static [&'static str] {
        match self {
            Self::Hmac(_) => HmacSpec::KEYS,
            _ => TAG_ONLY,
        }
    }
}

impl FromStr for ProviderSpec {
    type Err = ConfigError;

    /// A provider chosen by name alone (e.g. on the CLI); `hmac` needs settings.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "github" => Ok(Self::Github),
            "stripe" => Ok(Self::Stripe),
            "standard-webhooks" | "svix" => Ok(Self::StandardWebhooks),
            "shopify" => Ok(Self::Shopify),
            "slack" => Ok(Self::Slack),
            "hmac" => Err(ConfigError::HmacNeedsSettings),
            other => Err(ConfigError::UnknownProvider(other.to_owned())),
        }
    }
}
