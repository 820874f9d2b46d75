//! [`Verifier`]: one source's scheme with its keys prepared, and the dispatch to
//! each provider's module.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName};

use crate::adyen::Adyen;
use crate::braintree::Braintree;
use crate::catalogue::{Build, Condition, Handshake, Provider};
use crate::contentful::Contentful;
use crate::digest::{self, SecretBytes};
use crate::discord::Discord;
use crate::error::{ConfigError, Rejection};
use crate::github::Github;
use crate::handshake::{Outcome, Response};
use crate::hmac_scheme::{HmacScheme, Verify};
use crate::mailgun::Mailgun;
use crate::netlify::Netlify;
use crate::request::{Request, Verified};
use crate::sendgrid::SendGrid;
use crate::shopify::Shopify;
use crate::slack::Slack;
use crate::spec::ProviderSpec;
use crate::standard_webhooks::StandardWebhooks;
use crate::stripe::Stripe;
use crate::timestamp::{TimestampUnit, Window};
use crate::url_form::UrlForm;

/// One variant per scheme; nothing outside this module and the signer matches on it.
#[derive(Debug, Clone)]
pub(crate) enum Scheme {
    Github(Github),
    Stripe(Stripe),
    StandardWebhooks(StandardWebhooks),
    Shopify(Shopify),
    Slack(Slack),
    Hmac(Box<HmacScheme>),
    UrlForm(UrlForm),
    Mailgun(Mailgun),
    Discord(Discord),
    SendGrid(SendGrid),
    Netlify(Netlify),
    Contentful(Contentful),
    Adyen(Adyen),
    Braintree(Braintree),
    /// The first variant whose condition holds for the request.
    OneOf(Vec<(Condition, Scheme)>),
    /// No secret yet (awaiting a handshake's capture): every delivery is rejected.
    Unarmed,
}

/// What a source is configured with beside the provider: secrets (or public
/// keys), and the few settings some providers need.
#[derive(Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The configured secrets (for Discord and SendGrid: the provider's public keys).
    pub secrets: &'a [&'a [u8]],
    /// Meta's `verify_token` for the GET handshake (a secret).
    pub verify_token: Option<&'a [u8]>,
    /// Braintree's public key id.
    pub public_key: Option<&'a str>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secrets", &self.secrets.len())
            .field("verify_token", &self.verify_token.is_some())
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// Verifies one source's deliveries and decides its handshakes. Built once per
/// source at start-up (secrets decoded, HMAC key states prepared), then shared:
/// it is `Send + Sync` and verification takes `&self`.
///
/// `Debug` shows the scheme and the number of secrets, never their bytes.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    name: &'static str,
    provider: Option<&'static Provider>,
    verify_token: Option<SecretBytes>,
}

impl Verifier {
    /// Prepares the verifier of `spec`.
    ///
    /// `secrets` are the raw secret strings as configured, one or more: during a
    /// rotation any of them may match. `tolerance` replaces the scheme's default
    /// replay window ([`ProviderSpec::default_tolerance`]).
    ///
    /// # Errors
    /// [`ConfigError`] when no secret is given or one is empty, a secret does not
    /// decode as the provider requires, the `hmac` settings are inconsistent, or a
    /// `tolerance` is given for a scheme that signs no timestamp.
    pub fn new(
        spec: &ProviderSpec,
        secrets: &[&[u8]],
        tolerance: Option<Duration>,
    ) -> Result<Self, ConfigError> {
        Self::with_credentials(
            spec,
            &Credentials {
                secrets,
                ..Credentials::default()
            },
            tolerance,
        )
    }

