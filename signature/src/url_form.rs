//! URL-signed form schemes: Twilio (`X-Twilio-Signature`) and Mandrill
//! (`X-Mandrill-Signature`), both base64 HMAC-SHA1 of the public URL followed by
//! every POST parameter sorted by name, written `name` + `value`.
//!
//! Twilio also signs JSON bodies: it appends `bodySHA256=<hex SHA-256 of the
//! body>` to the URL and signs the URL alone; the body must hash to that value.
//! Like Twilio's own validators, the URL is tried as given and with the default
//! port added or removed (`:443`/`:80`), since Twilio signs whichever form it
//! was configured with. No timestamp is signed: dedup by id is the only replay
//! defence.

use http::HeaderName;

use crate::body;
use crate::candidates::{AnyCandidates, Encoding};
use crate::digest::{self, Algorithm, MacKeys};
use crate::error::{ConfigError, Rejection};
use crate::form;
use crate::headers;
use crate::request::{Request, Verified};

/// Which of the two senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Twilio,
    Mandrill,
}

static TWILIO_SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
const TWILIO_IDEMPOTENCY: HeaderName = HeaderName::from_static("i-twilio-idempotency-token");
static MANDRILL_SIGNATURE: HeaderName = HeaderName::from_static("x-mandrill-signature");

#[derive(Debug, Clone)]
pub(crate) struct UrlForm {
    flavour: Flavour,
    keys: MacKeys,
}

impl UrlForm {
    pub(crate) fn new(flavour: Flavour, secrets: &[&[u8]]) -> Result<Self, ConfigError> {
        let keys: Vec<Vec<u8>> = secrets.iter().map(|s| s.to_vec()).collect();
        Ok(Self {
            flavour,
            keys: MacKeys::new(Algorithm::Sha1, &keys)?,
        })
    }

    fn header(&self) -> &'static HeaderName {
        match self.flavour {
            Flavour::Twilio => &TWILIO_SIGNATURE,
            Flavour::Mandrill => &MANDRILL_SIGNATURE,
        }
    }

    pub(crate) fn is_secret_header(&self, name: &HeaderName) -> bool {
        name == self.header()
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Verified, Rejection> {
        let value = headers::signature(request.headers, self.header())?;
        let mut candidates = AnyCandidates::new(Algorithm::Sha1.len());
        candidates.push(Encoding::Base64, value);
        let candidates = candidates.finish()?;
        // Without the public URL nothing can match; ingest requires `public_url`.
        let url = request.url.ok_or(Rejection::InvalidSignature)?;
        let body_hash = match self.flavour {
            Flavour::Twilio => query_value(url, "bodySHA256"),
            Flavour::Mandrill => None,
        };
        let params = match &body_hash {
            Some(_) => Vec::new(),
            None => form::pairs(request.body),
        };
        let mut matched = false;
        for candidate_url in url_variants(url) {
            let signed = form::url_and_sorted_params(&candidate_url, params.clone());
            matched |= self.keys.verify(&[signed.as_bytes()], &candidates).is_ok();
        }
        if !matched {
            return Err(Rejection::InvalidSignature);
        }
        if let Some(expected) = body_hash {
            let actual = hex::encode(Algorithm::Sha256.hash(&[request.body]));
            if !digest::equal(actual.as_bytes(), expected.as_bytes()) {
                return Err(Rejection::InvalidSignature);
            }
        }
        Ok(self.describe(request, &params))
    }

    fn describe(&self, request: &Request<'_>, params: &[(String, String)]) -> Verified {
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, value)| key == name && !value.is_empty())
                .map(|(_, value)| value.clone())
        };
        match self.flavour {
            Flavour::Twilio => {
                let json = body::parse(request.body);
                Verified {
                    id: headers::optional(request.headers, &TWILIO_IDEMPOTENCY)
                        .or_else(|| param("MessageSid").or_else(|| param("CallSid"))),
                    event: param("MessageStatus")
                        .or_else(|| param("CallStatus"))
                        .or_else(|| body::text(json.as_ref(), &["type"])),
                }
            }
            Flavour::Mandrill => {
                let events = param("mandrill_events").and_then(|text| body::parse(text.as_bytes()));
                Verified {
                    id: body::text(events.as_ref(), &["0", "_id"]),
                    event: body::text(events.as_ref(), &["0", "event"]),
                }
            }
        }
    }

    /// Signs as the sender: form bodies over URL + params; Twilio JSON bodies
    /// (`json`) by appending `bodySHA256` to the URL, which is returned.
    pub(crate) fn sign(
        &self,
        url: &str,
        body: &[u8],
        json: bool,
    ) -> (Vec<(HeaderName, String)>, String) {
        let (signed, url) = if json && self.flavour == Flavour::Twilio {
            let hash = hex::encode(Algorithm::Sha256.hash(&[body]));
            let separator = if url.contains('?') { '&' } else { '?' };
            let url = format!("{url}{separator}bodySHA256={hash}");
            (url.clone(), url)
        } else {
            (
                form::url_and_sorted_params(url, form::pairs(body)),
                url.to_owned(),
            )
        };
        let tag = self.keys.first().sign(&[signed.as_bytes()]);
        (
            vec![(self.header().clone(), Encoding::Base64.encode_bytes(&tag))],
            url,
        )
    }
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The URL as given, plus the same URL with the scheme's default port added (when
/// it has none) or removed (when it has it).
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    // IPv6 literals keep their brackets; a port follows the last `]` or `:`.
    let port_split = host_port
        .rfind(':')
        .filter(|at| !host_port[*at..].contains(']'));
    match port_split {
        Some(at) if &host_port[at + 1..] == default_port => {
            out.push(format!("{scheme}://{userinfo}{}{tail}", &host_port[..at]));
        }
        Some(_) => {}
        None => out.push(format!(
            "{scheme}://{userinfo}{host_port}:{default_port}{tail}"
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_variants() {
        assert_eq!(
            url_variants("https://a.com/p?q=1"),
            ["https://a.com/p?q=1", "https://a.com:443/p?q=1"]
        );
        assert_eq!(
            url_variants("https://a.com:443/p"),
            ["https://a.com:443/p", "https://a.com/p"]
        );
        assert_eq!(
            url_variants("http://u:p@a.com"),
            ["http://u:p@a.com", "http://u:p@a.com:80"]
        );
        assert_eq!(url_variants("https://a.com:8443/"), ["https://a.com:8443/"]);
        assert_eq!(url_variants("nonsense"), ["nonsense"]);
    }

    proptest::proptest! {
        #[test]
        fn variants_never_panic(url in "\\PC{0,80}") {
            let variants = url_variants(&url);
            proptest::prop_assert!(!variants.is_empty() && variants.len() <= 2);
        }
    }
}
