//! The provider catalogue: every named preset (`provider = "<name>"`), what it
//! verifies, its replay window, its handshake, and where the operator finds the
//! secret. `hookline providers`, the docs' provider table and the verifiers are
//! all built from this one list.
//!
//! Most presets are data over the declarative scheme ([`HmacSpec`]); the rest
//! name a dedicated verifier.

use std::time::Duration;

use crate::HmacSpec;
use crate::candidates::Encoding;
use crate::digest::Algorithm;
use crate::hmac_spec::{KeyEncoding, Mode, TokenFormat};
use crate::timestamp::TimestampUnit;
use crate::url_form::Flavour;

/// The family of a scheme, for the catalogue and the benchmark rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Family {
    /// HMAC over the body (and possibly a timestamp, id or headers).
    Hmac,
    /// HMAC over the public URL (and form parameters or body).
    UrlSigned,
    /// HMAC whose signature travels inside the body.
    BodySigned,
    /// A plain digest with the secret inside the message (HubSpot v1/v2 among others).
    Hash,
    /// A shared token compared in constant time (no MAC, no replay defence).
    Token,
    /// Ed25519 signature with the provider's public key.
    Ed25519,
    /// ECDSA P-256 signature with the provider's public key.
    Ecdsa,
    /// A JWS (HS256) whose claims hash the body.
    Jws,
    /// HMAC over a canonical request (method, path, signed headers, body).
    CanonicalRequest,
}

impl Family {
    /// Short name, as shown by `hookline providers`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hmac => "hmac",
            Self::UrlSigned => "url-signed hmac",
            Self::BodySigned => "body-signed hmac",
            Self::Hash => "hash",
            Self::Token => "token",
            Self::Ed25519 => "ed25519",
            Self::Ecdsa => "ecdsa-p256",
            Self::Jws => "jws-hs256",
            Self::CanonicalRequest => "canonical-request hmac",
        }
    }
}

/// How a preset's verifier is built.
#[derive(Clone, Copy)]
pub(crate) enum Build {
    Github,
    Stripe,
    StandardWebhooks,
    Shopify,
    Slack,
    Declarative(fn() -> HmacSpec),
    UrlForm(Flavour),
    Mailgun,
    Discord,
    SendGrid,
    Netlify,
    Contentful,
    Adyen,
    Braintree,
    /// The first variant whose condition holds for the request.
    OneOf(&'static [(Condition, Build)]),
}

/// When a variant of [`Build::OneOf`] applies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Condition {
    Always,
    HeaderPresent(&'static str),
    HeaderEquals(&'static str, &'static str),
}

/// The provider's registration or liveness check, answered without publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    None,
    SlackUrlVerification,
    ZoomUrlValidation,
    DiscordPing,
    TwitchChallenge,
    MetaVerify,
    DropboxChallenge,
    OktaVerification,
    BraintreeChallenge,
    HeadOk,
    XeroIntent,
    FigmaPing,
    IntercomPing,
    SentryInstallation,
    AsanaSecret,
    NotionToken,
}

/// One named preset.
pub struct Provider {
    /// The `provider = "<name>"` value.
    pub name: &'static str,
    /// The provider's own name for people.
    pub title: &'static str,
    /// The scheme family.
    pub family: Family,
    /// The default replay window; `None` when no timestamp is checked.
    pub replay_window: Option<Duration>,
    /// The handshake Hookline answers, if any.
    pub handshake: Option<&'static str>,
    /// Where in the provider's console the secret is found, and what to paste.
    pub secret: &'static str,
    /// Setup notes: what the preset checks, ids, events, traps.
    pub notes: &'static str,
    pub(crate) build: Build,
    pub(crate) kind: Handshake,
    pub(crate) needs_url: bool,
    pub(crate) needs_verify_token: bool,
    pub(crate) needs_public_key: bool,
    pub(crate) methods: &'static [&'static str],
    pub(crate) rejection_status: u16,
    pub(crate) accepted_body: Option<&'static str>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Whether the scheme signs the public URL: the source then needs
    /// `public_url`. (GET handshakes read only the query, which ingest always passes.)
    pub fn uses_public_url(&self) -> bool {
        self.needs_url
    }

    /// Whether the handshake checks a `verify_token` (Meta).
    pub fn uses_verify_token(&self) -> bool {
        self.needs_verify_token
    }

    /// Whether the scheme needs `public_key` (Braintree's public key id).
    pub fn uses_public_key(&self) -> bool {
        self.needs_public_key
    }

    /// Methods other than `POST` that reach the source (handshakes, HubSpot v2 GET).
    pub fn extra_methods(&self) -> &'static [&'static str] {
        self.methods
    }

    /// The status a rejected delivery gets (401; Figma 400, which stops the webhook).
    pub fn rejection_status(&self) -> u16 {
        self.rejection_status
    }

    /// The declarative description behind the preset, when it is one (for
    /// several variants, the default delivery style's), e.g. to build samples.
    pub fn hmac_spec(&self) -> Option<HmacSpec> {
        fn of(build: &Build) -> Option<HmacSpec> {
            match build {
                Build::Declarative(spec) => Some(spec()),
                Build::OneOf(variants) => variants.last().and_then(|(_, build)| of(build)),
                _ => None,
            }
        }
        of(&self.build)
    }

    /// Whether the provider hands its signing secret over in a handshake (Asana,
    /// Notion): the source may start without `secrets` and capture it.
    pub fn captures_secret(&self) -> bool {
        matches!(self.kind, Handshake::AsanaSecret | Handshake::NotionToken)
    }

    /// Whether the provider signs with a private key (tests sign with a generated pair).
    pub fn is_asymmetric(&self) -> bool {
        matches!(self.family, Family::Ed25519 | Family::Ecdsa)
    }
}

/// Every named preset, in the order `hookline providers` lists them.
pub fn providers() -> &'static [Provider] {
    PROVIDERS
}

/// The preset called `name`.
pub fn provider(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|provider| provider.name == name)
}

