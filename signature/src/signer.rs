//! [`Signer`]: signing exactly as a provider does, for tests and `hookline send`.

use http::HeaderName;
use serde_json::Value;

use crate::adyen::Adyen;
use crate::body;
use crate::catalogue::{Build, Family};
use crate::discord::Discord;
use crate::error::ConfigError;
use crate::hmac_scheme::{SignInput, TimestampSource};
use crate::sendgrid::SendGrid;
use crate::spec::ProviderSpec;
use crate::verifier::{Credentials, Scheme, Verifier};

/// What to sign: the delivery as the provider would send it.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// The body to send (body-signed schemes return a new one).
    pub body: &'a [u8],
    /// The delivery id, where the provider puts one in a header.
    pub id: &'a str,
    /// The event type, where the provider puts one in a header.
    pub event: &'a str,
    /// Unix seconds of the signature's timestamp (ignored where none is signed).
    pub timestamp: u64,
    /// The public URL the request goes to (URL-signed schemes).
    pub url: &'a str,
    /// The method (`POST`).
    pub method: &'a str,
}

/// A signed request: headers to add, the body to send, and the URL to call
/// (Twilio moves a JSON body's hash into the query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Headers (name, value) to add.
    pub headers: Vec<(HeaderName, String)>,
    /// The body to send.
    pub body: Vec<u8>,
    /// The URL to call.
    pub url: String,
}

/// A key pair for providers that sign with a private key (Discord Ed25519,
/// SendGrid ECDSA): `private` goes to [`Signer::new`], `public` is what the
/// source is configured with.
#[derive(Clone, PartialEq, Eq)]
pub struct TestKeyPair {
    /// The private key (hex), for the signer.
    pub private: String,
    /// The public key as the provider's console shows it, for the source's `secrets`.
    pub public: String,
}

impl std::fmt::Debug for TestKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A deterministic test key pair derived from `seed`, for a provider that signs
/// with a private key; `None` for shared-secret providers.
///
/// # Errors
/// [`ConfigError`] only if the derived key is unusable (astronomically unlikely).
pub fn test_key_pair(spec: &ProviderSpec, seed: &[u8]) -> Result<Option<TestKeyPair>, ConfigError> {
    let Some(provider) = spec.provider() else {
        return Ok(None);
    };
    let private =
        hex::encode(crate::digest::Algorithm::Sha256.hash(&[b"hookline-test-key:", seed]));
    let public = match provider.family {
        Family::Ed25519 => Discord::public_of(private.as_bytes())?,
        Family::Ecdsa => SendGrid::public_of(private.as_bytes())?,
        _ => return Ok(None),
    };
    Ok(Some(TestKeyPair { private, public }))
}

/// Produces the headers a provider would attach to a delivery of `body`.
///
/// `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct Signer {
    verifier: Verifier,
}

impl Signer {
    /// Prepares signing with one secret, given as it would be configured; for
    /// Discord and SendGrid, the private key of a [`test_key_pair`].
    ///
    /// # Errors
    /// As [`Verifier::new`].
    pub fn new(spec: &ProviderSpec, secret: &[u8]) -> Result<Self, ConfigError> {
        Self::with_credentials(
            spec,
            &Credentials {
                secrets: &[secret],
                ..Credentials::default()
            },
        )
    }

    /// As [`Signer::new`] with the settings some providers need (Braintree's `public_key`).
    ///
    /// # Errors
    /// As [`Verifier::with_credentials`].
    pub fn with_credentials(
        spec: &ProviderSpec,
        credentials: &Credentials<'_>,
    ) -> Result<Self, ConfigError> {
        let private = |build: &Build| -> Result<Option<Scheme>, ConfigError> {
            let secret = credentials.secrets.first().copied().unwrap_or_default();
            Ok(match build {
                Build::Discord => Some(Scheme::Discord(Discord::signer(secret)?)),
                Build::SendGrid => Some(Scheme::SendGrid(SendGrid::signer(secret)?)),
                _ => None,
            })
        };
        let verifier = match spec.provider().map(|provider| &provider.build) {
            Some(build_spec) => match private(build_spec)? {
                Some(scheme) => Verifier::from_scheme(spec, scheme),
                None => Verifier::with_credentials(spec, credentials, None)?,
            },
            None => Verifier::with_credentials(spec, credentials, None)?,
        };
        Ok(Self { verifier })
    }

