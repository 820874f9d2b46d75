//! Contentful request verification: `x-contentful-signature` = hex
//! HMAC-SHA256(secret, method + "\n" + path[?query] + "\n" + signed headers +
//! "\n" + body). The signed headers are those named in
//! `x-contentful-signed-headers` (always including `x-contentful-timestamp` and
//! itself), lower-cased, trimmed, sorted, written `name:value` and joined by `;`.
//! As in `@contentful/node-apps-toolkit`, a request is stale once its age reaches
//! the TTL (30 s by default); the future is not checked.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName};

use crate::candidates::{AnyCandidates, Encoding};
use crate::digest::{Algorithm, MacKeys};
use crate::error::{ConfigError, Rejection};
use crate::headers;
use crate::request::{Request, Verified};
use crate::timestamp::{self, Window};

const SIGNATURE: HeaderName = HeaderName::from_static("x-contentful-signature");
const SIGNED_HEADERS: HeaderName = HeaderName::from_static("x-contentful-signed-headers");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-contentful-timestamp");
const TOPIC: HeaderName = HeaderName::from_static("x-contentful-topic");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-contentful-webhook-request-id");

/// More signed headers than this is not a Contentful request.
const MAX_SIGNED_HEADERS: usize = 32;

#[derive(Debug, Clone)]
pub(crate) struct Contentful {
    keys: MacKeys,
    window: Window,
}

impl Contentful {
    pub(crate) fn new(secrets: &[&[u8]], window: Window) -> Result<Self, ConfigError> {
        let keys: Vec<Vec<u8>> = secrets.iter().map(|s| s.to_vec()).collect();
        Ok(Self {
            keys: MacKeys::new(Algorithm::Sha256, &keys)?,
            window,
        })
    }

    pub(crate) fn is_secret_header(name: &HeaderName) -> bool {
        name == SIGNATURE
    }

    pub(crate) fn verify(
        &self,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<Verified, Rejection> {
        let value = headers::signature(request.headers, &SIGNATURE)?;
        let mut candidates = AnyCandidates::new(32);
        candidates.push(Encoding::Hex, value);
        let candidates = candidates.finish()?;
        let stamp = headers::timestamp(request.headers, &TIMESTAMP)?;
        // Age ≥ TTL is stale: the window's limit is inclusive, so one ms less.
        self.window.check(timestamp::parse(stamp)?, now)?;
        let list = headers::required(request.headers, &SIGNED_HEADERS)?;
        let names: Vec<String> = list
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        if names.len() > MAX_SIGNED_HEADERS
            || !names.iter().any(|name| name == TIMESTAMP.as_str())
            || !names.iter().any(|name| name == SIGNED_HEADERS.as_str())
        {
            return Err(Rejection::MalformedHeader(SIGNED_HEADERS));
        }
        let canonical_headers = canonical_headers(request.headers, &names)?;
        let path = path_and_query(request.url.unwrap_or("/"));
        self.keys.verify(
            &[
                request.method.as_bytes(),
                b"\n",
                path.as_bytes(),
                b"\n",
                canonical_headers.as_bytes(),
                b"\n",
                request.body,
            ],
            &candidates,
        )?;
        Ok(Verified {
            id: headers::optional(request.headers, &REQUEST_ID),
            event: headers::optional(request.headers, &TOPIC),
        })
    }

    pub(crate) fn sign(
        &self,
        body: &[u8],
        id: &str,
        event: &str,
        unix_seconds: u64,
        method: &str,
        url: &str,
    ) -> Vec<(HeaderName, String)> {
        let mut out = vec![
            (TIMESTAMP, unix_seconds.saturating_mul(1000).to_string()),
            (TOPIC, event.to_owned()),
            (REQUEST_ID, id.to_owned()),
        ];
        let names = "x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic";
        out.push((SIGNED_HEADERS, names.to_owned()));
        let mut headers = HeaderMap::new();
        for (name, value) in &out {
            if let Ok(value) = value.parse() {
                headers.insert(name.clone(), value);
            }
        }
        let names: Vec<String> = names.split(',').map(str::to_owned).collect();
        let canonical = canonical_headers(&headers, &names).unwrap_or_default();
        let path = path_and_query(url);
        let tag = self.keys.first().sign(&[
            method.as_bytes(),
            b"\n",
            path.as_bytes(),
            b"\n",
            canonical.as_bytes(),
            b"\n",
            body,
        ]);
        out.insert(0, (SIGNATURE, hex::encode(tag)));
        out
    }
}

fn canonical_headers(headers: &HeaderMap, names: &[String]) -> Result<String, Rejection> {
    let mut pairs = names
        .iter()
        .map(|name| {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Rejection::MalformedHeader(SIGNED_HEADERS))?;
            let value = headers::required(headers, &header)?;
            Ok(format!("{name}:{}", value.trim()))
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    pairs.sort();
    Ok(pairs.join(";"))
}

/// The path and query of a URL (`/` when it has none).
fn path_and_query(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find('/') {
        Some(at) => &rest[at..],
        None => "/",
    }
}