/// The replay window as people read it (`5m`, `29.999s`, `none`).
pub fn window_text(window: Option<Duration>) -> String {
    match window {
        None => "none".to_owned(),
        Some(window) if window.subsec_millis() != 0 => {
            format!("{}.{:03}s", window.as_secs(), window.subsec_millis())
        }
        Some(window) if window.as_secs() % 60 == 0 => format!("{}m", window.as_secs() / 60),
        Some(window) => format!("{}s", window.as_secs()),
    }
}

/// The provider table and per-provider setup notes, in Markdown: the block
/// `docs/providers.md` holds between its `catalogue` markers (a test keeps
/// them equal) and `hookline providers` prints.
pub fn providers_markdown() -> String {
    let mut out =
        String::from("| provider | scheme | replay window | handshake |\n|---|---|---|---|\n");
    for provider in providers() {
        out.push_str(&format!(
            "| [`{}`](#{}) | {} | {} | {} |\n",
            provider.name,
            provider.name,
            provider.family.as_str(),
            window_text(provider.replay_window),
            provider.handshake.unwrap_or("none"),
        ));
    }
    for provider in providers() {
        let env = provider.name.to_ascii_uppercase().replace('-', "_");
        out.push_str(&format!(
            "\n<a id=\"{name}\"></a>\n### {title} (`{name}`)\n**Secret:** {secret}.\n\n{notes}\n\nScheme: {family}; replay window: {window}; handshake: {handshake}.\n```toml\n[[sources]]\nname = \"{name}\"\nprovider = \"{name}\"\nsecrets = [{{ env = \"{env}_SECRET\" }}]\n",
            name = provider.name,
            title = provider.title,
            secret = provider.secret,
            notes = provider.notes,
            family = provider.family.as_str(),
            window = window_text(provider.replay_window),
            handshake = provider.handshake.unwrap_or("none"),
        ));
        if provider.uses_public_url() {
            out.push_str(&format!(
                "public_url = \"https://hooks.example.com/webhooks/{}\"\n",
                provider.name
            ));
        }
        if provider.uses_verify_token() {
            out.push_str(&format!(
                "verify_token = {{ env = \"{env}_VERIFY_TOKEN\" }}\n"
            ));
        }
        if provider.uses_public_key() {
            out.push_str("public_key = \"your_public_key_id\"\n");
        }
        out.push_str("```\n");
    }
    out
}

const MIN5: Option<Duration> = Some(Duration::from_secs(300));