    /// As [`Verifier::new`], with the settings some providers need
    /// (`verify_token`, `public_key`).
    ///
    /// # Errors
    /// As [`Verifier::new`], and [`ConfigError::MissingSetting`] when the provider
    /// needs a setting that is absent.
    pub fn with_credentials(
        spec: &ProviderSpec,
        credentials: &Credentials<'_>,
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
        let secrets = credentials.secrets;
        let provider = spec.provider();
        let scheme = match (spec, provider) {
            (ProviderSpec::Hmac(hmac), _) => {
                let tolerance = tolerance.unwrap_or(crate::timestamp::DEFAULT_TOLERANCE);
                Scheme::Hmac(Box::new(hmac.compile(secrets, tolerance)?))
            }
            (_, Some(provider)) => build(&provider.build, credentials, window)?,
            (_, None) => return Err(ConfigError::UnknownProvider(name.to_owned())),
        };
        Ok(Self {
            scheme,
            name,
            provider,
            verify_token: credentials
                .verify_token
                .map(|token| SecretBytes(vec![token.to_vec()])),
        })
    }

    /// A verifier for a provider that hands its secret over in a handshake
    /// (Asana, Notion), before any secret is held: it answers the handshake
    /// ([`Outcome::Capture`]) and rejects every delivery.
    ///
    /// # Errors
    /// [`ConfigError::NoSecret`] when the provider does not capture its secret.
    pub fn awaiting_capture(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        match spec.provider() {
            Some(provider) if provider.captures_secret() => {
                Ok(Self::from_scheme(spec, Scheme::Unarmed))
            }
            _ => Err(ConfigError::NoSecret),
        }
    }

    pub(crate) fn from_scheme(spec: &ProviderSpec, scheme: Scheme) -> Self {
        Self {
            scheme,
            name: spec.scheme(),
            provider: spec.provider(),
            verify_token: None,
        }
    }

