//! Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(client secret, raw body)>`.
//!
//! No timestamp is signed. The "Events" delivery style sends the same scheme under
//! `Shopify-*` names (no `X-`). Like `@shopify/shopify-api`'s `validate()`, a
//! delivery must also carry the topic, shop domain, API version and webhook id
//! headers; one missing is rejected even when the HMAC holds.

use http::{HeaderMap, HeaderName};

use crate::candidates::{self, Encoding};
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::mac::Keys;
use crate::request::{Request, Verified};

/// One naming of the Shopify headers.
struct Names {
    hmac: HeaderName,
    topic: HeaderName,
    shop_domain: HeaderName,
    api_version: HeaderName,
    webhook_id: HeaderName,
}

static CLASSIC: Names = Names {
    hmac: HeaderName::from_static("x-shopify-hmac-sha256"),
    topic: HeaderName::from_static("x-shopify-topic"),
    shop_domain: HeaderName::from_static("x-shopify-shop-domain"),
    api_version: HeaderName::from_static("x-shopify-api-version"),
    webhook_id: HeaderName::from_static("x-shopify-webhook-id"),
};

static EVENTS: Names = Names {
    hmac: HeaderName::from_static("shopify-hmac-sha256"),
    topic: HeaderName::from_static("shopify-topic"),
    shop_domain: HeaderName::from_static("shopify-shop-domain"),
    api_version: HeaderName::from_static("shopify-api-version"),
    webhook_id: HeaderName::from_static("shopify-webhook-id"),
};

/// Written by the signer: Shopify always sends a shop and an API version.
const SIGNER_SHOP_DOMAIN: &str = "hookline-test.myshopify.com";
const SIGNER_API_VERSION: &str = "2025-10";

impl Names {
    fn of(headers: &HeaderMap) -> &'static Names {
        if !headers.contains_key(&CLASSIC.hmac) && headers.contains_key(&EVENTS.hmac) {
            &EVENTS
        } else {
            &CLASSIC
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Shopify {
    keys: Keys,
}

impl Shopify {
    pub(crate) fn new(secrets: &[&[u8]]) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: Keys::raw(secrets)?,
        })
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Verified, Rejection> {
        let names = Names::of(request.headers);
        let value = headers::signature(request.headers, &names.hmac)?;
        let candidates = candidates::single(Encoding::Base64, value)?;
        self.keys.verify(&[request.body], &candidates)?;
        let topic = headers::required(request.headers, &names.topic)?;
        headers::required(request.headers, &names.shop_domain)?;
        headers::required(request.headers, &names.api_version)?;
        let webhook_id = headers::required(request.headers, &names.webhook_id)?;
        Ok(Verified {
            id: Some(webhook_id.to_owned()).filter(|id| !id.is_empty()),
            event: Some(topic.to_owned()).filter(|topic| !topic.is_empty()),
        })
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == CLASSIC.hmac || name == EVENTS.hmac
    }

    /// The classic `X-Shopify-*` delivery, with placeholder shop domain and API version.
    pub(crate) fn sign(&self, body: &[u8], id: &str, event: &str) -> Vec<(HeaderName, String)> {
        let tag = self.keys.signing().sign(&[body]);
        vec![
            (CLASSIC.hmac.clone(), Encoding::Base64.encode(&tag)),
            (CLASSIC.topic.clone(), event.to_owned()),
            (CLASSIC.shop_domain.clone(), SIGNER_SHOP_DOMAIN.to_owned()),
            (CLASSIC.api_version.clone(), SIGNER_API_VERSION.to_owned()),
            (CLASSIC.webhook_id.clone(), id.to_owned()),
        ]
    }
}