    /// The headers (name, value) to add to a POST carrying `body` (schemes that
    /// sign a URL sign an empty one; use [`Signer::sign_request`] for those and
    /// for body-signed schemes).
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
        let request = SignRequest {
            body,
            id,
            event,
            timestamp,
            url: "",
            method: "POST",
        };
        sign_with(self.verifier.scheme_impl(), &request, false).headers
    }

    /// Signs a whole request as the provider would send it.
    pub fn sign_request(&self, request: &SignRequest<'_>) -> Signed {
        sign_with(self.verifier.scheme_impl(), request, true)
    }

    /// The scheme name (see [`ProviderSpec::scheme`]).
    pub fn scheme(&self) -> &'static str {
        self.verifier.scheme()
    }
}

/// Signs `request`; `fill_body` adds body-carried values the scheme reads and
/// the body lacks.
fn sign_with(scheme: &Scheme, request: &SignRequest<'_>, fill_body: bool) -> Signed {
    let SignRequest {
        body,
        id,
        event,
        timestamp,
        url,
        method,
    } = *request;
    let plain = |headers| Signed {
        headers,
        body: body.to_vec(),
        url: url.to_owned(),
    };
    match scheme {
        Scheme::Github(github) => plain(github.sign(body, id, event)),
        Scheme::Stripe(stripe) => plain(stripe.sign(body, timestamp)),
        Scheme::StandardWebhooks(standard) => plain(standard.sign(body, id, timestamp)),
        Scheme::Shopify(shopify) => plain(shopify.sign(body, id, event)),
        Scheme::Slack(slack) => plain(slack.sign(body, timestamp)),
        Scheme::Hmac(hmac) => {
            // Body-carried values the scheme reads (Linear's timestamp, Figma's
            // passcode), added when the body lacks them.
            let has = |path: &crate::body::JsonPath| {
                !fill_body || body::parse(body).is_some_and(|root| path.lookup(&root).is_some())
            };
            let mut body = body.to_vec();
            if let Some((TimestampSource::Json(path), window)) = &hmac.timestamp
                && !has(path)
            {
                let value = window.unit.scale_unix_seconds(timestamp);
                body = set_json(&body, path, Value::from(value));
            }
            if let Some((path, token)) = hmac.body_token()
                && !has(path)
            {
                body = set_json(&body, path, Value::String(token));
            }
            let headers = hmac.sign(&SignInput {
                body: &body,
                id,
                event,
                unix_seconds: timestamp,
                url,
                method,
            });
            Signed {
                headers,
                body,
                url: url.to_owned(),
            }
        }
        Scheme::UrlForm(form) => {
            let json = matches!(body.first(), Some(b'{' | b'['));
            let (headers, url) = form.sign(url, body, json);
            Signed {
                headers,
                body: body.to_vec(),
                url,
            }
        }
        Scheme::Mailgun(mailgun) => Signed {
            headers: Vec::new(),
            body: mailgun.sign(body, id, event, timestamp),
            url: url.to_owned(),
        },
        Scheme::Discord(discord) => plain(discord.sign(body, timestamp)),
        Scheme::SendGrid(sendgrid) => plain(sendgrid.sign(body, timestamp)),
        Scheme::Netlify(netlify) => plain(netlify.sign(body, event)),
        Scheme::Contentful(contentful) => {
            plain(contentful.sign(body, id, event, timestamp, method, url))
        }
        Scheme::Adyen(adyen) => Signed {
            headers: Vec::new(),
            body: Adyen::sign(adyen, body, id, event),
            url: url.to_owned(),
        },
        Scheme::Braintree(braintree) => Signed {
            headers: Vec::new(),
            body: braintree.sign(body, event),
            url: url.to_owned(),
        },
        Scheme::Unarmed => plain(Vec::new()),
        // The last variant is the provider's default delivery style.
        Scheme::OneOf(variants) => match variants.last() {
            Some((_, scheme)) => sign_with(scheme, request, fill_body),
            None => plain(Vec::new()),
        },
    }
}

/// `body` (a JSON object, or `{}` when it is not one) with `path` set to `value`.
fn set_json(body: &[u8], path: &crate::body::JsonPath, value: Value) -> Vec<u8> {
    let mut root = match body::parse(body) {
        Some(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(serde_json::Map::new()),
    };
    let mut at = &mut root;
    let segments = path.segments();
    for (index, segment) in segments.iter().enumerate() {
        let Value::Object(map) = at else {
            break;
        };
        if index + 1 == segments.len() {
            map.insert(segment.clone(), value);
            break;
        }
        at = map
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    root.to_string().into_bytes()
}