    /// The scheme name (see [`ProviderSpec::scheme`]).
    pub fn scheme(&self) -> &'static str {
        self.name
    }

    /// The catalogue entry (`None` for `hmac`).
    pub fn provider(&self) -> Option<&'static Provider> {
        self.provider
    }

    /// Checks the signature (and the signed timestamp, where there is one) against
    /// `now`, then, only once that holds, reads the delivery id and event type.
    ///
    /// This treats every request as a delivery; [`Verifier::receive`] also
    /// answers handshakes.
    ///
    /// # Errors
    /// A [`Rejection`] naming why the request is not genuine or not fresh.
    pub fn verify(&self, request: &Request<'_>, now: SystemTime) -> Result<Verified, Rejection> {
        self.scheme.verify(request, now)
    }

    /// Decides what to do with a request: answer a handshake (verified where the
    /// provider signs it), hand over a secret to capture, or deliver a verified
    /// webhook.
    ///
    /// # Errors
    /// A [`Rejection`] when a delivery (or a signed handshake) does not verify;
    /// answer [`Verifier::rejection_response`].
    pub fn receive(&self, request: &Request<'_>, now: SystemTime) -> Result<Outcome, Rejection> {
        let kind = self
            .provider
            .map_or(Handshake::None, |provider| provider.kind);
        if let Some(outcome) = self.unsigned_handshake(kind, request, now)? {
            return Ok(outcome);
        }
        let verified = self.scheme.verify(request, now)?;
        Ok(match self.signed_handshake(kind, request) {
            Some(response) => Outcome::Respond(response),
            None => Outcome::Deliver(verified),
        })
    }

    /// Handshakes decided before (or instead of) the delivery's signature check.
    fn unsigned_handshake(
        &self,
        kind: Handshake,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<Option<Outcome>, Rejection> {
        let respond = |response| Ok(Some(Outcome::Respond(response)));
        match kind {
            Handshake::MetaVerify if request.method == "GET" => {
                let token = request.query("hub.verify_token").unwrap_or_default();
                let expected = self.verify_token.as_ref().and_then(|t| t.0.first());
                let good = request.query("hub.mode").as_deref() == Some("subscribe")
                    && expected.is_some_and(|expected| digest::equal(token.as_bytes(), expected));
                match request.query("hub.challenge") {
                    Some(challenge) if good => respond(Response::text(challenge)),
                    _ => respond(Response::empty(403)),
                }
            }
            Handshake::DropboxChallenge if request.method == "GET" => {
                match request.query("challenge") {
                    Some(challenge) => {
                        let mut response = Response::text(challenge);
                        response
                            .headers
                            .push((http::header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()));
                        respond(response)
                    }
                    None => respond(Response::empty(400)),
                }
            }
            Handshake::OktaVerification if request.method == "GET" => {
                let challenge = request
                    .headers
                    .get("x-okta-verification-challenge")
                    .and_then(|value| value.to_str().ok())
                    .ok_or(Rejection::MissingHeader(HeaderName::from_static(
                        "x-okta-verification-challenge",
                    )))?;
                // Okta sends its configured auth header with the check too.
                self.scheme.verify(request, now)?;
                respond(Response::json(
                    &serde_json::json!({ "verification": challenge }),
                ))
            }
            Handshake::BraintreeChallenge if request.method == "GET" => match &self.scheme {
                Scheme::Braintree(braintree) => {
                    respond(braintree.challenge(request).unwrap_or(Response::empty(400)))
                }
                _ => Ok(None),
            },
            Handshake::HeadOk if request.method == "HEAD" => respond(Response::empty(200)),
            Handshake::AsanaSecret if !request.headers.contains_key("x-hook-signature") => {
                let Some(secret) = request
                    .headers
                    .get("x-hook-secret")
                    .and_then(|value| value.to_str().ok())
                    .filter(|secret| !secret.is_empty())
                else {
                    return Ok(None);
                };
                Ok(Some(Outcome::Capture {
                    secret: secret.to_owned(),
                    response: Response {
                        status: 200,
                        headers: vec![(
                            HeaderName::from_static("x-hook-secret"),
                            secret.to_owned(),
                        )],
                        body: Vec::new(),
                    },
                }))
            }
            Handshake::NotionToken if !request.headers.contains_key("x-notion-signature") => {
                let json = crate::body::parse(request.body);
                match crate::body::text(json.as_ref(), &["verification_token"]) {
                    Some(token) => Ok(Some(Outcome::Capture {
                        secret: token,
                        response: Response::empty(200),
                    })),
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    /// Handshakes that are signed like any delivery: checked after it verified.
    fn signed_handshake(&self, kind: Handshake, request: &Request<'_>) -> Option<Response> {
        let json = || crate::body::parse(request.body);
        let field = |path: &[&str]| crate::body::text(json().as_ref(), path);
        match kind {
            Handshake::SlackUrlVerification => {
                if field(&["type"]).as_deref() != Some("url_verification") {
                    return None;
                }
                let challenge = field(&["challenge"])?;
                Some(Response::json(
                    &serde_json::json!({ "challenge": challenge }),
                ))
            }
            Handshake::ZoomUrlValidation => {
                if field(&["event"]).as_deref() != Some("endpoint.url_validation") {
                    return None;
                }
                let plain = field(&["payload", "plainToken"]).unwrap_or_default();
                // The reply is an HMAC of attacker-chosen text: never sign what
                // could pass for a Zoom signature input.
                if plain.is_empty() || plain.starts_with("v0:") || plain.len() > 256 {
                    return Some(Response::empty(400));
                }
                let encrypted = self.scheme.first_mac_hex(plain.as_bytes())?;
                // Zoom's order (plainToken first); serde_json's map would sort the keys.
                let body = format!(
                    "{{\"plainToken\":{},\"encryptedToken\":{}}}",
                    serde_json::Value::String(plain),
                    serde_json::Value::String(encrypted)
                );
                Some(Response {
                    status: 200,
                    headers: vec![(http::header::CONTENT_TYPE, "application/json".to_owned())],
                    body: body.into_bytes(),
                })
            }
            Handshake::DiscordPing => {
                let ping = json().and_then(|root| root.get("type")?.as_u64()) == Some(1);
                ping.then(|| Response::json(&serde_json::json!({ "type": 1 })))
            }
            Handshake::TwitchChallenge => {
                let kind = request
                    .headers
                    .get("twitch-eventsub-message-type")
                    .and_then(|value| value.to_str().ok());
                if kind != Some("webhook_callback_verification") {
                    return None;
                }
                Some(Response::text(field(&["challenge"]).unwrap_or_default()))
            }
            Handshake::XeroIntent => {
                let empty = json()
                    .and_then(|root| root.get("events")?.as_array().map(Vec::is_empty))
                    .unwrap_or(false);
                empty.then(|| Response::empty(200))
            }
            Handshake::FigmaPing => {
                (field(&["event_type"]).as_deref() == Some("PING")).then(|| Response::empty(200))
            }
            Handshake::IntercomPing => {
                (field(&["topic"]).as_deref() == Some("ping")).then(|| Response::empty(200))
            }
            Handshake::SentryInstallation => {
                let resource = request
                    .headers
                    .get("sentry-hook-resource")
                    .and_then(|value| value.to_str().ok());
                (resource == Some("installation")).then(|| Response::empty(200))
            }
            _ => None,
        }
    }

    /// The answer to a stored delivery when the provider expects a particular one
    /// (Adyen's `[accepted]`); `None` means ingest's usual answer.
    pub fn accepted_response(&self) -> Option<Response> {
        let body = self.provider?.accepted_body?;
        Some(Response {
            status: 200,
            headers: vec![(http::header::CONTENT_TYPE, "text/plain".to_owned())],
            body: body.as_bytes().to_vec(),
        })
    }

    /// The answer to a rejected request when the provider's protocol fixes it
    /// (Figma: 400, which stops the webhook; Xero: 401 with an empty body);
    /// `None` means ingest's usual 401.
    pub fn rejection_response(&self) -> Option<Response> {
        let provider = self.provider?;
        (provider.rejection_status() != 401 || provider.kind == Handshake::XeroIntent)
            .then(|| Response::empty(provider.rejection_status()))
    }

    /// Whether `name` carries a signature or token: such headers must never be
    /// stored, logged or forwarded.
    pub fn is_secret_header(&self, name: &HeaderName) -> bool {
        self.scheme.is_secret_header(name) || name == "x-hook-secret"
    }

    pub(crate) fn scheme_impl(&self) -> &Scheme {
        &self.scheme
    }
}

impl Scheme {
    fn verify(&self, request: &Request<'_>, now: SystemTime) -> Result<Verified, Rejection> {
        match self {
            Self::Github(github) => github.verify(request),
            Self::Stripe(stripe) => stripe.verify(request, now),
            Self::StandardWebhooks(standard) => standard.verify(request, now),
            Self::Shopify(shopify) => shopify.verify(request),
            Self::Slack(slack) => slack.verify(request, now),
            Self::Hmac(hmac) => hmac.verify(request, now),
            Self::UrlForm(form) => form.verify(request),
            Self::Mailgun(mailgun) => mailgun.verify(request, now),
            Self::Discord(discord) => discord.verify(request),
            Self::SendGrid(sendgrid) => sendgrid.verify(request),
            Self::Netlify(netlify) => netlify.verify(request),
            Self::Contentful(contentful) => contentful.verify(request, now),
            Self::Adyen(adyen) => adyen.verify(request),
            Self::Braintree(braintree) => braintree.verify(request),
            Self::OneOf(variants) => variants
                .iter()
                .find(|(condition, _)| holds(*condition, request.headers))
                .map_or(Err(Rejection::MissingSignature), |(_, scheme)| {
                    scheme.verify(request, now)
                }),
            Self::Unarmed => Err(Rejection::InvalidSignature),
        }
    }

    fn is_secret_header(&self, name: &HeaderName) -> bool {
        match self {
            Self::Github(_) => Github::is_secret_header(name),
            Self::Stripe(_) => Stripe::is_secret_header(name),
            Self::StandardWebhooks(_) => StandardWebhooks::is_secret_header(name),
            Self::Shopify(_) => Shopify::is_secret_header(name),
            Self::Slack(_) => Slack::is_secret_header(name),
            Self::Hmac(hmac) => hmac.is_secret_header(name),
            Self::UrlForm(form) => form.is_secret_header(name),
            Self::Mailgun(_) => Mailgun::is_secret_header(name),
            Self::Discord(_) => Discord::is_secret_header(name),
            Self::SendGrid(_) => SendGrid::is_secret_header(name),
            Self::Netlify(_) => Netlify::is_secret_header(name),
            Self::Contentful(_) => Contentful::is_secret_header(name),
            Self::Adyen(_) => Adyen::is_secret_header(name),
            Self::Braintree(_) => Braintree::is_secret_header(name),
            Self::Unarmed => false,
            Self::OneOf(variants) => variants
                .iter()
                .any(|(_, scheme)| scheme.is_secret_header(name)),
        }
    }

    /// Hex HMAC of `message` under the first key of an HMAC scheme (Zoom's
    /// `encryptedToken`).
    fn first_mac_hex(&self, message: &[u8]) -> Option<String> {
        match self {
            Self::Hmac(hmac) => match &hmac.verify {
                Verify::Mac(keys) => Some(hex::encode(keys.first().sign(&[message]))),
                _ => None,
            },
            _ => None,
        }
    }
}

fn holds(condition: Condition, headers: &HeaderMap) -> bool {
    match condition {
        Condition::Always => true,
        Condition::HeaderPresent(name) => headers.contains_key(name),
        Condition::HeaderEquals(name, value) => headers
            .get(name)
            .is_some_and(|have| have.as_bytes().eq_ignore_ascii_case(value.as_bytes())),
    }
}

/// Builds a preset's scheme. Variants of a [`Build::OneOf`] whose secrets do not
/// fit (GitLab's plain token is not a `whsec_` signing token) are left out, as
/// long as one variant remains.
pub(crate) fn build(
    build_spec: &Build,
    credentials: &Credentials<'_>,
    window: Duration,
) -> Result<Scheme, ConfigError> {
    let secrets = credentials.secrets;
    Ok(match build_spec {
        Build::Github => Scheme::Github(Github::new(secrets)?),
        Build::Stripe => Scheme::Stripe(Stripe::new(secrets, window)?),
        Build::StandardWebhooks => {
            Scheme::StandardWebhooks(StandardWebhooks::new(secrets, window)?)
        }
        Build::Shopify => Scheme::Shopify(Shopify::new(secrets)?),
        Build::Slack => Scheme::Slack(Slack::new(secrets, window)?),
        Build::Declarative(spec) => Scheme::Hmac(Box::new(spec().compile(secrets, window)?)),
        Build::UrlForm(flavour) => Scheme::UrlForm(UrlForm::new(*flavour, secrets)?),
        Build::Mailgun => Scheme::Mailgun(Mailgun::new(secrets, Window::seconds(window, true))?),
        Build::Discord => Scheme::Discord(Discord::new(secrets)?),
        Build::SendGrid => Scheme::SendGrid(SendGrid::new(secrets)?),
        Build::Netlify => Scheme::Netlify(Netlify::new(secrets)?),
        Build::Contentful => Scheme::Contentful(Contentful::new(
            secrets,
            Window {
                tolerance: window,
                future: None,
                unit: TimestampUnit::Millis,
            },
        )?),
        Build::Adyen => Scheme::Adyen(Adyen::new(secrets)?),
        Build::Braintree => Scheme::Braintree(Braintree::new(secrets, credentials.public_key)?),
        Build::OneOf(variants) => {
            let mut built = Vec::new();
            let mut first_error = None;
            for (condition, variant) in variants.iter() {
                match build(variant, credentials, window) {
                    Ok(scheme) => built.push((*condition, scheme)),
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                }
            }
            match (built.is_empty(), first_error) {
                (true, Some(error)) => return Err(error),
                _ => Scheme::OneOf(built),
            }
        }
    })
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
