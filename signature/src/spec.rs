//! Which provider signs a source's deliveries, as written in configuration.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::catalogue::{self, Provider};
use crate::error::ConfigError;
use crate::hmac_spec::HmacSpec;
use crate::timestamp::DEFAULT_TOLERANCE;

/// Provider and provider-specific settings, read from a `[[sources]]` table.
///
/// Read by `provider`; ingest embeds it with `#[serde(flatten)]` next to its own
/// keys (`name`, `secrets`, `tolerance`, `max_body`, `public_url`, ...). Because
/// serde's `deny_unknown_fields` does not work through `flatten`, unknown keys are
/// left to the embedding config: it accepts a key when it is its own or in
/// [`ProviderSpec::known_keys`], and refuses the rest (a misspelt `separater`
/// must not silently change how signatures are read).
///
/// Every named preset of the [catalogue](crate::providers) is accepted:
/// `provider = "twilio"`, `"discord"`, `"meta"`, `"coinbase-commerce"`, ... The
/// first five below keep their own variants; `hmac` takes [`HmacSpec`] settings.
///
/// Per provider (URL `/webhooks/<source name>`):
/// - `github`: secret = the webhook's "Secret". Verifies `X-Hub-Signature-256`.
/// - `stripe`: secret = the endpoint's signing secret, the whole `whsec_...` string.
/// - `standard-webhooks` (alias `svix`): secret = the endpoint's `whsec_...`
///   secret (with or without the prefix); accepts `webhook-*` and `svix-*` headers.
/// - `shopify`: secret = the app's client secret (API secret key).
/// - `slack`: secret = the app's "Signing Secret" (not the verification token).
/// - `hmac`: any HMAC scheme described by [`HmacSpec`].
/// - any other preset: see [`Provider::secret`](crate::Provider) and `docs/providers.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderSpec {
    /// GitHub webhooks (`X-Hub-Signature-256`, no timestamp).
    Github,
    /// Stripe (`Stripe-Signature`, 5 minute age limit).
    Stripe,
    /// Standard Webhooks and Svix (`webhook-*`/`svix-*`, ±5 minutes).
    StandardWebhooks,
    /// Shopify (`X-Shopify-Hmac-Sha256` or `Shopify-Hmac-Sha256`, no timestamp).
    Shopify,
    /// Slack (`X-Slack-Signature`, ±5 minutes).
    Slack,
    /// A declarative HMAC scheme (boxed: it is much larger than the others).
    Hmac(Box<HmacSpec>),
    /// Any other named preset of the catalogue.
    Preset(Preset),
}

/// A catalogue entry chosen by name (compared by name).
#[derive(Debug, Clone, Copy)]
pub struct Preset(pub &'static Provider);

impl PartialEq for Preset {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Preset {}

/// The keys every provider reads: only the tag.
const TAG_ONLY: &[&str] = &["provider"];

impl ProviderSpec {
    /// The scheme name, as recorded in the envelope (`"github"`, `"hmac"`,
    /// `"twilio"`, ...).
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::StandardWebhooks => "standard-webhooks",
            Self::Shopify => "shopify",
            Self::Slack => "slack",
            Self::Hmac(_) => "hmac",
            Self::Preset(preset) => preset.0.name,
        }
    }

    /// The catalogue entry of this provider (`None` for `hmac`).
    pub fn provider(&self) -> Option<&'static Provider> {
        match self {
            Self::Hmac(_) => None,
            Self::Preset(preset) => Some(preset.0),
            other => catalogue::provider(other.scheme()),
        }
    }

    /// The replay window used when the source sets no `tolerance`; `None` when the
    /// scheme signs no timestamp (then dedup by id is the only replay defence).
    pub fn default_tolerance(&self) -> Option<Duration> {
        match self {
            Self::Hmac(spec) if spec.has_timestamp() => Some(DEFAULT_TOLERANCE),
            Self::Hmac(_) => None,
            other => other.provider().and_then(|provider| provider.replay_window),
        }
    }

    /// Whether the scheme signs the public URL: the source needs `public_url`.
    pub fn uses_public_url(&self) -> bool {
        match self {
            Self::Hmac(spec) => spec.signs_url(),
            other => other.provider().is_some_and(Provider::uses_public_url),
        }
    }

    /// Whether the provider's handshake checks a `verify_token` (Meta).
    pub fn uses_verify_token(&self) -> bool {
        self.provider().is_some_and(Provider::uses_verify_token)
    }

    /// Whether the provider needs `public_key` (Braintree).
    pub fn uses_public_key(&self) -> bool {
        self.provider().is_some_and(Provider::uses_public_key)
    }

    /// Methods other than `POST` that must reach the source (handshakes, HubSpot v2 GET).
    pub fn extra_methods(&self) -> &'static [&'static str] {
        self.provider().map_or(&[], Provider::extra_methods)
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
            other => catalogue::provider(other)
                .map(|provider| Self::Preset(Preset(provider)))
                .ok_or_else(|| ConfigError::UnknownProvider(other.to_owned())),
        }
    }
}

impl<'de> Deserialize<'de> for ProviderSpec {
    /// Reads `provider`; for `hmac`, the [`HmacSpec`] keys from the same table.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let table = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let name = match table.get("provider") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err(D::Error::custom("`provider` must be a string")),
            None => return Err(D::Error::missing_field("provider")),
        };
        if name == "hmac" {
            let spec: HmacSpec =
                serde_json::from_value(Value::Object(table)).map_err(D::Error::custom)?;
            return Ok(Self::Hmac(Box::new(spec)));
        }
        name.parse().map_err(D::Error::custom)
    }
}
