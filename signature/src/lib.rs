//! Webhook signature verification for Hookline: proves that a delivery comes from
//! its provider and is fresh, before ingest makes it durable.
//!
//! Pure and I/O-free: every check is a function of the raw body bytes, the
//! headers, the configured secrets and an injected clock (`now`). Signatures are
//! decoded and compared as bytes in constant time (`Mac::verify_slice`), never as
//! text.
//!
//! # Data flow
//! ```text
//! config [[sources]] ──serde──▶ ProviderSpec ──Verifier::new(spec, secrets, tolerance)──▶ Verifier   (start-up)
//! HTTP request ──▶ Request { headers, body, url } ──Verifier::verify(&request, now)──▶ Verified { id, event }
//!                                                                                  └─▶ Rejection (401)
//! ```
//! `verify` reads the signature header(s), decodes the candidate signatures,
//! checks a header timestamp against the replay window, computes the HMAC of the
//! provider's signed string once per secret and compares it with every candidate;
//! only then does it parse the body (JSON) for the id and event type.
//!
//! # Entry points
//! - [`providers`]: the catalogue of named presets ([`Provider`]: scheme family,
//!   replay window, handshake, where the secret is found, setup notes).
//! - [`ProviderSpec`]: the provider chosen in configuration (a preset, or
//!   [`HmacSpec`] for `provider = "hmac"`); [`ProviderSpec::known_keys`] for
//!   unknown-key checks.
//! - [`Verifier`]: built once per source ([`Credentials`] for the providers that
//!   need a `verify_token` or `public_key`); [`Verifier::receive`] per request
//!   decides deliver / answer a handshake / capture a secret ([`Outcome`],
//!   [`Response`]); [`Verifier::verify`] checks a delivery alone;
//!   [`Verifier::is_secret_header`] says which headers must never be stored.
//! - [`Signer`]: the provider's side, for tests and `hookline send`
//!   ([`Signer::sign_request`] for URL- and body-signed schemes;
//!   [`test_key_pair`] for Ed25519/ECDSA providers).
//! - [`Rejection`] (per request, with [`Rejection::reason`] for metrics) and
//!   [`ConfigError`] (at start-up).
//!
//! ```
//! use std::time::SystemTime;
//! use hookline_signature::{ProviderSpec, Request, Signer, Verifier};
//!
//! let spec: ProviderSpec = "github".parse()?;
//! let secret = b"It's a Secret to Everybody";
//! let verifier = Verifier::new(&spec, &[secret], None)?; // once per source
//!
//! let mut headers = http::HeaderMap::new();
//! for (name, value) in Signer::new(&spec, secret)?.sign(b"Hello, World!", "1:guid", "ping", 0) {
//!     headers.insert(name, value.parse()?);
//! }
//! let verified = verifier.verify(&Request::new(&headers, b"Hello, World!"), SystemTime::now())?;
//! assert_eq!(verified.id.as_deref(), Some("1:guid"));
//! assert_eq!(verified.event.as_deref(), Some("ping"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//! `catalogue` (the presets, mostly data over `hmac_spec` + `hmac_scheme`, the
//! declarative scheme); one module per dedicated scheme (`github`, `stripe`,
//! `standard_webhooks`, `shopify`, `slack`, `url_form` for Twilio and Mandrill,
//! `mailgun`, `discord`, `sendgrid`, `netlify`, `contentful`, `adyen`,
//! `braintree`); `handshake` (answers); shared pieces by concept: `mac` and
//! `digest` (keys, constant-time checks), `candidates` (decoding signatures,
//! bounded), `timestamp` (parsing, replay window), `template` (the signed
//! string), `form` (form bodies), `headers` (bounded header reads), `body` (JSON
//! fields after verification).
//!
//! # Provider setup
//! Which secret to paste where is on each catalogue entry ([`Provider::secret`])
//! and in `docs/providers.md`; the declarative configurations are on [`HmacSpec`].
//!
//! # Bounds
//! A signature header longer than 4 KiB is malformed, at most 16 candidate
//! signatures are checked, timestamps longer than 19 digits are malformed, and no
//! input panics or overflows. Id and event headers are returned whatever their
//! length (the embedding service bounds them and says so, rather than see them
//! silently become "no id" or "no event"). A JSON body nested at any depth
//! yields its fields: parts deeper than 64 levels are skipped, not parsed.

mod adyen;
mod body;
mod braintree;
mod candidates;
mod catalogue;
mod contentful;
mod digest;
mod discord;
mod error;
mod form;
mod github;
mod handshake;
mod headers;
mod hmac_scheme;
mod hmac_spec;
mod mac;
mod mailgun;
mod netlify;
mod request;
mod sendgrid;
mod shopify;
mod signer;
mod slack;
mod spec;
mod standard_webhooks;
mod stripe;
mod template;
mod timestamp;
mod url_form;
mod verifier;

pub use candidates::Encoding;
pub use catalogue::{Family, Provider, provider, providers, providers_markdown, window_text};
pub use digest::Algorithm;
pub use error::{ConfigError, Rejection};
pub use handshake::{Outcome, Response};
pub use hmac_spec::{HmacSpec, KeyEncoding, Mode, TokenFormat};
pub use request::{Request, Verified};
pub use signer::{SignRequest, Signed, Signer, TestKeyPair, test_key_pair};
pub use spec::{Preset, ProviderSpec};
pub use timestamp::TimestampUnit;
pub use verifier::{Credentials, Verifier};