const fn base(name: &'static str, title: &'static str, family: Family, build: Build) -> Provider {
    Provider {
        name,
        title,
        family,
        replay_window: None,
        handshake: None,
        secret: "",
        notes: "",
        build,
        kind: Handshake::None,
        needs_url: false,
        needs_verify_token: false,
        needs_public_key: false,
        methods: &[],
        rejection_status: 401,
        accepted_body: None,
    }
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

/// `<header>: <prefix><hex HMAC-SHA256(body)>`, the most common shape.
fn body_hmac(header: &str, prefix: Option<&str>) -> HmacSpec {
    HmacSpec {
        header: header.to_owned(),
        prefix: prefix.map(str::to_owned),
        ..HmacSpec::default()
    }
}

fn standard_webhooks_like(key_prefix: &str) -> HmacSpec {
    HmacSpec {
        header: "webhook-signature".into(),
        separator: s(" "),
        prefix: s("v1,"),
        encoding: Encoding::Base64,
        key_encoding: KeyEncoding::Base64,
        key_prefix: s(key_prefix),
        signed: "{id}.{ts}.{body}".into(),
        id_header: s("webhook-id"),
        timestamp_header: s("webhook-timestamp"),
        ..HmacSpec::default()
    }
}

fn linear() -> HmacSpec {
    HmacSpec {
        timestamp_json: s("webhookTimestamp"),
        timestamp_unit: TimestampUnit::Millis,
        id_header: s("Linear-Delivery"),
        event_header: s("Linear-Event"),
        ..body_hmac("Linear-Signature", None)
    }
}
fn paddle() -> HmacSpec {
    HmacSpec {
        separator: s(";"),
        signature_param: s("h1"),
        timestamp_param: s("ts"),
        signed: "{ts}:{body}".into(),
        reject_future: false,
        id_json: s("event_id"),
        event_json: s("event_type"),
        ..body_hmac("Paddle-Signature", None)
    }
}
fn square() -> HmacSpec {
    HmacSpec {
        encoding: Encoding::Base64,
        signed: "{url}{body}".into(),
        id_json: s("event_id"),
        event_json: s("type"),
        ..body_hmac("x-square-hmacsha256-signature", None)
    }
}
fn pagerduty() -> HmacSpec {
    HmacSpec {
        separator: s(","),
        id_header: s("X-Webhook-Id"),
        event_json: s("event.event_type"),
        ..body_hmac("X-PagerDuty-Signature", Some("v1="))
    }
}
fn zoom() -> HmacSpec {
    HmacSpec {
        // Signed, but Zoom documents no window and its unit varies (s or ms).
        signed: "v0:{header:x-zm-request-timestamp}:{body}".into(),
        event_json: s("event"),
        ..body_hmac("x-zm-signature", Some("v0="))
    }
}
fn gitlab_signing() -> HmacSpec {
    HmacSpec {
        event_header: s("X-Gitlab-Event"),
        ..standard_webhooks_like("whsec_")
    }
}
fn gitlab_token() -> HmacSpec {
    HmacSpec {
        mode: Mode::Token,
        id_header: s("Idempotency-Key, X-Gitlab-Event-UUID"),
        event_header: s("X-Gitlab-Event"),
        ..body_hmac("X-Gitlab-Token", None)
    }
}
fn bitbucket() -> HmacSpec {
    HmacSpec {
        id_header: s("X-Request-UUID"),
        event_header: s("X-Event-Key"),
        ..body_hmac("X-Hub-Signature", Some("sha256="))
    }
}
fn jira() -> HmacSpec {
    HmacSpec {
        id_header: s("X-Atlassian-Webhook-Identifier"),
        event_json: s("webhookEvent"),
        ..body_hmac("X-Hub-Signature", Some("sha256="))
    }
}
fn meta() -> HmacSpec {
    HmacSpec {
        event_json: s("object"),
        ..body_hmac("X-Hub-Signature-256", Some("sha256="))
    }
}
fn twitch() -> HmacSpec {
    HmacSpec {
        signed: "{id}{ts}{body}".into(),
        timestamp_header: s("Twitch-Eventsub-Message-Timestamp"),
        timestamp_unit: TimestampUnit::Rfc3339,
        id_header: s("Twitch-Eventsub-Message-Id"),
        event_header: s("Twitch-Eventsub-Subscription-Type, Twitch-Eventsub-Message-Type"),
        ..body_hmac("Twitch-Eventsub-Message-Signature", Some("sha256="))
    }
}
fn intercom() -> HmacSpec {
    HmacSpec {
        algorithm: Algorithm::Sha1,
        id_json: s("id"),
        event_json: s("topic"),
        ..body_hmac("X-Hub-Signature", Some("sha1="))
    }
}
fn hubspot_v3() -> HmacSpec {
    HmacSpec {
        encoding: Encoding::Base64,
        signed: "{method}{url}{body}{ts}".into(),
        timestamp_header: s("X-HubSpot-Request-Timestamp"),
        timestamp_unit: TimestampUnit::Millis,
        // Both SDKs check only the age.
        reject_future: false,
        id_json: s("0.eventId"),
        event_json: s("0.subscriptionType"),
        ..body_hmac("X-HubSpot-Signature-v3", None)
    }
}
fn hubspot_v2() -> HmacSpec {
    HmacSpec {
        mode: Mode::Hash,
        signed: "{secret}{method}{url}{body}".into(),
        id_json: s("0.eventId"),
        event_json: s("0.subscriptionType"),
        ..body_hmac("X-HubSpot-Signature", None)
    }
}
fn hubspot_v1() -> HmacSpec {
    HmacSpec {
        signed: "{secret}{body}".into(),
        ..hubspot_v2()
    }
}
fn calendly() -> HmacSpec {
    HmacSpec {
        separator: s(","),
        signature_param: s("v1"),
        timestamp_param: s("t"),
        signed: "{ts}.{body}".into(),
        id_json: s("event+payload.uri"),
        event_json: s("event"),
        ..body_hmac("Calendly-Webhook-Signature", None)
    }
}
fn typeform() -> HmacSpec {
    HmacSpec {
        encoding: Encoding::Base64,
        id_json: s("event_id"),
        event_json: s("event_type"),
        ..body_hmac("Typeform-Signature", Some("sha256="))
    }
}
fn vercel() -> HmacSpec {
    HmacSpec {
        algorithm: Algorithm::Sha1,
        id_json: s("id"),
        event_json: s("type"),
        ..body_hmac("x-vercel-signature", None)
    }
}
fn okta() -> HmacSpec {
    HmacSpec {
        mode: Mode::Token,
        id_json: s("eventId"),
        event_json: s("data.events.0.eventType"),
        ..body_hmac("Authorization", None)
    }
}
fn dropbox() -> HmacSpec {
    body_hmac("X-Dropbox-Signature", None)
}
fn box_() -> HmacSpec {
    HmacSpec {
        encoding: Encoding::Base64,
        signed: "{body}{ts}".into(),
        timestamp_header: s("box-delivery-timestamp"),
        timestamp_unit: TimestampUnit::Rfc3339,
        // The SDKs reject any timestamp ahead of now.
        future_tolerance: s("0s"),
        require_headers: [
            ("box-signature-version".to_owned(), "1".to_owned()),
            (
                "box-signature-algorithm".to_owned(),
                "HmacSHA256".to_owned(),
            ),
        ]
        .into_iter()
        .collect(),
        id_header: s("box-delivery-id"),
        event_json: s("trigger"),
        ..body_hmac("box-signature-primary, box-signature-secondary", None)
    }
}
fn asana() -> HmacSpec {
    HmacSpec {
        event_json: s("events.0.action"),
        ..body_hmac("X-Hook-Signature", None)
    }
}
fn trello() -> HmacSpec {
    HmacSpec {
        algorithm: Algorithm::Sha1,
        encoding: Encoding::Base64,
        signed: "{body}{url}".into(),
        id_json: s("action.id"),
        event_json: s("action.type"),
        ..body_hmac("X-Trello-Webhook", None)
    }
}
fn zendesk() -> HmacSpec {
    HmacSpec {
        encoding: Encoding::Base64,
        // Signed, but Zendesk states no window: not held to one.
        signed: "{header:X-Zendesk-Webhook-Signature-Timestamp}{body}".into(),
        id_header: s("X-Zendesk-Webhook-Invocation-Id"),
        event_json: s("type"),
        ..body_hmac("X-Zendesk-Webhook-Signature", None)
    }
}
fn docusign() -> HmacSpec {
    HmacSpec {
        encoding: Encoding::Base64,
        id_json: s("data.envelopeId+event+generatedDateTime"),
        event_json: s("event"),
        ..body_hmac("X-DocuSign-Signature-*", None)
    }
}
fn xero() -> HmacSpec {
    HmacSpec {
        encoding: Encoding::Base64,
        event_json: s("events.0.eventType"),
        ..body_hmac("x-xero-signature", None)
    }
}
fn quickbooks() -> HmacSpec {
    HmacSpec {
        encoding: Encoding::Base64,
        event_json: s("eventNotifications.0.dataChangeEvent.entities.0.operation"),
        ..body_hmac("intuit-signature", None)
    }
}
fn sentry() -> HmacSpec {
    HmacSpec {
        id_header: s("Request-ID"),
        event_header: s("Sentry-Hook-Resource"),
        ..body_hmac("Sentry-Hook-Signature", None)
    }
}
fn segment() -> HmacSpec {
    HmacSpec {
        algorithm: Algorithm::Sha1,
        id_json: s("messageId"),
        event_json: s("type"),
        ..body_hmac("X-Signature", None)
    }
}
fn coinbase_commerce() -> HmacSpec {
    HmacSpec {
        id_json: s("event.id"),
        event_json: s("event.type"),
        ..body_hmac("X-CC-Webhook-Signature", None)
    }
}
fn postmark() -> HmacSpec {
    HmacSpec {
        mode: Mode::Token,
        token_format: TokenFormat::Basic,
        id_json: s("MessageID+RecordType"),
        event_json: s("RecordType"),
        ..body_hmac("Authorization", None)
    }
}
fn razorpay() -> HmacSpec {
    HmacSpec {
        id_header: s("X-Razorpay-Event-Id"),
        event_json: s("event"),
        ..body_hmac("X-Razorpay-Signature", None)
    }
}
fn paystack() -> HmacSpec {
    HmacSpec {
        algorithm: Algorithm::Sha512,
        id_json: s("event+data.id"),
        event_json: s("event"),
        ..body_hmac("x-paystack-signature", None)
    }
}
fn mollie() -> HmacSpec {
    HmacSpec {
        // mollie-api-php strips `sha256=` only when present, and accepts
        // several values (one per secret during a migration).
        prefix_optional: true,
        separator: s(","),
        id_json: s("id"),
        event_json: s("type"),
        ..body_hmac("X-Mollie-Signature", Some("sha256="))
    }
}
fn lemonsqueezy() -> HmacSpec {
    HmacSpec {
        event_header: s("X-Event-Name"),
        event_json: s("meta.event_name"),
        ..body_hmac("X-Signature", None)
    }
}
fn calcom() -> HmacSpec {
    HmacSpec {
        event_json: s("triggerEvent"),
        ..body_hmac("X-Cal-Signature-256", None)
    }
}
fn sanity() -> HmacSpec {
    HmacSpec {
        separator: s(","),
        signature_param: s("v1"),
        timestamp_param: s("t"),
        exact_params: true,
        encoding: Encoding::Base64Url,
        timestamp_unit: TimestampUnit::Millis,
        signed: "{ts}.{body}".into(),
        id_header: s("idempotency-key"),
        event_header: s("sanity-operation"),
        ..body_hmac("sanity-webhook-signature", None)
    }
}
fn workos() -> HmacSpec {
    HmacSpec {
        separator: s(", "),
        signature_param: s("v1"),
        timestamp_param: s("t"),
        timestamp_unit: TimestampUnit::Millis,
        signed: "{ts}.{body}".into(),
        id_json: s("id"),
        event_json: s("event"),
        ..body_hmac("WorkOS-Signature", None)
    }
}
fn supabase() -> HmacSpec {
    HmacSpec {
        event_json: s("type"),
        ..standard_webhooks_like("v1,whsec_")
    }
}
fn notion() -> HmacSpec {
    HmacSpec {
        id_json: s("id"),
        event_json: s("type"),
        ..body_hmac("X-Notion-Signature", Some("sha256="))
    }
}
fn airtable() -> HmacSpec {
    HmacSpec {
        key_encoding: KeyEncoding::Base64,
        id_json: s("webhook.id+timestamp"),
        ..body_hmac("X-Airtable-Content-MAC", Some("hmac-sha256="))
    }
}
fn figma() -> HmacSpec {
    HmacSpec {
        mode: Mode::Token,
        token_json: s("passcode"),
        id_json: s("webhook_id+timestamp"),
        event_json: s("event_type"),
        ..HmacSpec::default()
    }
}

static PROVIDERS: &[Provider] = &[
    Provider {
        secret: "Repository or organization → Settings → Webhooks → the webhook's Secret",
        notes: "Verifies X-Hub-Signature-256 (sha256=, hex) over the raw body; the legacy SHA-1 header is not accepted. Id: X-GitHub-Hook-ID:X-GitHub-Delivery (a delivery GUID is shared by every hook of one event). Event: X-GitHub-Event.",
        ..base("github", "GitHub", Family::Hmac, Build::Github)
    },
    Provider {
        replay_window: MIN5,
        secret: "Developers → Webhooks → the endpoint → Signing secret (the whole whsec_… string)",
        notes: "Stripe-Signature t=…,v1=… over {t}.{body}; the whsec_ string is the key as-is. Only the age of t is checked, as in stripe-python/node. Id: body id (evt_…); event: body type.",
        ..base("stripe", "Stripe", Family::Hmac, Build::Stripe)
    },
    Provider {
        replay_window: MIN5,
        secret: "The endpoint's whsec_… secret (with or without the prefix)",
        notes: "webhook-id/-timestamp/-signature (v1,<base64>, space-separated) over {id}.{ts}.{body}, key = base64 of the secret after whsec_. ±5 minutes. Id: webhook-id; event: body type.",
        ..base(
            "standard-webhooks",
            "Standard Webhooks",
            Family::Hmac,
            Build::StandardWebhooks,
        )
    },
    Provider {
        replay_window: MIN5,
        secret: "Svix app portal → the endpoint → Signing Secret (whsec_…); Clerk and Resend deliver through Svix",
        notes: "Standard Webhooks under svix-* header names (webhook-* accepted too). ±5 minutes.",
        ..base("svix", "Svix", Family::Hmac, Build::StandardWebhooks)
    },
    Provider {
        secret: "Partner dashboard → the app → Client credentials → Client secret",
        notes: "X-Shopify-Hmac-Sha256 (base64) over the raw body; topic, shop domain, API version and webhook id headers required, as @shopify/shopify-api does. Events-style Shopify-* names accepted. Id: X-Shopify-Webhook-Id; event: X-Shopify-Topic.",
        ..base("shopify", "Shopify", Family::Hmac, Build::Shopify)
    },
    Provider {
        replay_window: MIN5,
        handshake: Some("url_verification: answers the challenge (signed request)"),
        secret: "api.slack.com → the app → Basic Information → Signing Secret (not the verification token)",
        notes: "X-Slack-Signature v0=<hex> over v0:{ts}:{body}; ±5 minutes. Id: body event_id (Events API); event: event.type or type.",
        kind: Handshake::SlackUrlVerification,
        ..base("slack", "Slack", Family::Hmac, Build::Slack)
    },
    Provider {
        secret: "Twilio console → Account → API keys & tokens → Auth Token (primary)",
        notes: "X-Twilio-Signature: base64 HMAC-SHA1 over the public URL + sorted form parameters; JSON bodies via the bodySHA256 query parameter. The URL is tried with and without the default port, as Twilio's validators do. Needs public_url. No timestamp. Id: I-Twilio-Idempotency-Token.",
        needs_url: true,
        ..base(
            "twilio",
            "Twilio",
            Family::UrlSigned,
            Build::UrlForm(Flavour::Twilio),
        )
    },
    Provider {
        replay_window: Some(Duration::from_secs(60)),
        secret: "Linear → Settings → API → Webhooks → the webhook → Signing secret",
        notes: "Linear-Signature hex over the body; the signed body field webhookTimestamp (ms) must be within 60 s, as @linear/sdk checks. Id: Linear-Delivery; event: Linear-Event.",
        ..base("linear", "Linear", Family::Hmac, Build::Declarative(linear))
    },
    Provider {
        replay_window: Some(Duration::from_secs(5)),
        secret: "Paddle → Developer tools → Notifications → the destination → Secret key (pdl_ntfset_…)",
        notes: "Paddle-Signature ts=…;h1=… over {ts}:{body}; age ≤ 5 s as the SDKs (future not checked). Id: event_id; event: event_type.",
        ..base(
            "paddle",
            "Paddle Billing",
            Family::Hmac,
            Build::Declarative(paddle),
        )
    },
    Provider {
        secret: "Square Developer → the app → Webhooks → the subscription → Signature key",
        notes: "x-square-hmacsha256-signature: base64 HMAC-SHA256 over the notification URL + body; public_url must be exactly the URL registered. Id: event_id; event: type.",
        needs_url: true,
        ..base(
            "square",
            "Square",
            Family::UrlSigned,
            Build::Declarative(square),
        )
    },
    Provider {
        secret: "PagerDuty → Integrations → Generic Webhooks (v3) → the subscription's secret (shown once)",
        notes: "X-PagerDuty-Signature: v1=<hex>[,v1=…], one per active secret. No timestamp. Id: X-Webhook-Id; event: event.event_type.",
        ..base(
            "pagerduty",
            "PagerDuty v3",
            Family::Hmac,
            Build::Declarative(pagerduty),
        )
    },
    Provider {
        handshake: Some(
            "endpoint.url_validation: answers {plainToken, encryptedToken} (only to a verified request)",
        ),
        secret: "Zoom App Marketplace → the app → Features → Access → Secret Token",
        notes: "x-zm-signature v0=<hex> over v0:{x-zm-request-timestamp}:{body}. Zoom documents no window and the timestamp unit varies, so none is applied; dedup by body. Event: event.",
        kind: Handshake::ZoomUrlValidation,
        ..base("zoom", "Zoom", Family::Hmac, Build::Declarative(zoom))
    },
    Provider {
        replay_window: MIN5,
        secret: "Mailgun → Sending → Webhooks → HTTP webhook signing key",
        notes: "The signature is in the body: signature.{timestamp,token,signature}, hex HMAC-SHA256 of timestamp+token (JSON or form). It does not cover event-data: the timestamp is held to ±5 minutes and dedup on event-data.id stops replays within it.",
        ..base("mailgun", "Mailgun", Family::BodySigned, Build::Mailgun)
    },
    Provider {
        handshake: Some("PING (type 1): answers {\"type\":1} (signed request)"),
        secret: "Discord Developer Portal → the application → General Information → Public Key (hex)",
        notes: "Ed25519 over X-Signature-Timestamp + body (X-Signature-Ed25519, hex). No window, as discord-interactions. Id: body id; event: body type.",
        kind: Handshake::DiscordPing,
        ..base("discord", "Discord", Family::Ed25519, Build::Discord)
    },
    Provider {
        secret: "SendGrid → Settings → Mail Settings → Event Webhook → Signature Verification → Verification Key (base64)",
        notes: "ECDSA P-256/SHA-256 over timestamp + body (exact bytes, the trailing CRLF included). No window, as @sendgrid/eventwebhook. Id: first event's sg_event_id.",
        ..base(
            "sendgrid",
            "SendGrid Event Webhook",
            Family::Ecdsa,
            Build::SendGrid,
        )
    },
    Provider {
        replay_window: MIN5,
        secret: "GitLab → the project → Settings → Webhooks → Secret token (or the signing token, whsec_…)",
        notes: "X-Gitlab-Token compared in constant time (no MAC, no replay defence); GitLab's flagged signing token (Standard Webhooks headers) is verified when sent, ±5 minutes. Id: Idempotency-Key, else X-Gitlab-Event-UUID; event: X-Gitlab-Event.",
        ..base(
            "gitlab",
            "GitLab",
            Family::Token,
            Build::OneOf(&[
                (
                    Condition::HeaderPresent("webhook-signature"),
                    Build::Declarative(gitlab_signing),
                ),
                (Condition::Always, Build::Declarative(gitlab_token)),
            ]),
        )
    },
    Provider {
        secret: "Bitbucket → the repository → Repository settings → Webhooks → the webhook → Secret",
        notes: "X-Hub-Signature (not -256): sha256=<hex> over the body. Id: X-Request-UUID; event: X-Event-Key.",
        ..base(
            "bitbucket",
            "Bitbucket Cloud",
            Family::Hmac,
            Build::Declarative(bitbucket),
        )
    },
    Provider {
        secret: "Jira → Settings → System → WebHooks → the admin webhook → Secret",
        notes: "Admin webhooks with a secret: X-Hub-Signature sha256=<hex>. Connect/OAuth dynamic webhooks are not HMAC-signed and are not supported. Id: X-Atlassian-Webhook-Identifier; event: webhookEvent.",
        ..base("jira", "Jira Cloud", Family::Hmac, Build::Declarative(jira))
    },
    Provider {
        handshake: Some("GET hub.challenge echoed when hub.verify_token matches (403 otherwise)"),
        secret: "Meta App Dashboard → App settings → Basic → App Secret; verify_token is the token you type in the Webhooks product",
        notes: "X-Hub-Signature-256 sha256=<hex> over the raw body (non-ASCII arrives \\uXXXX-escaped; never re-serialize). Needs verify_token for the GET handshake. No delivery id: dedup by body. Event: object.",
        kind: Handshake::MetaVerify,
        needs_verify_token: true,
        methods: &["GET"],
        ..base(
            "meta",
            "Meta (Facebook, Instagram, WhatsApp)",
            Family::Hmac,
            Build::Declarative(meta),
        )
    },
    Provider {
        replay_window: Some(Duration::from_secs(600)),
        handshake: Some(
            "webhook_callback_verification: answers the challenge as text/plain (signed request)",
        ),
        secret: "The secret you pass when creating the EventSub subscription (10–100 characters)",
        notes: "Twitch-Eventsub-Message-Signature sha256=<hex> over message id + timestamp (RFC 3339, verbatim) + body; 10 minutes. Id: Twitch-Eventsub-Message-Id; event: subscription type.",
        kind: Handshake::TwitchChallenge,
        ..base(
            "twitch",
            "Twitch EventSub",
            Family::Hmac,
            Build::Declarative(twitch),
        )
    },
    Provider {
        handshake: Some("ping topic: answered 200, not published"),
        secret: "Intercom Developer Hub → the app → Basic information → Client secret",
        notes: "X-Hub-Signature sha1=<hex> (SHA-1 only). Id: body id (notif_…); event: topic.",
        kind: Handshake::IntercomPing,
        ..base(
            "intercom",
            "Intercom",
            Family::Hmac,
            Build::Declarative(intercom),
        )
    },
    Provider {
        replay_window: MIN5,
        secret: "HubSpot developer account → the app → Auth → Client secret",
        notes: "v3: X-HubSpot-Signature-v3 base64 HMAC-SHA256 over method + URL + body + timestamp (ms, age ≤ 5 min); legacy v1/v2 (X-HubSpot-Signature-Version) are plain SHA-256 of secret + body / secret + method + URL + body. Needs public_url (the URL exactly as HubSpot calls it). Id: eventId of the first event.",
        needs_url: true,
        methods: &["GET"],
        ..base(
            "hubspot",
            "HubSpot",
            Family::Hmac,
            Build::OneOf(&[
                (
                    Condition::HeaderPresent("x-hubspot-signature-v3"),
                    Build::Declarative(hubspot_v3),
                ),
                (
                    Condition::HeaderEquals("x-hubspot-signature-version", "v2"),
                    Build::Declarative(hubspot_v2),
                ),
                (Condition::Always, Build::Declarative(hubspot_v1)),
            ]),
        )
    },
    Provider {
        replay_window: Some(Duration::from_secs(180)),
        secret: "The signing_key you set when creating the webhook subscription via the API",
        notes: "Calendly-Webhook-Signature t=…,v1=… over {t}.{body} (Stripe's math); 3 minutes as Calendly's sample. Id: event + payload.uri.",
        ..base(
            "calendly",
            "Calendly",
            Family::Hmac,
            Build::Declarative(calendly),
        )
    },
    Provider {
        secret: "Typeform → the form → Connect → Webhooks → Edit → Secret",
        notes: "Typeform-Signature sha256=<base64>. Id: event_id; event: event_type.",
        ..base(
            "typeform",
            "Typeform",
            Family::Hmac,
            Build::Declarative(typeform),
        )
    },
    Provider {
        secret: "Vercel → Team settings → Webhooks → the webhook's secret (or the integration's client secret)",
        notes: "x-vercel-signature: hex HMAC-SHA1 over the body. Id: id; event: type.",
        ..base("vercel", "Vercel", Family::Hmac, Build::Declarative(vercel))
    },
    Provider {
        handshake: Some(
            "GET X-Okta-Verification-Challenge: answers {\"verification\": …} (auth header checked)",
        ),
        secret: "Okta Admin → Workflow → Event Hooks → the hook → Authentication field value (the whole header value, e.g. `Bearer …`)",
        notes: "No signature: the Authorization header is compared in constant time (no replay defence). Id: eventId; event: the first event's eventType.",
        kind: Handshake::OktaVerification,
        methods: &["GET"],
        ..base(
            "okta",
            "Okta Event Hooks",
            Family::Token,
            Build::Declarative(okta),
        )
    },
    Provider {
        handshake: Some("GET ?challenge= echoed as text/plain"),
        secret: "Dropbox App Console → the app → Settings → App secret",
        notes: "X-Dropbox-Signature hex over the body. Notifications are thin (fetch the changes). No id: dedup by body.",
        kind: Handshake::DropboxChallenge,
        methods: &["GET"],
        ..base(
            "dropbox",
            "Dropbox",
            Family::Hmac,
            Build::Declarative(dropbox),
        )
    },
    Provider {
        replay_window: Some(Duration::from_secs(600)),
        secret: "Box Developer Console → the app → Webhooks → Manage signature keys → primary and secondary keys (configure both as secrets)",
        notes: "BOX-SIGNATURE-PRIMARY/-SECONDARY base64 over body + BOX-DELIVERY-TIMESTAMP (RFC 3339); 10 minutes, no future timestamp (as the SDKs); version and algorithm headers required. Id: BOX-DELIVERY-ID; event: trigger.",
        ..base("box", "Box", Family::Hmac, Build::Declarative(box_))
    },
    Provider {
        handshake: Some(
            "X-Hook-Secret: captured (only while `hookline sources capture` is open) and echoed",
        ),
        secret: "Not in a console: Asana hands it over in the X-Hook-Secret handshake; run `hookline sources capture <source>` before creating the webhook (secrets may then be left out)",
        notes: "X-Hook-Signature hex over the body; heartbeats are signed {\"events\":[]}. No id: dedup by body.",
        kind: Handshake::AsanaSecret,
        ..base("asana", "Asana", Family::Hmac, Build::Declarative(asana))
    },
    Provider {
        handshake: Some("HEAD: 200"),
        secret: "trello.com/app-key → Secret (the OAuth 1.0 secret of the API key that created the webhook)",
        notes: "X-Trello-Webhook base64 HMAC-SHA1 over body + callback URL (exactly as registered, query included). Needs public_url. Id: action.id; event: action.type.",
        kind: Handshake::HeadOk,
        needs_url: true,
        methods: &["HEAD"],
        ..base(
            "trello",
            "Trello",
            Family::UrlSigned,
            Build::Declarative(trello),
        )
    },
    Provider {
        secret: "Zendesk Admin Center → Apps and integrations → Webhooks → the webhook → Signing secret (reveal)",
        notes: "X-Zendesk-Webhook-Signature base64 over X-Zendesk-Webhook-Signature-Timestamp + body. Zendesk states no window, so the timestamp is signed but not held to one. Id: X-Zendesk-Webhook-Invocation-Id.",
        ..base(
            "zendesk",
            "Zendesk",
            Family::Hmac,
            Build::Declarative(zendesk),
        )
    },
    Provider {
        secret: "DocuSign eSignature Admin → Connect → Connect Keys → the HMAC key(s), used as text",
        notes: "X-DocuSign-Signature-1..N base64 over the body, one per key; any header matching any key passes. Id: data.envelopeId + event + generatedDateTime.",
        ..base(
            "docusign",
            "DocuSign Connect",
            Family::Hmac,
            Build::Declarative(docusign),
        )
    },
    Provider {
        handshake: Some("intent to receive: 200 on a good signature, 401 otherwise, empty bodies"),
        secret: "Xero developer portal → the app → Webhooks → Webhooks key (used as text)",
        notes: "x-xero-signature base64 over the body. Intent-to-receive payloads (events: []) are answered, not published.",
        kind: Handshake::XeroIntent,
        ..base("xero", "Xero", Family::Hmac, Build::Declarative(xero))
    },
    Provider {
        secret: "Intuit Developer → the app → Webhooks → Show verifier token",
        notes: "intuit-signature base64 over the body. No event id: dedup by body.",
        ..base(
            "quickbooks",
            "QuickBooks Online",
            Family::Hmac,
            Build::Declarative(quickbooks),
        )
    },
    Provider {
        handshake: Some("installation resource: answered 200, not published"),
        secret: "Sentry → Settings → Developer Settings → the integration → Client Secret",
        notes: "Sentry-Hook-Signature hex over the body. Sentry-Hook-Timestamp is not signed, so no window. Id: Request-ID; event: Sentry-Hook-Resource.",
        kind: Handshake::SentryInstallation,
        ..base("sentry", "Sentry", Family::Hmac, Build::Declarative(sentry))
    },
    Provider {
        secret: "Segment → the Webhooks destination → Settings → Shared Secret",
        notes: "X-Signature hex HMAC-SHA1 over the body. Batched deliveries sign only the first event: the others are unauthenticated. Id: messageId.",
        ..base(
            "segment",
            "Segment",
            Family::Hmac,
            Build::Declarative(segment),
        )
    },
    Provider {
        secret: "Netlify → Site configuration → Notifications → the outgoing webhook → JWS secret token",
        notes: "X-Webhook-Signature: a JWS (HS256 only) whose claims {iss: netlify, sha256: hex of the body} are checked. Id: body id; event: X-Netlify-Event.",
        ..base("netlify", "Netlify", Family::Jws, Build::Netlify)
    },
    Provider {
        replay_window: Some(Duration::from_millis(29_999)),
        secret: "Contentful → Settings → Webhooks → the webhook → Request verification → signing secret (64 characters)",
        notes: "x-contentful-signature over method, path, the headers listed in x-contentful-signed-headers and the body; stale once 30 s old (toolkit TTL). Needs public_url for the path. Event: X-Contentful-Topic.",
        needs_url: true,
        ..base(
            "contentful",
            "Contentful",
            Family::CanonicalRequest,
            Build::Contentful,
        )
    },
    Provider {
        secret: "Coinbase Commerce → Settings → Webhook subscriptions → Show shared secret",
        notes: "X-CC-Webhook-Signature hex over the body. Id: event.id; event: event.type.",
        ..base(
            "coinbase-commerce",
            "Coinbase Commerce",
            Family::Hmac,
            Build::Declarative(coinbase_commerce),
        )
    },
    Provider {
        handshake: Some("answers [accepted] to standard notifications"),
        secret: "Adyen Customer Area → Developers → Webhooks → the webhook → HMAC key (hex)",
        notes: "Standard notifications: each item's additionalData.hmacSignature over 8 fields (every item checked; other fields are not covered). Balance Platform/Management: HmacSignature header over the body. Key hex-decoded. Id: pspReference:eventCode.",
        accepted_body: Some("[accepted]"),
        ..base("adyen", "Adyen", Family::BodySigned, Build::Adyen)
    },
    Provider {
        handshake: Some("HEAD: 200"),
        secret: "Mandrill → Settings → Webhooks → the webhook's Key",
        notes: "X-Mandrill-Signature base64 HMAC-SHA1 over the webhook URL + sorted form parameters. Needs public_url (exactly as configured).",
        kind: Handshake::HeadOk,
        needs_url: true,
        methods: &["HEAD"],
        ..base(
            "mandrill",
            "Mandrill (Mailchimp Transactional)",
            Family::UrlSigned,
            Build::UrlForm(Flavour::Mandrill),
        )
    },
    Provider {
        secret: "The user:pass you put in the webhook URL (https://user:pass@host/…), as one secret `user:pass`",
        notes: "No signature: Authorization: Basic compared in constant time. Postmark also publishes IP ranges. Id: MessageID:RecordType.",
        ..base(
            "postmark",
            "Postmark",
            Family::Token,
            Build::Declarative(postmark),
        )
    },
    Provider {
        handshake: Some("GET ?bt_challenge= answered public_key|HMAC"),
        secret: "Braintree Control Panel → API → API Keys → the private key (secret) and its public key (public_key)",
        notes: "Form bt_signature (public_key|hex HMAC-SHA1 keyed with SHA1(private key)) over bt_payload. Needs public_key. Event: the XML kind.",
        kind: Handshake::BraintreeChallenge,
        needs_public_key: true,
        methods: &["GET"],
        ..base(
            "braintree",
            "Braintree",
            Family::BodySigned,
            Build::Braintree,
        )
    },
    Provider {
        secret: "Razorpay Dashboard → Accounts & Settings → Webhooks → the webhook's Secret",
        notes: "X-Razorpay-Signature hex over the body. Id: X-Razorpay-Event-Id; event: event.",
        ..base(
            "razorpay",
            "Razorpay",
            Family::Hmac,
            Build::Declarative(razorpay),
        )
    },
    Provider {
        secret: "Paystack Dashboard → Settings → API Keys & Webhooks → Secret Key",
        notes: "x-paystack-signature: hex HMAC-SHA512 over the body. Id: event:data.id.",
        ..base(
            "paystack",
            "Paystack",
            Family::Hmac,
            Build::Declarative(paystack),
        )
    },
    Provider {
        secret: "Mollie Dashboard → Developers → Webhooks (next-gen) → the subscription's signing secret",
        notes: "X-Mollie-Signature sha256=<hex> (bare hex accepted, as mollie-api-php). Classic per-payment webhooks are unsigned and not supported. Id: id; event: type.",
        ..base("mollie", "Mollie", Family::Hmac, Build::Declarative(mollie))
    },
    Provider {
        secret: "Lemon Squeezy → Settings → Webhooks → the webhook's Signing secret",
        notes: "X-Signature hex over the body. Event: X-Event-Name.",
        ..base(
            "lemonsqueezy",
            "Lemon Squeezy",
            Family::Hmac,
            Build::Declarative(lemonsqueezy),
        )
    },
    Provider {
        secret: "Cal.com → Settings → Developer → Webhooks → the webhook's Secret",
        notes: "X-Cal-Signature-256 hex over the body (a webhook without a secret sends `no-secret-provided`, which never verifies). Event: triggerEvent.",
        ..base(
            "calcom",
            "Cal.com",
            Family::Hmac,
            Build::Declarative(calcom),
        )
    },
    Provider {
        replay_window: MIN5,
        secret: "sanity.io/manage → the project → API → Webhooks → the webhook → Secret",
        notes: "sanity-webhook-signature exactly t=<ms>,v1=<base64url> over {t}.{body}. @sanity/webhook applies no window; Hookline applies ±5 minutes as policy. Id: idempotency-key; event: sanity-operation.",
        ..base("sanity", "Sanity", Family::Hmac, Build::Declarative(sanity))
    },
    Provider {
        replay_window: Some(Duration::from_secs(180)),
        secret: "WorkOS Dashboard → Webhooks → the endpoint → Signing secret",
        notes: "WorkOS-Signature `t=<ms>, v1=<hex>` over {t}.{raw body}; ±3 minutes (the SDKs disagree on the future; the symmetric rule is kept). Id: id; event: event.",
        ..base("workos", "WorkOS", Family::Hmac, Build::Declarative(workos))
    },
    Provider {
        replay_window: MIN5,
        secret: "Supabase Dashboard → Authentication → Hooks → the HTTP hook → Secret (v1,whsec_…, pasted whole)",
        notes: "Auth Hooks: Standard Webhooks with the v1,whsec_ prefix stripped before base64-decoding; ±5 minutes. Database Webhooks are unsigned and not supported.",
        ..base(
            "supabase",
            "Supabase Auth Hooks",
            Family::Hmac,
            Build::Declarative(supabase),
        )
    },
    Provider {
        handshake: Some(
            "verification_token: captured (only while `hookline sources capture` is open)",
        ),
        secret: "Not in a console: Notion POSTs the verification_token on subscription; run `hookline sources capture <source>` first (secrets may then be left out), then paste the token back into Notion",
        notes: "X-Notion-Signature sha256=<hex> keyed with the verification_token. Id: id; event: type.",
        kind: Handshake::NotionToken,
        ..base("notion", "Notion", Family::Hmac, Build::Declarative(notion))
    },
    Provider {
        secret: "The macSecretBase64 returned when the webhook is created through the API (paste it as given)",
        notes: "X-Airtable-Content-MAC hmac-sha256=<hex> keyed with the base64-DECODED secret. Pings are thin: fetch the payloads.",
        ..base(
            "airtable",
            "Airtable",
            Family::Hmac,
            Build::Declarative(airtable),
        )
    },
    Provider {
        handshake: Some("PING event: answered 200, not published"),
        secret: "The passcode you set when creating the webhook through the API",
        notes: "No signature: the body's passcode is compared in constant time; a wrong one gets 400, which stops the webhook (Figma's guidance). Id: webhook_id:timestamp; event: event_type.",
        kind: Handshake::FigmaPing,
        rejection_status: 400,
        ..base("figma", "Figma", Family::Token, Build::Declarative(figma))
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        let mut names: Vec<&str> = providers().iter().map(|p| p.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate preset names");
        for provider in providers() {
            assert!(
                !provider.secret.is_empty(),
                "{}: where is the secret?",
                provider.name
            );
            assert!(!provider.notes.is_empty(), "{}: notes", provider.name);
        }
        assert!(providers().len() >= 54);
    }
}
