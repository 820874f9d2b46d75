//! The crate's two outcomes of failure: a delivery rejected ([`Rejection`]) and a
//! configuration refused at start-up ([`ConfigError`]).

use http::HeaderName;
use thiserror::Error;

/// Why a delivery was rejected. Every variant means "not genuine or not fresh":
/// ingest answers 401 for all of them and must not echo the detail to the caller
/// (it helps an attacker); [`Rejection::reason`] is the label for metrics and logs.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The provider's signature header is absent.
    #[error("signature header is missing")]
    MissingSignature,
    /// The signature header is present but holds no usable signature of the expected
    /// scheme/version (wrong prefix, bad hex/base64, wrong length, oversized header).
    #[error("signature header is malformed")]
    MalformedSignature,
    /// Well-formed signatures were present but none matched any configured secret.
    #[error("signature does not match")]
    InvalidSignature,
    /// The scheme signs a timestamp and the request carries none.
    #[error("timestamp is missing")]
    MissingTimestamp,
    /// The timestamp is not a plain non-negative integer of sane length.
    #[error("timestamp is malformed")]
    MalformedTimestamp,
    /// The timestamp is older than the replay window allows.
    #[error("timestamp is older than the replay window")]
    StaleTimestamp,
    /// The timestamp is further in the future than the replay window allows.
    #[error("timestamp is too far in the future")]
    FutureTimestamp,
    /// A header the scheme requires (e.g. `webhook-id`, `X-Shopify-Topic`) is absent.
    #[error("required header `{0}` is missing")]
    MissingHeader(HeaderName),
    /// A header the scheme requires is present but unusable (not UTF-8, oversized).
    #[error("header `{0}` is malformed")]
    MalformedHeader(HeaderName),
}

impl Rejection {
    /// Short snake_case label for metrics (a bounded label set), e.g. `"invalid_signature"`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::MissingTimestamp => "missing_timestamp",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::StaleTimestamp => "stale_timestamp",
            Self::FutureTimestamp => "future_timestamp",
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader(_) => "malformed_header",
        }
    }
}

/// Why a source's signature configuration was refused. Raised once at start-up by
/// [`Verifier::new`](crate::Verifier::new) / [`Signer::new`](crate::Signer::new); the
/// messages name the offending setting so an operator can fix the file.
#[derive(Error, Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A source must have at least one secret.
    #[error("no secret configured: a source needs at least one")]
    NoSecret,
    /// A configured secret is the empty string (usually an unset environment variable).
    #[error("a configured secret is empty (is its environment variable or file empty?)")]
    EmptySecret,
    /// A Standard Webhooks secret did not decode.
    #[error("standard-webhooks secret is not valid base64 after the whsec_ prefix")]
    SecretNotBase64(#[source] base64::DecodeError),
    /// The provider name is not one this crate knows.
    #[error(
        "unknown provider `{0}`; expected `hmac` or one of the presets `hookline providers` lists (github, stripe, twilio, discord, ...)"
    )]
    UnknownProvider(String),
    /// `provider = "hmac"` cannot be chosen by name alone.
    #[error("provider `hmac` needs its settings (header, encoding, signed, ...), not just a name")]
    HmacNeedsSettings,
    /// A tolerance was configured for a scheme whose signature covers no timestamp.
    #[error(
        "{scheme}: `tolerance` is set, but this scheme signs no timestamp, so there is no replay window to tune; remove it"
    )]
    ToleranceWithoutTimestamp {
        /// The scheme name.
        scheme: &'static str,
    },
    /// A header name setting of the `hmac` provider is not a valid HTTP header name.
    #[error("hmac provider: `{key}` = {value:?} is not a valid HTTP header name")]
    InvalidHeaderName {
        /// The setting.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// A JSON field path setting of the `hmac` provider is unusable.
    #[error("hmac provider: `{key}` = {value:?} is not a dot-separated JSON field path")]
    InvalidJsonPath {
        /// The setting.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// A setting of the `hmac` provider is the empty string.
    #[error("hmac provider: `{0}` must not be empty; leave it out instead")]
    EmptySetting(&'static str),
    /// The `signed` template names a placeholder that does not exist.
    #[error(
        "hmac provider: unknown placeholder `{{{0}}}` in `signed`; use {{body}}, {{timestamp}} (or {{ts}}), {{id}}, {{url}}, {{method}}, {{secret}} or {{header:NAME}}"
    )]
    UnknownPlaceholder(String),
    /// The `signed` template has a `{` without its `}`.
    #[error("hmac provider: unclosed `{{` in `signed`")]
    UnclosedPlaceholder,
    /// Any other inconsistent `hmac` setting; the message says which and why.
    #[error("hmac provider: {0}")]
    InvalidHmacSetting(&'static str),
    /// A public (or test private) key is not in the form the provider gives it.
    #[error("{0}")]
    InvalidPublicKey(&'static str),
    /// A provider needs a setting that is not configured.
    #[error("provider `{provider}` needs `{key}`")]
    MissingSetting {
        /// The missing setting.
        key: &'static str,
        /// The provider.
        provider: &'static str,
    },
}
